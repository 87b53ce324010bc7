/**
 * Accounts and privilege: `useradd`, `usermod`, `id`, `getent`, `groups`, `chown`, `chpasswd`, `whoami`,
 * `hostname`, `visudo -c[f]`, `sudo`, and a `bash`/`sh` that also understands `-s` (script on stdin).
 * /etc/passwd, /etc/group and /etc/sudoers.d live in the machine's filesystem, so SSH login reads the same files.
 */
import { defineCommand } from 'just-bash';
import type { Command } from 'just-bash';
import { currentUser, fail, isRoot, notFound, ok, parseFlags, readText, shellQuote, stdinBytes, stdinText, writeText, type Ctx, type Result } from './cmd-util';
import type { Machine, World } from './world';
import { SUDOERS, SUDOERS_README } from './base-files';

interface PwEntry { name: string; uid: number; gid: number; home: string; shell: string }

export function parsePasswd(text: string): PwEntry[] {
  return text.split('\n').filter(Boolean).map((l) => {
    const f = l.split(':');
    return { name: f[0] ?? '', uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '', shell: f[6] ?? '' };
  });
}

interface GrEntry { name: string; gid: number; members: string[] }
function parseGroup(text: string): GrEntry[] {
  return text.split('\n').filter(Boolean).map((l) => {
    const f = l.split(':');
    return { name: f[0] ?? '', gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) };
  });
}
const renderGroup = (gs: GrEntry[]): string => gs.map((g) => `${g.name}:x:${g.gid}:${g.members.join(',')}`).join('\n') + '\n';

