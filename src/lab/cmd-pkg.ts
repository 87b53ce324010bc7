/**
 * Software management and services inside a machine: `apt-get`/`apt`, `dpkg`, `dpkg-query`, `gpg`,
 * `install`, `wget`, `systemctl` and `nvidia-ctk`. Installed packages decide which commands exist.
 */
import { defineCommand } from 'just-bash';
import type { Command } from 'just-bash';
import { CUDA_REPO_DRIVERS, NVIDIA_USERSPACE, PACKAGES, REPO_MARKERS, download } from './catalog';
import { fail, isRoot, notFound, ok, parseFlags, readText, stdinText, writeInDir, writeText, type Ctx, type Result } from './cmd-util';
import { installSudoFiles } from './cmd-users';
import type { Machine, World } from './world';
import { PROVIDES } from './provides';

/**
 * systemd's notice, on stderr with exit 0, when `enable` meets units none of which has an [Install] section (they
 * stay "static"). The wording of systemd before 253 (a 2023 capture; 253 reworded it and added one for `disable`),
 * UNVERIFIED for Debian 12's 252 exactly; the lone space keeps the blank line from being stripped.
 */
const NO_INSTALL_CONFIG = `The unit files have no installation config (WantedBy=, RequiredBy=, Also=,
Alias= settings in the [Install] section, and DefaultInstance= for template
units). This means they are not meant to be enabled using systemctl.
 
Possible reasons for having this kind of units are:
\u2022 A unit may be statically enabled by being symlinked from another unit's
  .wants/ or .requires/ directory.
\u2022 A unit's purpose may be to act as a helper for some other unit which has
  a requirement dependency on it.
\u2022 A unit may be started when needed via activation (socket, path, timer,
  D-Bus, udev, scripted systemctl call, ...).
\u2022 In case of template units, the unit is meant to be enabled with some
  instance name specified.
`;
export { PROVIDES };


export function hasCommand(world: World, m: Machine, cmd: string): boolean {
  const pk = world.runtime(m.key).packages;
  return (PROVIDES[cmd] ?? []).some((p) => pk.includes(p));
}

const DEFAULT_CTK_TOML = `#accept-nvidia-visible-devices-as-volume-mounts = false
#accept-nvidia-visible-devices-envvar-when-unprivileged = true
disable-require = false
supported-driver-capabilities = "compat32,compute,display,graphics,ngx,utility,video"
#swarm-resource = "DOCKER_RESOURCE_GPU"

[nvidia-container-cli]
#debug = "/var/log/nvidia-container-toolkit.log"
environment = []
#ldcache = "/etc/ld.so.cache"
ldconfig = "@/sbin/ldconfig"
load-kmods = true
#no-cgroups = false
#path = "/usr/bin/nvidia-container-cli"
#root = "/run/nvidia/driver"
#user = "root:video"

[nvidia-container-runtime]
#debug = "/var/log/nvidia-container-runtime.log"
log-level = "info"
mode = "auto"
runtimes = ["docker-runc", "runc", "crun"]

[nvidia-container-runtime.modes]

[nvidia-container-runtime.modes.cdi]
annotation-prefixes = ["cdi.k8s.io/"]
default-kind = "nvidia.com/gpu"
spec-dirs = ["/etc/cdi", "/var/run/cdi"]

[nvidia-container-runtime.modes.csv]
mount-spec-path = "/etc/nvidia-container-runtime/host-files-for-container.d"

[nvidia-container-runtime.modes.legacy]
cuda-compat-mode = "ldconfig"

[nvidia-container-runtime-hook]
path = "nvidia-container-runtime-hook"
skip-mode-detection = false

[nvidia-ctk]
path = "nvidia-ctk"
`;

