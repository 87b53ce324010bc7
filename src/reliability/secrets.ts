// Secrets never leave the worker: after full runs (a happy one and a failing, compensated one) every
// workflow history, the worker processes' logs, the CLI's output, the lab journal and (when the lab logs
// them) the command lines that arrived over SSH are scanned for every secret of the run.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdtempSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { findTemporalCli } from '../temporal/cli-binary';
import { startLab, type Lab } from '../lab';
import { scanText, secretsOfConfig, textsOf, uniqueSecrets, type Finding, type Secret } from './secret-scan';
import { runScenario, type Env, type RunOutcome, type Scenario } from './session';
import { startWorkerProc } from './proc';

export interface SecretsReport {
  runs: number;
  places: string[];
  findings: Finding[];
  /** places that could not be scanned, and why */
  gaps: string[];
  statuses: string[];
}

export const SECRET_SCENARIOS: Scenario[] = [
  { name: 'secrets-happy', decide: { openwebui: 'keep', frontend: 'both' }, expect: 'completed' },
  { name: 'secrets-vllm-oom', decide: { openwebui: 'keep', frontend: 'comfyui' }, faults: ['vllm-oom'], expect: 'compensated' },
];

export function labSecrets(lab: Lab): Secret[] {
  return Object.entries(lab.secrets as unknown as Record<string, unknown>)
    .filter(([k, v]) => typeof v === 'string' && k !== 'tokenId')
    .map(([k, v]) => ({ name: `lab.secrets.${k}`, value: v as string }));
}

/** The command lines the lab received over SSH, if this lab records them (see the report: `lab.commands()`). */
export function labCommands(lab: Lab): string[] | undefined {
  const f = (lab as unknown as { commands?: () => Array<string | { line?: string; command?: string }> }).commands;
  if (typeof f !== 'function') return undefined;
  return f.call(lab).map((c) => (typeof c === 'string' ? c : (c.line ?? c.command ?? JSON.stringify(c))));
}

export function cliScript(): string {
  for (const p of [resolve(__dirname, '..', 'client.js'), resolve(__dirname, '..', '..', 'lib', 'client.js')]) if (existsSync(p)) return p;
  throw new Error('no compiled CLI (lib/client.js): run `npm run build` first');
}

/** Runs the CLI in a child process; returns its exit code and everything it printed. */
export function runCli(args: string[], timeoutMs = 10 * 60_000): Promise<{ code: number | null; output: string }> {
  return runProgram(process.execPath, [cliScript(), ...args], timeoutMs);
}

function runProgram(file: string, args: string[], timeoutMs = 10 * 60_000): Promise<{ code: number | null; output: string }> {
  return new Promise((res) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TEMPORAL_ADDRESS: '' } });
    const chunks: string[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => chunks.push(b.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      res({ code, output: chunks.join('') });
    });
  });
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

/**
 * The history as a user would export it: `temporal workflow show --output json` (payloads base64 inside),
 * else the SDK's historyToJSON (which fails under jest's module registry: "type must be a Type").
 */
async function historyExport(address: string, workflowId: string, history: unknown): Promise<[string, string]> {
  const cli = findTemporalCli();
  if (cli.path) {
    const r = await runProgram(cli.path, ['workflow', 'show', '--address', address, '--namespace', 'default', '-w', workflowId, '--output', 'json']);
    if (r.code === 0) return [`history ${workflowId} (temporal workflow show --output json)`, r.output];
  }
  try {
    return [`history ${workflowId} (historyToJSON)`, historyToJSON(history as Parameters<typeof historyToJSON>[0])];
  } catch (err) {
    return [`history ${workflowId} (JSON export failed: ${(err as Error).message})`, ''];
  }
}

