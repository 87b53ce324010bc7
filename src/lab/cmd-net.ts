/**
 * `curl` (7.88.1 on Debian 12, host-commands.md §10): in-lab services by CT address or lab port, the lab's
 * canned downloads, and curl's own error lines/exit codes (6 resolve, 7 refused, 28 timeout, 22 with -f).
 */
import { defineCommand } from 'just-bash';
import type { Command } from 'just-bash';
import { download } from './catalog';
import { fail, notFound, ok, parseFlags, writeInDir, type Result } from './cmd-util';
import { hasCommand } from './cmd-pkg';
import type { Machine, World } from './world';

export function netCommands(world: World, m: Machine): Command[] {
  const curl = defineCommand('curl', async (args, ctx): Promise<Result> => {
    if (!hasCommand(world, m, 'curl')) return notFound('curl');
    const { flags, operands } = parseFlags(args, ['-o', '-w', '-H', '-d', '-X', '-m', '--max-time', '--connect-timeout', '--data', '--data-raw', '--data-binary', '--header', '--request', '--output', '--write-out', '-u', '--retry', '--retry-delay', '-A', '--user-agent']);
    // Repeated -H: parseFlags keeps the last, so collect them again here.
    const headers: Record<string, string> = {};
    for (let i = 0; i < args.length; i++) if (args[i] === '-H' || args[i] === '--header') {
      const hv = args[i + 1] ?? '';
      const c = hv.indexOf(':');
      if (c > 0) headers[hv.slice(0, c).trim().toLowerCase()] = hv.slice(c + 1).trim();
    }
    const silent = Boolean(flags['-s'] || flags['--silent']);
    const showErr = Boolean(flags['-S'] || flags['--show-error']) || !silent;
    const failFlag = Boolean(flags['-f'] || flags['--fail']);
    const rawUrl = operands[0] ?? '';
    const dataFlag = flags['-d'] ?? flags['--data'] ?? flags['--data-raw'] ?? flags['--data-binary'];
    const body = typeof dataFlag === 'string' ? dataFlag : undefined;
    const method = String(flags['-X'] ?? flags['--request'] ?? (body !== undefined ? 'POST' : flags['-I'] ? 'HEAD' : 'GET'));
    const maxTime = Number(flags['-m'] ?? flags['--max-time'] ?? flags['--connect-timeout'] ?? '0');
    // -w is still written when the transfer fails, with the code curl got: 000 when there was no answer.
    const writeOut = (code: number): string => {
      const wf = flags['-w'] ?? flags['--write-out'];
      return typeof wf === 'string' ? wf.replace(/%\{(http_code|response_code)\}/g, String(code).padStart(3, '0')).replace(/\\n/g, '\n') : '';
    };
    const err = (code: number, msg: string, got = 0): Result => fail(showErr ? `curl: (${code}) ${msg}\n` : '', code, writeOut(got));
    let url: URL;
    try { url = new URL(/^[a-z]+:\/\//i.test(rawUrl) ? rawUrl : `http://${rawUrl}`); } catch { return err(3, 'URL using bad/illegal format or missing URL'); }
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/x-www-form-urlencoded';
    const init: { method: string; headers: Record<string, string>; body?: string } = { method, headers };
    if (body !== undefined) init.body = body;
    let status = 200;
    let text: string;
    const canned = download(url.toString());
    if (canned !== undefined) text = canned;
    else {
      const r = await world.services?.request(m.vmid, url, init);
      if (r === undefined || r === null) {
        if (!/^(\d+\.){3}\d+$|^localhost$/.test(url.hostname)) return err(6, `Could not resolve host: ${url.hostname}`);
        return err(7, `Failed to connect to ${url.hostname} port ${port} after 0 ms: Couldn't connect to server`);
      }
      if ('unreachable' in r) {
        const ms = Math.round((maxTime > 0 ? maxTime : 3) * 1000 + 3);
        await world.host.delay(Math.min(ms, 3000));
        return maxTime > 0 ? err(28, `Connection timed out after ${ms} milliseconds`) : err(7, `Failed to connect to ${url.hostname} port ${port} after ${ms} ms: Couldn't connect to server`);
      }
      status = r.status;
      text = r.body;
    }
    if (failFlag && status >= 400) return err(22, `The requested URL returned error: ${status}`, status);
    const trailer = writeOut(status);
    const outFile = flags['-o'] ?? flags['--output'];
    if (typeof outFile === 'string' && outFile !== '/dev/null') {
      if (await writeInDir(ctx, outFile, text)) return ok(trailer);
      const warning = silent ? '' : `Warning: Failed to open the file ${outFile}: No such file or directory\n`;
      return fail(showErr ? `${warning}curl: (23) Failure writing output to destination\n` : '', 23, trailer);
    }
    if (outFile === '/dev/null') return ok(trailer);
    return ok((method === 'HEAD' ? `HTTP/1.1 ${status}\n` : text) + trailer);
  });
  return [curl];
}