/** Go's json.MarshalIndent(c, "", "    ") with sorted keys. */
function goJson(v: unknown, indent = ''): string {
  if (Array.isArray(v)) return v.length === 0 ? '[]' : `[\n${v.map((x) => `${indent}    ${goJson(x, `${indent}    `)}`).join(',\n')}\n${indent}]`;
  if (v && typeof v === 'object') {
    const keys = Object.keys(v as Record<string, unknown>).sort();
    if (keys.length === 0) return '{}';
    return `{\n${keys.map((k) => `${indent}    ${JSON.stringify(k)}: ${goJson((v as Record<string, unknown>)[k], `${indent}    `)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(v);
}

export function pkgCommands(world: World, m: Machine): Command[] {
  const host = world.host;
  const rt = (): ReturnType<World['runtime']> => world.runtime(m.key);
  const journal = (op: string, detail: string): void => { host.record('ssh', op, m.vmid ?? undefined, detail); };

  /** Docker's daemon needs nesting (and keyctl when unprivileged) in an LXC. */
  const dockerdCanRun = (): boolean => {
    if (m.vmid === null) return true;
    const conf = host.guest(m.vmid)?.config ?? {};
    const feats = Object.fromEntries((conf.features ?? '').split(',').filter(Boolean).map((p) => p.split('=') as [string, string]));
    if (feats.nesting !== '1') return false;
    return conf.unprivileged !== '1' || feats.keyctl === '1';
  };

  async function repoLists(ctx: Ctx): Promise<Array<{ file: string; text: string }>> {
    const out: Array<{ file: string; text: string }> = [];
    for (const n of await ctx.fs.readdir('/etc/apt/sources.list.d').catch(() => [] as string[])) {
      out.push({ file: n, text: (await readText(ctx, `/etc/apt/sources.list.d/${n}`)) ?? '' });
    }
    return out;
  }

  async function postInstall(ctx: Ctx, name: string, version: string): Promise<string> {
    const r = rt();
    let extra = '';
    if (name === 'sudo') await installSudoFiles(m);
    if (name === 'docker-ce' || name === 'docker.io') {
      await ctx.fs.mkdir('/etc/docker', { recursive: true });
      if (dockerdCanRun()) {
        r.services['docker.service'] = 'active';
        r.services['containerd.service'] = 'active';
      } else {
        r.services['docker.service'] = 'failed';
        extra += 'Job for docker.service failed because the control process exited with error code.\nSee "systemctl status docker.service" and "journalctl -xeu docker.service" for details.\ninvoke-rc.d: initscript docker, action "start" failed.\n';
      }
      r.enabledServices.push('docker.service', 'containerd.service');
    }
    if (name === 'nvidia-container-toolkit-base' && !(await ctx.fs.exists('/etc/nvidia-container-runtime/config.toml'))) {
      await writeText(ctx, '/etc/nvidia-container-runtime/config.toml', DEFAULT_CTK_TOML);
    }
    if (NVIDIA_USERSPACE.test(name)) {
      const v = version.replace(/-[^-]*$/, '');
      r.nvidiaUserspace = host.hasFault('driver-mismatch') ? CUDA_REPO_DRIVERS.find((x) => x !== host.state.node.nvidiaDriver) ?? '580.95.05' : v;
    }
    return extra;
  }

  const aptGet = (cmdName: string): Command => defineCommand(cmdName, async (args, ctx): Promise<Result> => {
    if (!isRoot(ctx)) return fail('E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n', 100);
    const { flags, operands } = parseFlags(args, ['-o']);
    const quiet = Boolean(flags['-q'] || flags['-qq']);
    const sub = operands[0];
    const r = rt();
    if (sub === 'update') {
      const lists = await repoLists(ctx);
      await host.delay(2500);
      r.aptUpdated = true;
      r.aptRepos = lists.map((l) => l.text);
      let out = 'Hit:1 http://deb.debian.org/debian bookworm InRelease\nGet:2 http://deb.debian.org/debian bookworm-updates InRelease [55.4 kB]\nGet:3 http://security.debian.org bookworm-security InRelease [48.0 kB]\n';
      lists.forEach((l, i) => { out += `Get:${i + 4} ${/https?:\/\/\S+/.exec(l.text)?.[0] ?? 'http://mirror'} InRelease [${(20 + i * 7).toFixed(1)} kB]\n`; });
      out += 'Fetched 8,912 kB in 2s (4,456 kB/s)\nReading package lists...\n';
      return ok(flags['-qq'] ? '' : out);
    }
    // The operations a deploy may use; anything else is apt-get's own error, as on a host.
    if (sub === undefined) return fail('E: No command given\n', 100);
    if (['upgrade', 'dist-upgrade', 'full-upgrade', 'remove', 'purge', 'autoremove', 'clean', 'autoclean', 'source', 'build-dep', 'download', 'check', 'satisfy'].includes(sub)) {
      return fail(`lab: apt-get ${sub} is not modelled\n`, 100);
    }
    if (sub !== 'install') return fail(`E: Invalid operation ${sub}\n`, 100);
    const wanted = operands.slice(1);
    const available = (name: string): boolean => {
      const info = PACKAGES[name];
      if (!info || !r.aptUpdated) return false;
      if (!info.repo) return true;
      return (r.aptRepos ?? []).some((t) => REPO_MARKERS[info.repo ?? 'docker'].test(t));
    };
    const plan: Array<{ name: string; version: string; sizeKb: number }> = [];
    const already: string[] = [];
    const add = (spec: string): string | null => {
      const [name = '', pin] = spec.split('=');
      const info = PACKAGES[name];
      if (!info || !available(name)) return `E: Unable to locate package ${name}\n`;
      let version = info.version;
      if (pin !== undefined) {
        const v = pin.replace(/-[^-]*$/, '');
        if (info.repo === 'cuda' && CUDA_REPO_DRIVERS.includes(v)) version = pin;
        else if (pin !== info.version) return `E: Version '${pin}' for '${name}' was not found\n`;
      }
      if (r.packages.includes(name)) { already.push(`${name} is already the newest version (${version}).\n`); return null; }
      if (!plan.some((p) => p.name === name)) plan.push({ name, version, sizeKb: info.sizeKb });
      for (const d of info.deps ?? []) if (!r.packages.includes(d) && !plan.some((p) => p.name === d)) {
        const di = PACKAGES[d];
        if (di) plan.push({ name: d, version: di.repo === 'cuda' && pin ? pin : di.version, sizeKb: di.sizeKb });
      }
      return null;
    };
    let head = 'Reading package lists...\nBuilding dependency tree...\nReading state information...\n';
    for (const w of wanted) {
      const err = add(w);
      if (err) return fail(err, 100, quiet ? '' : head);
    }
    head += already.join('');
    if (plan.length === 0) return ok(quiet ? '' : `${head}0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n`);
    if (!flags['-y'] && !flags['--yes'] && !flags['-qq']) {
      return fail('', 1, `${head}The following NEW packages will be installed:\n  ${plan.map((p) => p.name).join(' ')}\n0 upgraded, ${plan.length} newly installed, 0 to remove and 0 not upgraded.\nDo you want to continue? [Y/n] Abort.\n`);
    }
    const totalKb = plan.reduce((a, p) => a + p.sizeKb, 0);
    let out = `${head}The following NEW packages will be installed:\n  ${plan.map((p) => p.name).join(' ')}\n`;
    out += `0 upgraded, ${plan.length} newly installed, 0 to remove and 0 not upgraded.\nNeed to get ${totalKb.toLocaleString('en-US')} kB of archives.\n`;
    out += `After this operation, ${(totalKb * 3).toLocaleString('en-US')} kB of additional disk space will be used.\n`;
    plan.forEach((p, i) => { out += `Get:${i + 1} http://deb.debian.org/debian bookworm/main amd64 ${p.name} amd64 ${p.version} [${p.sizeKb} kB]\n`; });
    out += 'debconf: delaying package configuration, since apt-utils is not installed\n';
    await host.delay(1000 + totalKb / 50);
    let errs = '';
    for (const p of plan) {
      out += `Selecting previously unselected package ${p.name}.\nPreparing to unpack .../${p.name}_${p.version.replace(/^\d+:/, '')}_amd64.deb ...\nUnpacking ${p.name} (${p.version}) ...\n`;
    }
    for (const p of plan) {
      r.packages.push(p.name);
      out += `Setting up ${p.name} (${p.version}) ...\n`;
      errs += await postInstall(ctx, p.name, p.version);
    }
    journal('apt-get install', plan.map((p) => p.name).join(' '));
    world.packagesChanged(m);
    return ok(quiet ? '' : out, errs);
  });

  const dpkgQuery = defineCommand('dpkg-query', async (args): Promise<Result> => {
    const { operands } = parseFlags(args, ['-f', '--showformat']);
    const name = operands[0] ?? '';
    if (!rt().packages.includes(name)) return fail(`dpkg-query: no packages found matching ${name}\n`, 1);
    return ok(`${name}\t${PACKAGES[name]?.version ?? '1.0'}\n`);
  });

  const dpkg = defineCommand('dpkg', async (args, ctx): Promise<Result> => {
    if (args[0] === '-s' || args[0] === '--status') {
      const name = args[1] ?? '';
      if (!rt().packages.includes(name)) return fail(`dpkg-query: package '${name}' is not installed and no information is available\nUse dpkg --info (= dpkg-deb --info) to examine archive files.\n`, 1);
      return ok(`Package: ${name}\nStatus: install ok installed\nVersion: ${PACKAGES[name]?.version ?? '1.0'}\n`);
    }
    if (args[0] === '-l') {
      const rows = rt().packages.filter((p) => !args[1] || p === args[1]).map((p) => `ii  ${p.padEnd(40)} ${(PACKAGES[p]?.version ?? '1.0').padEnd(30)} amd64        ${p}\n`);
      if (rows.length === 0) return fail(`dpkg-query: no packages found matching ${args[1] ?? ''}\n`, 1);
      return ok(rows.join(''));
    }
    if (args[0] === '-i') {
      const file = args[1] ?? '';
      const content = await readText(ctx, file);
      if (content === undefined) return fail(`dpkg: error: cannot access archive '${file}': No such file or directory\n`, 2);
      if (/cuda-keyring/.test(content)) {
        await writeText(ctx, '/etc/apt/sources.list.d/cuda-debian12-x86_64.list', 'deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/ /\n');
        await writeText(ctx, '/usr/share/keyrings/cuda-archive-keyring.gpg', 'lab-keyring\n');
        rt().packages.push('cuda-keyring');
        world.packagesChanged(m);
        journal('dpkg -i', 'cuda-keyring');
        return ok('Selecting previously unselected package cuda-keyring.\n(Reading database ... 21234 files and directories currently installed.)\nPreparing to unpack cuda-keyring_1.1-1_all.deb ...\nUnpacking cuda-keyring (1.1-1) ...\nSetting up cuda-keyring (1.1-1) ...\n');
      }
      return fail(`dpkg-deb: error: '${file}' is not a Debian format archive\n`, 1);
    }
    return fail('dpkg: error: need an action option\n', 2);
  });

  const gpg = defineCommand('gpg', async (args, ctx): Promise<Result> => {
    if (!hasCommand(world, m, 'gpg')) return notFound('gpg');
    const { flags } = parseFlags(args, ['-o', '--output']);
    if (!flags['--dearmor']) return ok();
    const input = stdinText(ctx);
    if (!/BEGIN PGP PUBLIC KEY BLOCK/.test(input)) return fail('gpg: no valid OpenPGP data found.\n', 2);
    const outFile = flags['-o'] ?? flags['--output'];
    const bin = `lab-dearmored:${Buffer.from(input).toString('base64').slice(0, 32)}\n`;
    if (typeof outFile === 'string') {
      if ((await ctx.fs.exists(outFile)) && !flags['--yes']) return fail(`File '${outFile}' exists. Overwrite? (y/N) gpg: signal Hangup caught ... exiting\n`, 2);
      if (!(await writeInDir(ctx, outFile, bin))) return fail(`gpg: can't create '${outFile}': No such file or directory\ngpg: dearmoring failed: No such file or directory\n`, 2);
      return ok();
    }
    return ok(bin);
  });

  const install = defineCommand('install', async (args, ctx): Promise<Result> => {
    const { flags, operands } = parseFlags(args, ['-m', '-o', '-g']);
    const mode = typeof flags['-m'] === 'string' ? parseInt(flags['-m'], 8) : 0o755;
    if (flags['-d']) {
      for (const d of operands) { await ctx.fs.mkdir(ctx.fs.resolvePath(ctx.cwd, d), { recursive: true }); await ctx.fs.chmod(ctx.fs.resolvePath(ctx.cwd, d), mode); }
      return ok();
    }
    const [src, dest] = operands;
    if (!src || !dest) return fail("install: missing file operand\nTry 'install --help' for more information.\n", 1);
    const content = await readText(ctx, src);
    if (content === undefined) return fail(`install: cannot stat '${src}': No such file or directory\n`, 1);
    if (flags['-D']) await writeText(ctx, dest, content);
    else if (!(await writeInDir(ctx, dest, content))) return fail(`install: cannot create regular file '${dest}': No such file or directory\n`, 1);
    await ctx.fs.chmod(ctx.fs.resolvePath(ctx.cwd, dest), mode);
    return ok();
  });

  const wget = defineCommand('wget', async (args, ctx): Promise<Result> => {
    if (!hasCommand(world, m, 'wget')) return notFound('wget');
    const { flags, operands } = parseFlags(args, ['-O', '-P', '--output-document']);
    const url = operands[0] ?? '';
    const body = download(url);
    const hostName = /^https?:\/\/([^/:]+)/.exec(url)?.[1] ?? url;
    if (body === undefined) return fail(`--${new Date().toISOString().replace('T', ' ').slice(0, 19)}--  ${url}\nResolving ${hostName} (${hostName})... failed: Name or service not known.\nwget: unable to resolve host address ‘${hostName}’\n`, 4);
    const out = (flags['-O'] ?? flags['--output-document']) as string | undefined;
    if (out === '-') return ok(body);
    if (!(await writeInDir(ctx, out ?? url.replace(/^.*\//, ''), body))) return fail(`${out ?? ''}: No such file or directory\n`, 1);
    return ok('', flags['-q'] ? '' : `Saving to: ‘${out ?? url.replace(/^.*\//, '')}’\n`);
  });

  const systemctl = defineCommand('systemctl', async (args, ctx): Promise<Result> => {
    const { flags, operands } = parseFlags(args, []);
    const [verb = 'list-units', ...unitsRaw] = operands;
    const units = unitsRaw.map((u) => (u.includes('.') ? u : `${u}.service`));
    const r = rt();
    // A unit is known once systemd has it: a service the machine runs, or a unit file an admin wrote.
    const unitFiles = new Set(await m.fs.readdir('/etc/systemd/system').catch(() => [] as string[]));
    const exists = (u: string): boolean => u in r.services || unitFiles.has(u);
    const quiet = Boolean(flags['--quiet'] || flags['-q']);
    /** An admin's unit file without an [Install] section that names where it goes: systemd calls it static. */
    const isStatic = async (u: string): Promise<boolean> => {
      if (!unitFiles.has(u)) return false;
      const text = await m.fs.readFile(`/etc/systemd/system/${u}`).catch(() => '');
      // Every [Install] section counts (systemd merges them); header and keys may be indented.
      const install = [...text.matchAll(/^[ \t]*\[Install\][ \t]*$([\s\S]*?)(?=^[ \t]*\[|(?![\s\S]))/gm)].map((x) => x[1] ?? '').join('\n');
      return !/^[ \t]*(WantedBy|RequiredBy|UpheldBy|Also|Alias)[ \t]*=[ \t]*\S/m.test(install);
    };
    if (verb === 'is-active') {
      const states = units.map((u) => r.services[u] ?? 'inactive');
      return { stdout: quiet ? '' : states.map((s) => `${s}\n`).join(''), stderr: '', exitCode: states.every((s) => s === 'active') ? 0 : 3 };
    }
    if (verb === 'is-enabled') {
      const st: string[] = [];
      for (const u of units) st.push(r.enabledServices.includes(u) ? 'enabled' : (await isStatic(u)) ? 'static' : exists(u) ? 'disabled' : '');
      if (st.some((s) => s === '')) return fail(`Failed to get unit file state for ${units[st.indexOf('')]}: No such file or directory\n`, 1);
      return { stdout: quiet ? '' : st.map((s) => `${s}\n`).join(''), stderr: '', exitCode: st.every((s) => s === 'enabled' || s === 'static') ? 0 : 1 };
    }
    if (verb === 'daemon-reload') return ok();
    if (verb === 'status') {
      const u = units[0] ?? '';
      if (!exists(u)) return fail(`Unit ${u} could not be found.\n`, 4);
      const s = r.services[u];
      return { stdout: `● ${u}\n     Loaded: loaded (/lib/systemd/system/${u}; ${r.enabledServices.includes(u) ? 'enabled' : 'disabled'}; preset: enabled)\n     Active: ${s === 'active' ? 'active (running)' : s === 'failed' ? 'failed (Result: exit-code)' : 'inactive (dead)'}\n`, stderr: '', exitCode: s === 'active' ? 0 : 3 };
    }
    if (!['start', 'stop', 'restart', 'reload-or-restart', 'enable', 'disable'].includes(verb)) {
      const real = ['reload', 'try-restart', 'try-reload-or-restart', 'kill', 'is-failed', 'show', 'cat', 'reenable', 'preset', 'mask', 'unmask', 'list-units', 'list-unit-files', 'edit', 'isolate', 'reset-failed'];
      return fail(real.includes(verb) ? `lab: systemctl ${verb} is not modelled\n` : `Unknown command verb ${verb}.\n`, 1);
    }
    if (units.length === 0) return fail(`Too few arguments.\n`, 1);
    if (!isRoot(ctx)) return fail(`Failed to ${verb} ${units[0] ?? ''}: Interactive authentication required.\nSee system logs and 'systemctl status ${units[0] ?? ''}' for details.\n`, 1);
    const now = Boolean(flags['--now']);
    let staticUnits = 0;
    for (const u of units) {
      if (!exists(u)) return fail(`Failed to ${verb} ${u}: Unit ${u} not found.\n`, 5);
      if ((verb === 'enable' || verb === 'disable') && (await isStatic(u))) staticUnits++;
      else if (verb === 'enable' && !r.enabledServices.includes(u)) { r.enabledServices.push(u); journal('systemctl enable', u); }
      if (verb === 'disable' && r.enabledServices.includes(u)) { r.enabledServices = r.enabledServices.filter((x) => x !== u); journal('systemctl disable', u); }
      const start = verb === 'start' || verb === 'restart' || verb === 'reload-or-restart' || (verb === 'enable' && now);
      const stop = verb === 'stop' || (verb === 'disable' && now);
      if (stop && r.services[u] !== 'inactive') {
        r.services[u] = 'inactive';
        journal('systemctl stop', u);
        if (m.vmid !== null) world.services?.serviceRestarted(m.vmid, u);
      }
      if (start) {
        if ((verb === 'start' || verb === 'enable') && r.services[u] === 'active') continue; // already running: no-op
        await host.delay(800);
        if (u === 'docker.service' && !dockerdCanRun()) {
          r.services[u] = 'failed';
          return fail(`Job for ${u} failed because the control process exited with error code.\nSee "systemctl status ${u}" and "journalctl -xeu ${u}" for details.\n`, 1);
        }
        r.services[u] = 'active';
        journal(`systemctl ${verb}`, u);
        if (u === 'docker.service') world.dockerRestarted(m);
        if (m.vmid !== null) world.services?.serviceRestarted(m.vmid, u);
      }
    }
    return ok('', verb === 'enable' && staticUnits === units.length ? NO_INSTALL_CONFIG : '');
  });

  const nvidiaCtk = defineCommand('nvidia-ctk', async (args, ctx): Promise<Result> => {
    if (!hasCommand(world, m, 'nvidia-ctk')) return notFound('nvidia-ctk');
    if (args[0] === '--version' || args[0] === '-v') return ok('NVIDIA Container Toolkit CLI version 1.17.8\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d\n');
    if (!isRoot(ctx)) return fail('ERRO[0000] unable to flush config: unable to open /etc/docker/daemon.json for writing: open /etc/docker/daemon.json: permission denied \n', 1);
    if (args[0] === 'runtime' && args[1] === 'configure') {
      const { flags } = parseFlags(args.slice(2), ['--runtime', '--config']);
      const runtime = String(flags['--runtime'] ?? 'docker');
      if (runtime !== 'docker') return ok();
      const path = String(flags['--config'] ?? '/etc/docker/daemon.json');
      const existing = await readText(ctx, path);
      let err = '';
      let conf: Record<string, unknown> = {};
      if (existing === undefined) err += 'INFO[0000] Config file does not exist; using empty config \n';
      else { err += `INFO[0000] Loading config from ${path}                 \n`; conf = JSON.parse(existing || '{}') as Record<string, unknown>; }
      const runtimes = (conf.runtimes as Record<string, unknown> | undefined) ?? {};
      runtimes.nvidia = { args: [], path: 'nvidia-container-runtime' };
      conf.runtimes = runtimes;
      const text = `${goJson(conf)}\n`;
      if (text !== existing) { await writeText(ctx, path, text); journal('nvidia-ctk runtime configure', path); }
      err += `INFO[0000] Wrote updated config to ${path}     \nINFO[0000] It is recommended that docker daemon be restarted. \n`;
      return ok('', err);
    }
    if (args[0] === 'config') {
      const { flags } = parseFlags(args.slice(1), ['--set', '--config-file', '--output']);
      const file = String(flags['--config-file'] ?? '/etc/nvidia-container-runtime/config.toml');
      const set = flags['--set'];
      let text = (await readText(ctx, file)) ?? DEFAULT_CTK_TOML;
      if (typeof set === 'string') {
        const [full = '', value = 'true'] = set.split('=');
        const dot = full.lastIndexOf('.');
        const section = full.slice(0, dot);
        const key = full.slice(dot + 1);
        if (!section || !/^\[/.test(`[${section}]`) || !text.includes(`[${section}]`)) return fail(`invalid --set option ${set}: unknown key\n`, 1);
        const lines = text.split('\n');
        const start = lines.indexOf(`[${section}]`);
        let end = lines.findIndex((l, i) => i > start && /^\[/.test(l));
        if (end < 0) end = lines.length;
        const idx = lines.findIndex((l, i) => i > start && i < end && new RegExp(`^#?${key.replace(/-/g, '\\-')} = `).test(l));
        const line = `${key} = ${value}`;
        if (idx >= 0) lines[idx] = line; else lines.splice(start + 1, 0, line);
        text = lines.join('\n');
      }
      if (flags['--in-place']) {
        if (text !== (await readText(ctx, file))) { await writeText(ctx, file, text); journal('nvidia-ctk config', String(set)); }
        return ok();
      }
      return ok(text);
    }
    return fail(`Incorrect Usage: flag provided but not defined: -${args[0] ?? ''}\n`, 1);
  });

  return [aptGet('apt-get'), aptGet('apt'), dpkg, dpkgQuery, gpg, install, wget, systemctl, nvidiaCtk];
}