/** One sudoers line: OK, or the 1-based column where sudo's parser gives up. */
export function sudoersLineError(line: string): number | null {
  const t = line.trim();
  if (t === '' || (t.startsWith('#') && !/^#include(dir)?\s/.test(t))) return null;
  if (/^[@#]include(dir)?\s+\S+$/.test(t)) return null;
  if (/^Defaults([:@!>][^\s]+)?\s+\S/.test(t)) return null;
  if (/^(User|Runas|Host|Cmnd)_Alias\s+[A-Z][A-Z0-9_]*\s*=\s*\S/.test(t)) return null;
  const name = '(?:%?[A-Za-z0-9_.-]+|ALL)';
  const list = `${name}(?:\\s*,\\s*${name})*`;
  const runas = '\\(\\s*(?:[A-Za-z0-9_.%-]+|ALL)?(?:\\s*:\\s*(?:[A-Za-z0-9_.%-]+|ALL))?\\s*\\)';
  const tag = '(?:NOPASSWD|PASSWD|SETENV|NOSETENV|NOEXEC|EXEC|LOG_INPUT|NOLOG_INPUT|LOG_OUTPUT|NOLOG_OUTPUT|MAIL|NOMAIL|FOLLOW|NOFOLLOW)\\s*:';
  const cmnd = '(?:!?\\s*(?:ALL|/[^\\s,:=()]+(?:\\s+[^,:=()]+)?))';
  const spec = new RegExp(`^${list}\\s+${list}\\s*=\\s*(?:${runas}\\s*)?(?:${tag}\\s*)*${cmnd}(?:\\s*,\\s*(?:${runas}\\s*)?(?:${tag}\\s*)*${cmnd})*$`);
  if (spec.test(t)) return null;
  // Point at the first suspicious token, as sudo's parser does (approximately).
  const lead = line.length - line.trimStart().length;
  const eq = t.indexOf('=');
  if (eq < 0) return lead + t.length + 1;
  const after = t.slice(eq + 1);
  const open = after.indexOf('(');
  if (open >= 0 && after.indexOf(')') < 0) return lead + eq + 1 + open + 1;
  const bad = after.search(/[^\sA-Za-z0-9_:(),/.!%*-]|[A-Za-z]+\s*:(?!\s*(ALL|\/))/);
  return lead + eq + 2 + Math.max(0, bad);
}

/** `visudo -cf` result for one file's text. */
export function visudoCheck(path: string, text: string): { ok: boolean; out: string } {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const col = sudoersLineError(lines[i] ?? '');
    if (col !== null) {
      const l = lines[i] ?? '';
      // sudo 1.9.13 form (file:line:col + the line + a caret); first line UNVERIFIED per host-commands.md §5.
      return { ok: false, out: `${path}:${i + 1}:${col}: syntax error\n${l}\n${' '.repeat(Math.max(0, col - 1))}^~~~\n` };
    }
  }
  return { ok: true, out: `${path}: parsed OK\n` };
}

export function userCommands(world: World, m: Machine): Command[] {
  const host = world.host;
  const rt = (): ReturnType<World['runtime']> => world.runtime(m.key);
  const users = async (ctx: Ctx): Promise<PwEntry[]> => parsePasswd((await readText(ctx, '/etc/passwd')) ?? '');
  const groups = async (ctx: Ctx): Promise<GrEntry[]> => parseGroup((await readText(ctx, '/etc/group')) ?? '');
  const journal = (op: string, detail: string): void => { host.record('ssh', op, m.vmid ?? undefined, detail); };

  const useradd = defineCommand('useradd', async (args, ctx): Promise<Result> => {
    if (!isRoot(ctx)) return fail('useradd: Permission denied.\nuseradd: cannot lock /etc/passwd; try again later.\n', 1);
    const { flags, operands } = parseFlags(args, ['-s', '-G', '-d', '-c', '-u', '-g', '--shell', '--groups', '--home-dir', '--comment', '--uid']);
    const name = operands[0];
    if (!name) return fail('Usage: useradd [options] LOGIN\n       useradd -D\n       useradd -D [options]\n', 2);
    if (!/^[a-z_][a-z0-9_-]*\$?$/.test(name)) return fail(`useradd: invalid user name '${name}': use --badname to ignore\n`, 3);
    const pw = await users(ctx);
    if (pw.some((u) => u.name === name)) return fail(`useradd: user '${name}' already exists\n`, 9);
    const gr = await groups(ctx);
    const extra = String(flags['-G'] ?? flags['--groups'] ?? '').split(',').filter(Boolean);
    for (const g of extra) if (!gr.some((x) => x.name === g)) return fail(`useradd: group '${g}' does not exist\n`, 6);
    const uid = Math.max(999, ...pw.filter((u) => u.uid >= 1000 && u.uid < 60000).map((u) => u.uid)) + 1;
    const home = String(flags['-d'] ?? flags['--home-dir'] ?? `/home/${name}`);
    const shell = String(flags['-s'] ?? flags['--shell'] ?? '/bin/sh');
    const gid = Math.max(999, ...gr.filter((g) => g.gid >= 1000 && g.gid < 60000).map((g) => g.gid)) + 1;
    gr.push({ name, gid, members: [] });
    for (const g of gr) if (extra.includes(g.name)) g.members.push(name);
    await ctx.fs.appendFile('/etc/passwd', `${name}:x:${uid}:${gid}:${String(flags['-c'] ?? '')}:${home}:${shell}\n`);
    await ctx.fs.appendFile('/etc/shadow', `${name}:!:20000:0:99999:7:::\n`);
    await ctx.fs.writeFile('/etc/group', renderGroup(gr));
    if (flags['-m'] || flags['--create-home']) {
      await ctx.fs.mkdir(home, { recursive: true });
      for (const f of ['.bashrc', '.profile']) {
        const c = await readText(ctx, `/etc/skel/${f}`);
        if (c !== undefined) await ctx.fs.writeFile(`${home}/${f}`, c);
      }
    }
    journal('useradd', name);
    return ok();
  });

  const usermod = defineCommand('usermod', async (args, ctx): Promise<Result> => {
    if (!isRoot(ctx)) return fail('usermod: Permission denied.\nusermod: cannot lock /etc/passwd; try again later.\n', 1);
    const { flags, operands } = parseFlags(args, ['-G', '-s', '--groups', '--shell']);
    const name = operands[0];
    if (!name) return fail('Usage: usermod [options] LOGIN\n', 2);
    const pw = await users(ctx);
    if (!pw.some((u) => u.name === name)) return fail(`usermod: user '${name}' does not exist\n`, 6);
    const gr = await groups(ctx);
    const list = String(flags['-G'] ?? flags['--groups'] ?? '').split(',').filter(Boolean);
    for (const g of list) if (!gr.some((x) => x.name === g)) return fail(`usermod: group '${g}' does not exist\n`, 6);
    const append = Boolean(flags['-a'] || flags['--append']);
    let changed = false;
    for (const g of gr) {
      const want = list.includes(g.name);
      const has = g.members.includes(name);
      if (want && !has) { g.members.push(name); changed = true; }
      if (!want && has && !append && list.length > 0) { g.members = g.members.filter((x) => x !== name); changed = true; }
    }
    if (changed) await ctx.fs.writeFile('/etc/group', renderGroup(gr));
    journal('usermod', `${name} ${args.join(' ')}`);
    return ok();
  });

  // gpasswd -d USER GROUP (passwd package): the one form the deploy's undo uses.
  const gpasswd = defineCommand('gpasswd', async (args, ctx): Promise<Result> => {
    if (args[0] !== '-d' || args.length !== 3) return fail('Usage: gpasswd [option] GROUP\n', 2);
    const [, name, group] = args as [string, string, string];
    if (!isRoot(ctx)) return fail(`gpasswd: Permission denied.\n`, 1);
    const gr = await groups(ctx);
    const g = gr.find((x) => x.name === group);
    if (!g) return fail(`gpasswd: group '${group}' does not exist in /etc/group\n`, 3);
    if (!g.members.includes(name)) return fail(`gpasswd: user '${name}' is not a member of '${group}'\n`, 3);
    g.members = g.members.filter((x) => x !== name);
    await ctx.fs.writeFile('/etc/group', renderGroup(gr));
    journal('gpasswd', `-d ${name} ${group}`);
    return ok(`Removing user ${name} from group ${group}\n`);
  });

  const idCmd = defineCommand('id', async (args, ctx): Promise<Result> => {
    const { flags, operands } = parseFlags(args, []);
    const name = operands[0] ?? currentUser(ctx);
    const u = (await users(ctx)).find((x) => x.name === name);
    if (!u) return fail(`id: ‘${name}’: no such user\n`, 1);
    const gr = await groups(ctx);
    const primary = gr.find((g) => g.gid === u.gid);
    const member = gr.filter((g) => g.members.includes(name) && g.gid !== u.gid);
    if (flags['-u']) return ok(flags['-n'] ? `${u.name}\n` : `${u.uid}\n`);
    if (flags['-G'] || flags['-Gn']) return ok(`${[primary, ...member].filter(Boolean).map((g) => (flags['-n'] ? g?.name : g?.gid)).join(' ')}\n`);
    const gl = [primary, ...member].filter((g): g is GrEntry => !!g).map((g) => `${g.gid}(${g.name})`).join(',');
    return ok(`uid=${u.uid}(${u.name}) gid=${u.gid}(${primary?.name ?? u.gid}) groups=${gl}\n`);
  });

  const getent = defineCommand('getent', async (args, ctx): Promise<Result> => {
    const [db, key] = args;
    const file = db === 'passwd' ? '/etc/passwd' : db === 'group' ? '/etc/group' : db === 'shadow' ? '/etc/shadow' : undefined;
    if (!file) return fail(`Unknown database: ${db ?? ''}\nTry \`getent --help' or \`getent --usage' for more information.\n`, 1);
    const lines = ((await readText(ctx, file)) ?? '').split('\n').filter(Boolean);
    if (key === undefined) return ok(lines.map((l) => `${l}\n`).join(''));
    const hit = lines.find((l) => l.split(':')[0] === key || l.split(':')[2] === key);
    return hit ? ok(`${hit}\n`) : fail('', 2);
  });

  const groupsCmd = defineCommand('groups', async (args, ctx): Promise<Result> => {
    const name = args[0] ?? currentUser(ctx);
    const u = (await users(ctx)).find((x) => x.name === name);
    if (!u) return fail(`groups: ‘${name}’: no such user\n`, 1);
    const gr = await groups(ctx);
    const names = [gr.find((g) => g.gid === u.gid)?.name, ...gr.filter((g) => g.members.includes(name)).map((g) => g.name)].filter(Boolean);
    return ok(args[0] ? `${name} : ${names.join(' ')}\n` : `${names.join(' ')}\n`);
  });

  const chown = defineCommand('chown', async (args, ctx): Promise<Result> => {
    const { operands } = parseFlags(args, []);
    const spec = operands[0];
    if (!spec || operands.length < 2) return fail("chown: missing operand\nTry 'chown --help' for more information.\n", 1);
    if (!isRoot(ctx)) return fail(`chown: changing ownership of '${operands[1]}': Operation not permitted\n`, 1);
    const [owner, group] = spec.split(/[:.]/);
    if (owner && !(await users(ctx)).some((u) => u.name === owner || String(u.uid) === owner)) return fail(`chown: invalid user: ‘${spec}’\n`, 1);
    if (group && !(await groups(ctx)).some((g) => g.name === group || String(g.gid) === group)) return fail(`chown: invalid group: ‘${spec}’\n`, 1);
    for (const p of operands.slice(1)) if (!(await ctx.fs.exists(ctx.fs.resolvePath(ctx.cwd, p)))) return fail(`chown: cannot access '${p}': No such file or directory\n`, 1);
    return ok(); // ownership is not modelled; the lab has one owner per file
  });

  const chpasswd = defineCommand('chpasswd', async (_args, ctx): Promise<Result> => {
    if (!isRoot(ctx)) return fail('chpasswd: Permission denied.\n', 1);
    for (const line of stdinText(ctx).split('\n').filter(Boolean)) {
      const name = line.split(':')[0] ?? '';
      if (!(await users(ctx)).some((u) => u.name === name)) return fail(`chpasswd: (user ${name}) pam_chauthtok() failed, error:\nAuthentication token manipulation error\nchpasswd: (line 1, user ${name}) password not changed\n`, 1);
    }
    journal('chpasswd', 'password set');
    return ok();
  });

  const whoami = defineCommand('whoami', async (_a, ctx) => ok(`${currentUser(ctx)}\n`));
  const hostnameCmd = defineCommand('hostname', async () => {
    const g = m.vmid === null ? null : host.guest(m.vmid);
    return ok(`${m.vmid === null ? host.state.node.name : g?.config.hostname ?? `CT${m.vmid}`}\n`);
  });

  const sudoInstalled = (): boolean => rt().packages.includes('sudo');

  const visudo = defineCommand('visudo', async (args, ctx): Promise<Result> => {
    if (!sudoInstalled()) return notFound('visudo');
    const { flags, operands } = parseFlags(args, ['-f']);
    const quiet = Boolean(flags['-q']);
    if (!flags['-c'] && !flags['-cf']) return fail('visudo: no editor found (editor path = /usr/bin/editor)\n', 1);
    const file = typeof flags['-f'] === 'string' ? flags['-f'] : flags['-cf'] ? operands[0] : undefined;
    const files = file ? [file] : ['/etc/sudoers', ...((await ctx.fs.readdir('/etc/sudoers.d').catch(() => [] as string[])).filter((n) => !n.includes('.') && !n.endsWith('~')).map((n) => `/etc/sudoers.d/${n}`))];
    let out = '';
    for (const f of files) {
      const text = await readText(ctx, f);
      if (text === undefined) return fail(`visudo: unable to open ${f}: No such file or directory\n`, 1);
      const r = visudoCheck(f, text);
      if (!r.ok) return fail(r.out, 1, out); // syntax errors go to stderr, "parsed OK" lines to stdout
      if (!quiet) out += r.out;
    }
    return ok(out);
  });

  /** Parse sudoers + sudoers.d; null when a file is broken (sudo then refuses to run at all). */
  async function sudoRules(ctx: Ctx): Promise<{ rules: string[]; broken: string | null }> {
    const rules: string[] = [];
    const files = ['/etc/sudoers'];
    for (const n of await ctx.fs.readdir('/etc/sudoers.d').catch(() => [] as string[])) {
      if (!n.includes('.') && !n.endsWith('~')) files.push(`/etc/sudoers.d/${n}`);
    }
    for (const f of files) {
      const text = (await readText(ctx, f)) ?? '';
      const r = visudoCheck(f, text);
      if (!r.ok) return { rules, broken: `${r.out}sudo: parse error in ${f} near line ${/:(\d+):/.exec(r.out)?.[1] ?? '1'}\nsudo: no valid sudoers sources found, quitting\n` };
      rules.push(...text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#') && !l.startsWith('@') && !l.startsWith('Defaults')));
    }
    return { rules, broken: null };
  }

  const sudo = defineCommand('sudo', async (args, ctx): Promise<Result> => {
    if (!sudoInstalled()) return notFound('sudo');
    let i = 0;
    let nonInteractive = false;
    let target = 'root';
    for (; i < args.length; i++) {
      const a = args[i] ?? '';
      if (a === '--') { i++; break; }
      if (!a.startsWith('-')) break;
      if (a === '-u') { target = args[++i] ?? 'root'; continue; }
      if (a.includes('n')) nonInteractive = true;
    }
    const argv = args.slice(i);
    const user = currentUser(ctx);
    if (user !== 'root') {
      const { rules, broken } = await sudoRules(ctx);
      if (broken) return fail(broken, 1);
      const gr = await groups(ctx);
      const mine = (who: string): boolean => who === user || who === 'ALL' || (who.startsWith('%') && gr.some((g) => g.name === who.slice(1) && g.members.includes(user)));
      const grants = rules.filter((r) => r.split(/\s+/)[0]?.split(',').some((w) => mine(w.trim())));
      const nopasswd = grants.some((r) => /NOPASSWD\s*:/.test(r));
      if (!nopasswd) {
        if (nonInteractive) return fail('sudo: a password is required\n', 1);
        return fail('sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\nsudo: a password is required\n', 1);
      }
    }
    if (argv.length === 0) return fail('usage: sudo -h | -K | -k | -V\nusage: sudo -v [-ABkNnS] [-g group] [-h host] [-p prompt] [-u user]\n', 1);
    const pw = (await users(ctx)).find((u) => u.name === target);
    if (!pw) return fail(`sudo: unknown user ${target}\nsudo: error initializing audit plugin sudoers_audit\n`, 1);
    const env = { ...Object.fromEntries(ctx.env), USER: target, LOGNAME: target, HOME: pw.home, SUDO_USER: user };
    const res = await world.runProgram(m, argv, { stdin: stdinBytes(ctx), env, cwd: ctx.cwd, assignments: 'env' });
    return 'notFound' in res ? fail(`sudo: ${res.notFound}: command not found\n`, 1) : res;
  });

  /** `bash -s`, `bash -c`, `bash FILE` with positional parameters (just-bash's own `bash` has no `-s`). */
  const shell = (name: string): Command => defineCommand(name, async (args, ctx): Promise<Result> => {
    let i = 0;
    let script: string | undefined;
    let stdin = stdinBytes(ctx);
    let positional: string[] = [];
    const opts: string[] = [];
    for (; i < args.length; i++) {
      const a = args[i] ?? '';
      if (a === '-c') { script = args[i + 1] ?? ''; positional = args.slice(i + 3); break; }
      if (a === '-s') { script = stdinText(ctx); stdin = ''; positional = args.slice(i + 1); if (positional[0] === '--') positional.shift(); break; }
      if (a === '-o') { opts.push(`-o ${args[i + 1] ?? ''}`); i++; continue; }
      if (a.startsWith('-')) { opts.push(a); continue; }
      const text = await readText(ctx, a);
      if (text === undefined) return fail(`${name}: ${a}: No such file or directory\n`, 127);
      script = text;
      positional = args.slice(i + 1);
      break;
    }
    if (script === undefined) { script = stdinText(ctx); stdin = ''; }
    const sets = opts.filter((o) => /^-[a-z]+$/.test(o) && /[eux]/.test(o)).map((o) => `set ${o.replace(/[^-eux]/g, '')}\n`).join('');
    const pipefail = opts.includes('-o pipefail') ? 'set -o pipefail\n' : '';
    return world.run(m, sets + pipefail + script, { stdin, env: Object.fromEntries(ctx.env), cwd: ctx.cwd, args: positional });
  });

  // debianutils' which: where a program is on PATH (never a builtin); nothing printed and status 1 for a miss.
  const which = defineCommand('which', async (args, ctx): Promise<Result> => {
    const path = (ctx.env.get('PATH') ?? '').split(':');
    let stdout = '';
    let exitCode = 0;
    for (const name of args.filter((a) => !a.startsWith('-'))) {
      const found = (await ctx.exec!(`command -v -- ${shellQuote([name])}`, { cwd: ctx.cwd })).stdout.trim();
      // The lab's programs are not files: command -v names them /usr/bin/<name>; Debian keeps some in /usr/sbin.
      const at = found === `/usr/bin/${name}` && SBIN.has(name) ? `/usr/sbin/${name}` : found;
      const dir = at.slice(0, at.lastIndexOf('/'));
      if (at.startsWith('/') && (name.includes('/') || path.includes(dir) || path.includes(dir.replace(/^\/usr/, '')))) stdout += `${at}\n`;
      else exitCode = 1;
    }
    return { stdout, stderr: '', exitCode };
  });

  const umask = defineCommand('umask', async (args) => ok(args.length === 0 ? '0022\n' : ''));
  const trap = defineCommand('trap', async () => ok()); // signals are not modelled; EXIT traps do not run
  const mktemp = defineCommand('mktemp', async (args, ctx): Promise<Result> => {
    const { flags, operands } = parseFlags(args, ['-p']);
    const tpl = operands[0] ?? 'tmp.XXXXXXXXXX';
    const name = tpl.replace(/X+$/, (x) => Array.from({ length: x.length }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(Math.random() * 36)]).join(''));
    const path = name.startsWith('/') ? name : `${String(flags['-p'] ?? '/tmp')}/${name}`;
    if (flags['-d']) await ctx.fs.mkdir(path, { recursive: true });
    else await writeText(ctx, path, '');
    return ok(`${path}\n`);
  });

  return [which, umask, trap, mktemp, useradd, usermod, gpasswd, idCmd, getent, groupsCmd, chown, chpasswd, whoami, hostnameCmd, visudo, sudo, shell('bash'), shell('sh')];
}

/** Programs Debian and Proxmox VE install in /usr/sbin (on root's PATH, not on a user's). */
const SBIN = new Set(['pct', 'qm', 'pvesm', 'pveam', 'modprobe', 'modinfo', 'lsmod', 'rmmod', 'insmod', 'depmod', 'useradd', 'usermod', 'userdel', 'groupadd', 'chpasswd', 'visudo', 'update-initramfs', 'sysctl']);

/** Files the `sudo` package installs. */
export async function installSudoFiles(m: Machine): Promise<void> {
  if (!(await m.fs.exists('/etc/sudoers'))) await m.fs.writeFile('/etc/sudoers', SUDOERS);
  await m.fs.mkdir('/etc/sudoers.d', { recursive: true });
  if (!(await m.fs.exists('/etc/sudoers.d/README'))) await m.fs.writeFile('/etc/sudoers.d/README', SUDOERS_README);
}

export { writeText };