/** Scans everything one harness run left behind; the lab is still up. */
export async function scanOutcome(env: Env, o: RunOutcome): Promise<{ findings: Finding[]; places: string[]; gaps: string[] }> {
  const secrets = uniqueSecrets([...labSecrets(o.lab), ...secretsOfConfig(o.configPath)]);
  const places: Array<[string, string]> = [];
  const history = await o.handle.fetchHistory();
  places.push([`history ${o.workflowId} (payloads decoded)`, textsOf(history).join('\n')]);
  places.push(await historyExport(env.address, o.workflowId, history));
  places.push([`worker logs ${o.scenario.name}`, o.workerLogs]);
  places.push([`lab journal ${o.scenario.name}`, o.lab.journal().map((e) => `${e.op} ${e.detail}`).join('\n')]);
  const gaps: string[] = [];
  const cmds = labCommands(o.lab);
  if (cmds) places.push([`SSH command lines ${o.scenario.name} (${cmds.length})`, cmds.join('\n')]);
  else gaps.push('SSH argv: the lab does not expose the command lines it received (wanted: lab.commands())');
  // The CLI reading the run back (status and history query the workflow: a worker must be up to answer).
  const taskQueue = (await o.handle.describe()).taskQueue;
  const w = startWorkerProc({ address: env.address, taskQueue, bundlePath: env.bundlePath });
  try {
    await w.ready;
    for (const args of [['status', o.workflowId], ['status', o.workflowId, '--json'], ['history', o.workflowId], ['history', o.workflowId, '--json']]) {
      const r = await runCli([...args, '--address', env.address]);
      places.push([`CLI ${args.join(' ')}`, r.output]);
    }
    // And the CLI reading the host itself: `plan --live` resolves the secrets in its own process and asks vLLM
    // with its key.
    for (const args of [['plan', '--live', '--config', o.configPath], ['plan', '--live', '--json', '--config', o.configPath]]) {
      const r = await runCli(args);
      // A plan that could not read the host printed no answer of vLLM's to scan: that is no pass.
      if (r.code !== 0) throw new Error(`pve-vllm ${args.slice(0, -2).join(' ')} exited ${r.code}: ${r.output.slice(-300)}`);
      places.push([`CLI ${args.slice(0, -2).join(' ')}`, r.output]);
    }
  } finally {
    await w.stop();
    places.push([`worker logs ${o.scenario.name} (CLI reads)`, w.output()]);
  }
  return { findings: places.flatMap(([where, text]) => scanText(where, text, secrets)), places: places.map(([p]) => p), gaps };
}

/** `pve-vllm demo` end to end in a child process (its own dev server, lab and worker), output scanned. */
export async function scanDemo(args: string[], name: string, workDir: string): Promise<{ findings: Finding[]; places: string[]; status: string; output: string }> {
  // A lab state made here first, so the demo's lab has credentials we know (they are kept in the state).
  const statePath = join(mkdtempSync(join(workDir, 'demo-')), 'lab.json');
  const lab = await startLab({ statePath });
  const cfg = join(workDir, `${name}-config`, 'lab.yaml');
  await lab.writeConfig(cfg);
  const secrets = uniqueSecrets([...labSecrets(lab), ...secretsOfConfig(cfg)]);
  await lab.stop();
  const r = await runCli(['demo', '--lab-state', statePath, '--ui-port', String(await freePort()), '--time-scale', '0.05', ...args]);
  const after = await startLab({ statePath });
  const more = uniqueSecrets([...secrets, ...labSecrets(after)]);
  await after.stop();
  const where = `CLI demo ${args.join(' ')}`;
  return { findings: scanText(where, r.output, more), places: [where], status: `demo ${name} exit ${r.code}`, output: r.output };
}

export async function secretsCheck(env: Env, opts: { demo?: boolean; scenarios?: Scenario[] } = {}): Promise<SecretsReport> {
  const report: SecretsReport = { runs: 0, places: [], findings: [], gaps: [], statuses: [] };
  for (const s of opts.scenarios ?? SECRET_SCENARIOS) {
    const o = await runScenario(env, s);
    try {
      report.runs += 1;
      report.statuses.push(`${s.name}: ${o.progress.status}${o.ok ? '' : ` (expected ${s.expect})`}`);
      const r = await scanOutcome(env, o);
      report.findings.push(...r.findings);
      report.places.push(...r.places);
      for (const g of r.gaps) if (!report.gaps.includes(g)) report.gaps.push(g);
    } finally {
      await o.lab.stop();
    }
  }
  if (opts.demo) {
    for (const [args, name] of [
      [['--decide', 'openwebui=keep', '--decide', 'frontend=openwebui'], 'happy'],
      [['--decide', 'openwebui=keep', '--decide', 'frontend=comfyui', '--fault', 'vllm-oom', '--json'], 'vllm-oom'],
    ] as const) {
      const d = await scanDemo([...args], name, env.workDir);
      report.runs += 1;
      report.findings.push(...d.findings);
      report.places.push(...d.places);
      report.statuses.push(d.status);
    }
  }
  return report;
}
