/** `git` (clone, -C, rev-parse, describe, checkout, fetch, status) against the lab's fixed repositories. */
import { defineCommand } from 'just-bash';
import type { Command } from 'just-bash';
import { findRepo } from './catalog';
import { fail, notFound, ok, parseFlags, readText, writeText, type Result } from './cmd-util';
import { hasCommand } from './cmd-pkg';
import type { Machine, World } from './world';

export function gitCommands(world: World, m: Machine): Command[] {
  const host = world.host;
  const journal = (op: string, detail: string): void => { host.record('ssh', op, m.vmid ?? undefined, detail); };
  const git = defineCommand('git', async (args, ctx): Promise<Result> => {
    if (!hasCommand(world, m, 'git')) return notFound('git');
    let cwd = ctx.cwd;
    let a = args;
    if (a[0] === '-C') {
      cwd = ctx.fs.resolvePath(ctx.cwd, a[1] ?? '');
      if (!(await ctx.fs.exists(cwd))) return fail(`fatal: cannot change to '${a[1] ?? ''}': No such file or directory\n`, 128);
      a = a.slice(2);
    }
    const sub = a[0];
    if (sub === 'clone') {
      const { flags, operands } = parseFlags(a.slice(1), ['--branch', '-b', '--depth']);
      const url = operands[0] ?? '';
      const repo = findRepo(url);
      const dir = ctx.fs.resolvePath(cwd, operands[1] ?? url.replace(/\.git$/, '').replace(/^.*\//, ''));
      if ((await ctx.fs.exists(dir)) && (await ctx.fs.readdir(dir)).length > 0) return fail(`fatal: destination path '${operands[1] ?? dir}' already exists and is not an empty directory.\n`, 128);
      const shown = operands[1] ?? url.replace(/\.git$/, '').replace(/^.*\//, '');
      if (!repo) return fail(`Cloning into '${shown}'...\nfatal: repository '${url}/' not found\n`, 128);
      const ref = String(flags['--branch'] ?? flags['-b'] ?? repo.defaultBranch);
      const commit = repo.refs[ref];
      if (!commit) return fail(`Cloning into '${shown}'...\nwarning: Could not find remote branch ${ref} to clone.\nfatal: Remote branch ${ref} not found in upstream origin\n`, 128);
      await host.delay(3000);
      for (const [p, c] of Object.entries(repo.files)) await writeText(ctx, `${dir}/${p}`, c);
      await writeText(ctx, `${dir}/.git/HEAD`, repo.refs[ref] && ref !== repo.defaultBranch && /^v\d/.test(ref) ? `${commit}\n` : `ref: refs/heads/${ref}\n`);
      await writeText(ctx, `${dir}/.git/lab-repo`, JSON.stringify({ url: repo.url, head: commit }));
      journal('git clone', `${repo.url} -> ${dir}`);
      return ok('', `Cloning into '${shown}'...\n${/^v\d/.test(ref) ? `Note: switching to '${commit}'.\n\nYou are in 'detached HEAD' state.\n` : ''}`);
    }
    const meta = await readText(ctx, `${cwd}/.git/lab-repo`);
    if (meta === undefined) return fail('fatal: not a git repository (or any of the parent directories): .git\n', 128);
    const info = JSON.parse(meta) as { url: string; head: string };
    const repo = findRepo(info.url);
    if (sub === 'rev-parse') {
      const revs = a.slice(1).filter((x) => !x.startsWith('-'));
      if (revs.length === 0) return ok('');
      let out = '';
      for (const rev of revs) {
        const name = rev.replace(/\^\{(commit|tag)?\}$/, '').replace(/^refs\/(tags|heads)\//, '');
        const commit = name === 'HEAD' ? info.head : repo?.refs[name] ?? (/^[0-9a-f]{40}$/.test(name) ? name : undefined);
        if (!commit) {
          if (a.includes('--verify')) return fail('fatal: Needed a single revision\n', 128, out);
          return fail(`${rev}\nfatal: ambiguous argument '${rev}': unknown revision or path not in the working tree.\nUse '--' to separate paths from revisions, like this:\n'git <command> [<revision>...] -- [<file>...]'\n`, 128, out);
        }
        out += `${commit}\n`;
      }
      return ok(out);
    }
    if (sub === 'describe') {
      const tag = Object.entries(repo?.refs ?? {}).find(([k, v]) => v === info.head && /^v\d/.test(k));
      return tag ? ok(`${tag[0]}\n`) : fail('fatal: No names found, cannot describe anything.\n', 128);
    }
    if (sub === 'fetch') return ok();
    if (sub === 'checkout') {
      const ref = a.slice(1).find((x) => !x.startsWith('-')) ?? '';
      const commit = repo?.refs[ref] ?? (/^[0-9a-f]{40}$/.test(ref) && Object.values(repo?.refs ?? {}).includes(ref) ? ref : undefined);
      if (!commit) return fail(`error: pathspec '${ref}' did not match any file(s) known to git\n`, 1);
      if (commit === info.head) return ok('', `HEAD is now at ${commit.slice(0, 9)}\n`);
      await writeText(ctx, `${cwd}/.git/lab-repo`, JSON.stringify({ url: info.url, head: commit }));
      await writeText(ctx, `${cwd}/.git/HEAD`, `${commit}\n`);
      journal('git checkout', `${cwd} ${ref}`);
      return ok('', `Note: switching to '${ref}'.\n\nYou are in 'detached HEAD' state.\nHEAD is now at ${commit.slice(0, 9)}\n`);
    }
    if (sub === 'status') return ok('HEAD detached at ' + info.head.slice(0, 9) + '\nnothing to commit, working tree clean\n');
    return fail(`git: '${sub ?? ''}' is not a git command. See 'git --help'.\n`, 1);
  });

  return [git];
}
