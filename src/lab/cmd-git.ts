/** `git` (clone, ls-remote, -C, rev-parse, describe, checkout, fetch, status) against the lab's fixed repositories. */
import { defineCommand } from 'just-bash';
import type { Command } from 'just-bash';
import { findRepo, type GitRepo } from './catalog';
import { fail, notFound, ok, parseFlags, readText, writeText, type Result } from './cmd-util';
import { hasCommand } from './cmd-pkg';
import type { Machine, World } from './world';

/** A repository's refs as the remote advertises them: tags (v…) under refs/tags, the rest under refs/heads. */
function remoteRefs(repo: GitRepo): Array<[string, string]> {
  return Object.entries(repo.refs)
    .map(([name, commit]): [string, string] => [/^v\d/.test(name) ? `refs/tags/${name}` : `refs/heads/${name}`, commit])
    .sort((x, y) => x[0].localeCompare(y[0]));
}

/** What a fetch or clone names on the remote: `tag X`, a full ref, a short name (git's DWIM order) or a commit. */
function remoteRef(repo: GitRepo, spec: string): { ref: string; commit: string } | undefined {
  const refs = new Map(remoteRefs(repo));
  for (const ref of [spec, `refs/${spec}`, `refs/tags/${spec}`, `refs/heads/${spec}`]) {
    const commit = refs.get(ref);
    if (commit) return { ref, commit };
  }
  return /^[0-9a-f]{40}$/.test(spec) && [...refs.values()].includes(spec) ? { ref: spec, commit: spec } : undefined;
}

/** The clone's own state: its HEAD, local refs and the commits it holds (a shallow clone holds only what it fetched). */
interface Local {
  url: string;
  head: string;
  refs?: Record<string, string>;
  have?: string[];
  fetchHead?: string;
}

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
    const notFoundRemote = (url: string): Result => fail(`remote: Repository not found.\nfatal: repository '${url.replace(/\/?$/, '/')}' not found\n`, 128);
    if (sub === 'ls-remote') {
      const { operands } = parseFlags(a.slice(1), []);
      const url = operands[0] ?? '';
      const repo = findRepo(url);
      if (!repo) return notFoundRemote(url);
      const patterns = operands.slice(1);
      const lines: Array<[string, string]> = [['HEAD', repo.refs[repo.defaultBranch] ?? ''], ...remoteRefs(repo).map(([r, c]): [string, string] => [r, c])];
      const shown = lines.filter(([ref]) => patterns.length === 0 || patterns.some((p) => ref === p || ref.endsWith(`/${p}`)));
      return ok(shown.map(([ref, c]) => `${c}\t${ref}\n`).join(''));
    }
    if (sub === 'clone') {
      const { flags, operands } = parseFlags(a.slice(1), ['--branch', '-b', '--depth']);
      const url = operands[0] ?? '';
      const repo = findRepo(url);
      const dir = ctx.fs.resolvePath(cwd, operands[1] ?? url.replace(/\.git$/, '').replace(/^.*\//, ''));
      if ((await ctx.fs.exists(dir)) && (await ctx.fs.readdir(dir)).length > 0) return fail(`fatal: destination path '${operands[1] ?? dir}' already exists and is not an empty directory.\n`, 128);
      const shown = operands[1] ?? url.replace(/\.git$/, '').replace(/^.*\//, '');
      if (!repo) return fail(`Cloning into '${shown}'...\nremote: Repository not found.\nfatal: repository '${url.replace(/\/?$/, '/')}' not found\n`, 128);
      const ref = String(flags['--branch'] ?? flags['-b'] ?? repo.defaultBranch);
      // --branch takes a branch or a tag, never a commit id.
      const found = remoteRef(repo, ref);
      if (!found || !found.ref.startsWith('refs/')) return fail(`Cloning into '${shown}'...\nwarning: Could not find remote branch ${ref} to clone.\nfatal: Remote branch ${ref} not found in upstream origin\n`, 128);
      await host.delay(3000);
      const tag = found.ref.startsWith('refs/tags/');
      const checkout = !(flags['--no-checkout'] || flags['-n']);
      if (checkout) for (const [p, c] of Object.entries(repo.files)) await writeText(ctx, `${dir}/${p}`, c);
      await writeText(ctx, `${dir}/.git/HEAD`, tag ? `${found.commit}\n` : `ref: refs/heads/${ref}\n`);
      const refs = tag ? { [found.ref]: found.commit } : { [found.ref]: found.commit, [`refs/remotes/origin/${ref}`]: found.commit };
      await saveLocal(ctx, dir, { url: repo.url, head: found.commit, refs, have: [found.commit] });
      journal('git clone', `${repo.url} -> ${dir}`);
      return ok('', `Cloning into '${shown}'...\n${tag && checkout ? `Note: switching to '${found.commit}'.\n\nYou are in 'detached HEAD' state.\n` : ''}`);
    }
    const meta = await readText(ctx, `${cwd}/.git/lab-repo`);
    if (meta === undefined) return fail('fatal: not a git repository (or any of the parent directories): .git\n', 128);
    const local = JSON.parse(meta) as Local;
    const refs = local.refs ?? {};
    const have = new Set(local.have ?? [local.head]);
    const repo = findRepo(local.url);
    /** A revision as this clone resolves it: HEAD, FETCH_HEAD, its own refs (git's DWIM order), a commit it holds. */
    const resolve = (rev: string): string | undefined => {
      if (rev === 'HEAD') return local.head;
      if (rev === 'FETCH_HEAD') return local.fetchHead;
      for (const r of [rev, `refs/${rev}`, `refs/tags/${rev}`, `refs/heads/${rev}`, `refs/remotes/${rev}`]) if (refs[r]) return refs[r];
      return /^[0-9a-f]{40}$/.test(rev) && have.has(rev) ? rev : undefined;
    };
    if (sub === 'rev-parse') {
      const revs = a.slice(1).filter((x) => !x.startsWith('-'));
      if (revs.length === 0) return ok('');
      let out = '';
      for (const rev of revs) {
        const commit = resolve(rev.replace(/\^\{(commit|tag)?\}$/, ''));
        if (!commit) {
          if (a.includes('--verify')) return fail('fatal: Needed a single revision\n', 128, out);
          return fail(`${rev}\nfatal: ambiguous argument '${rev}': unknown revision or path not in the working tree.\nUse '--' to separate paths from revisions, like this:\n'git <command> [<revision>...] -- [<file>...]'\n`, 128, out);
        }
        out += `${commit}\n`;
      }
      return ok(out);
    }
    if (sub === 'describe') {
      const tag = Object.entries(refs).find(([k, v]) => v === local.head && k.startsWith('refs/tags/'));
      return tag ? ok(`${tag[0].slice('refs/tags/'.length)}\n`) : fail('fatal: No names found, cannot describe anything.\n', 128);
    }
    if (sub === 'fetch') {
      const { operands } = parseFlags(a.slice(1), ['--depth']);
      const remote = operands[0] ?? 'origin';
      const url = remote === 'origin' ? local.url : remote;
      const from = findRepo(url);
      if (!from) return remote === 'origin' || /^[a-z]+:\/\//.test(remote) ? notFoundRemote(url) : fail(`fatal: '${remote}' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n`, 128);
      const specs = operands.slice(1);
      let stderr = `From ${from.url}\n`;
      for (let i = 0; i < specs.length; i++) {
        const tagged = specs[i] === 'tag';
        const spec = tagged ? `refs/tags/${specs[++i] ?? ''}` : (specs[i] ?? '');
        const got = remoteRef(from, spec);
        if (!got) {
          if (/^[0-9a-f]{40}$/.test(spec)) return fail(`fatal: remote error: upload-pack: not our ref ${spec}\n`, 128);
          return fail(`fatal: couldn't find remote ref ${spec}\n`, 128);
        }
        have.add(got.commit);
        local.fetchHead = got.commit;
        const short = got.ref.replace(/^refs\/(tags|heads)\//, '');
        if (tagged) {
          const isNew = refs[got.ref] === undefined;
          refs[got.ref] = got.commit;
          stderr += ` * ${isNew ? '[new tag]' : '[tag update]'}${' '.repeat(isNew ? 9 : 6)}${short.padEnd(10)} -> ${short}\n`;
        } else {
          stderr += ` * ${got.ref.startsWith('refs/tags/') ? 'tag   ' : got.ref.startsWith('refs/heads/') ? 'branch' : ''}${' '.repeat(got.ref.startsWith('refs/') ? 12 : 18)}${short.padEnd(10)} -> FETCH_HEAD\n`;
        }
      }
      await saveLocal(ctx, cwd, { ...local, refs, have: [...have] });
      journal('git fetch', `${from.url} ${specs.join(' ')}`);
      return ok('', stderr);
    }
    if (sub === 'checkout') {
      const ref = a.slice(1).find((x) => !x.startsWith('-')) ?? '';
      const commit = resolve(ref);
      if (!commit) return fail(`error: pathspec '${ref}' did not match any file(s) known to git\n`, 1);
      if (commit === local.head && (await ctx.fs.exists(`${cwd}/README.md`))) return ok('', `HEAD is now at ${commit.slice(0, 9)}\n`);
      if (repo) for (const [p, c] of Object.entries(repo.files)) await writeText(ctx, `${cwd}/${p}`, c);
      await saveLocal(ctx, cwd, { ...local, head: commit, refs, have: [...have] });
      await writeText(ctx, `${cwd}/.git/HEAD`, `${commit}\n`);
      journal('git checkout', `${cwd} ${ref}`);
      return ok('', `Note: switching to '${ref}'.\n\nYou are in 'detached HEAD' state.\nHEAD is now at ${commit.slice(0, 9)}\n`);
    }
    if (sub === 'status') return ok('HEAD detached at ' + local.head.slice(0, 9) + '\nnothing to commit, working tree clean\n');
    return fail(`git: '${sub ?? ''}' is not a git command. See 'git --help'.\n`, 1);
  });

  async function saveLocal(ctx: Parameters<typeof readText>[0], dir: string, local: Local): Promise<void> {
    await writeText(ctx, `${dir}/.git/lab-repo`, JSON.stringify(local));
  }

  return [git];
}
