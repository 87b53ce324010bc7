/**
 * The lab's machines (the host and one per CT, each a just-bash `Bash` with its own filesystem) and the
 * glue every simulated command needs: the host model, live output sinks of SSH sessions, and services.
 */
import { Bash } from 'just-bash';
import type { Command, ExecResult } from 'just-bash';
import { PROVIDES } from './provides';
import { notFound, shellQuote } from './cmd-util';
import { LabFs, ShellError } from './fs';
import type { LabHost } from './host';
import { emptyRuntime, type CtRuntime, type Guest } from './state';
import { NVIDIA_NODES, WriteError, devProvider, procProvider, pveProvider, sysProvider } from './virtual';
import { BASE_DIRS, baseFiles } from './base-files';
import type { GpuReading } from './cmd-gpu';

export interface Machine {
  key: string; // 'host' or the CT vmid
  vmid: number | null;
  fs: LabFs;
  bash: Bash;
}

/** Where a command can push output while it is still running (docker pull progress). */
export interface LiveSink {
  write(chunk: string, stream: 'stdout' | 'stderr'): void;
  /** Drop the SSH connection (the `ssh-drop` fault). */
  drop(): void;
}

/** Hooks into the HTTP services (vLLM, OpenWebUI, ComfyUI) the commands start and stop. */
export interface ServiceHooks {
  containerStarted(vmid: number, containerId: string): void;
  containerStopped(vmid: number, containerId: string): void;
  serviceRestarted(vmid: number, unit: string): void;
  /** Answer an HTTP request from inside a machine (curl); `null` = nothing listens there. */
  request(fromVmid: number | null, url: URL, init: { method: string; headers: Record<string, string>; body?: string }): Promise<{ status: number; headers: Record<string, string>; body: string } | { unreachable: true } | null>;
}

/**
 * just-bash answers `test -c` from a fixed list (/dev/null, /dev/zero, ...) and its builtin cannot be
 * overridden; NVIDIA nodes exist exactly when their virtual file does, so `-c /dev/nvidia…` becomes `-e`.
 */
export function charDeviceTests(script: string): string {
  return script.replace(/(^|[\s;&|(!])(test|\[\[?)(\s+(?:!\s+)?)-c(\s+["']?\/dev\/nvidia)/g, '$1$2$3-e$4');
}

export interface RunOptions {
  /** bytes, one char per byte (latin1-shaped): a program's stdin is bytes, not text */
  stdin?: string;
  env: Record<string, string>;
  cwd?: string;
  /** positional parameters ($1 …) */
  args?: string[];
}

/**
 * Words bash runs itself that Debian ships no program for (`[`, `echo`, `kill`, `printf`, `pwd`, `test`, `true`
 * and `false` are programs too, in coreutils and procps). Only a shell runs these; execvp finds nothing.
 */
const SHELL_ONLY = new Set([
  '!', '.', ':', '[[', ']]', '{', '}', 'alias', 'bg', 'bind', 'break', 'builtin', 'caller', 'case', 'cd', 'command',
  'compgen', 'complete', 'continue', 'coproc', 'declare', 'dirs', 'disown', 'do', 'done', 'elif', 'else', 'enable',
  'esac', 'eval', 'exec', 'exit', 'export', 'fc', 'fg', 'fi', 'for', 'function', 'getopts', 'hash', 'help', 'history',
  'if', 'in', 'jobs', 'let', 'local', 'logout', 'mapfile', 'popd', 'pushd', 'read', 'readarray', 'readonly', 'return',
  'select', 'set', 'shift', 'shopt', 'source', 'suspend', 'then', 'time', 'times', 'trap', 'type', 'typeset', 'ulimit',
  'umask', 'unalias', 'unset', 'until', 'wait', 'while',
]);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

export type CommandFactory = (world: World, m: Machine) => Array<import('just-bash').Command>;

export class World {
  readonly machines = new Map<string, Machine>();
  readonly sinks = new Map<string, LiveSink>();
  services: ServiceHooks | null = null;
  private factories: CommandFactory[] = [];

  constructor(readonly host: LabHost) {
    host.gpuInUse = () => this.gpuInUse();
    host.nvidiaNodeExists = (node) => this.hostNodeVisible(node);
  }

  /** The PID of a running process that holds the NVIDIA GPU (a GPU container in a running CT), else null. */
  gpuInUse(): number | null {
    for (const [key, rt] of Object.entries(this.host.state.runtimes)) {
      if (this.host.guest(Number(key))?.status !== 'running') continue;
      const c = rt.docker.containers.find((x) => x.gpu && x.state === 'running' && x.gpuMiB > 0);
      if (c) return c.pid;
    }
    return null;
  }

  /** SSH commands running now. Files are journaled only when none is: a command's half-done work (a temp file
   *  not yet renamed) must not be journaled because another command happened to finish meanwhile. */
  execsInFlight = 0;

  /** Journal the files SSH commands changed (net of rewrites with identical content), once no command runs. */
  async flushFileJournal(only?: (path: string) => boolean): Promise<void> {
    if (!only && this.execsInFlight > 0) return;
    for (const m of this.machines.values()) {
      for (const p of await m.fs.takeChanges(only)) {
        this.host.record('ssh', 'file.write', m.vmid ?? undefined, p);
        // modprobe.d is read at boot from the initramfs: a change needs `update-initramfs -u` to stick.
        if (m.vmid === null && p.startsWith('/etc/modprobe.d/')) this.host.state.node.initramfsStale = true;
      }
    }
  }

  /** dockerd re-reads /etc/docker/daemon.json on restart: registered runtimes follow the file. */
  dockerRestarted(m: Machine): void {
    void this.reloadDockerRuntimes(m);
  }

  private async reloadDockerRuntimes(m: Machine): Promise<void> {
    const rt = this.runtime(m.key);
    const base = ['io.containerd.runc.v2', 'runc'];
    try {
      const conf = JSON.parse(await m.fs.readFile('/etc/docker/daemon.json')) as { runtimes?: Record<string, unknown> };
      rt.docker.runtimes = [...base, ...Object.keys(conf.runtimes ?? {})];
    } catch {
      rt.docker.runtimes = base;
    }
  }

  gpuReading(): GpuReading {
    const processes: GpuReading['processes'] = [];
    for (const [key, rt] of Object.entries(this.host.state.runtimes)) {
      if (this.host.guest(Number(key))?.status !== 'running') continue;
      for (const c of rt.docker.containers) {
        if (c.gpu && c.state === 'running' && c.gpuMiB > 0) processes.push({ pid: c.pid, name: 'python3', usedMiB: c.gpuMiB });
      }
    }
    const used = processes.reduce((a, p) => a + p.usedMiB, 0);
    return { usedMiB: used > 0 ? used + 283 : 1, utilization: 0, processes };
  }

  addCommands(f: CommandFactory): void {
    this.factories.push(f);
  }

  runtime(key: string): CtRuntime {
    let rt = this.host.state.runtimes[key];
    if (!rt) {
      rt = emptyRuntime();
      this.host.state.runtimes[key] = rt;
    }
    return rt;
  }

  machine(key: string): Machine | undefined {
    return this.machines.get(key);
  }

  /** Build (or rebuild) a machine. `files` = saved files (from statePath) or the base image. */
  createMachine(key: string, files?: Record<string, string>): Machine {
    const vmid = key === 'host' ? null : Number(key);
    const fs = new LabFs(files ?? baseFiles(this.host, vmid), BASE_DIRS);
    fs.providers.push(procProvider(this.host));
    if (vmid === null) {
      fs.providers.push(pveProvider(this.host, () => undefined), sysProvider(this.host), devProvider((n) => this.hostNodeVisible(n)));
    } else {
      fs.providers.push(devProvider((n) => this.ctNodeVisible(vmid, n)));
    }
    // defenseInDepth (on by default) patches JS intrinsics for the length of every script and tracks each promise
    // through an AsyncLocalStorage: a guard against hostile scripts escaping the interpreter. The lab runs what
    // authenticated clients send to a virtual machine with no real fs or processes behind it, and the guard was a
    // third of the lab's CPU with 50 hosts in one process.
    const bash = new Bash({ fs, cwd: '/root', env: { HOME: '/root', USER: 'root' }, commands: undefined, defenseInDepth: false });
    const m: Machine = { key, vmid, fs, bash };
    const pending: Command[] = [];
    // Commands that come with a package exist only once it is installed (so `command -v` tells the truth).
    for (const f of this.factories) {
      for (const c of f(this, m)) {
        if (this.installed(m, c.name)) bash.registerCommand(c);
        else pending.push(c);
      }
    }
    this.pending.set(key, pending);
    this.machines.set(key, m);
    return m;
  }

  private readonly pending = new Map<string, Command[]>();

  private installed(m: Machine, cmd: string): boolean {
    const providers = PROVIDES[cmd];
    if (!providers) return true;
    if (cmd === 'nvidia-smi' && m.vmid === null) return true; // the host driver ships nvidia-smi
    return providers.some((p) => this.runtime(m.key).packages.includes(p));
  }

  /** After apt installs: register the commands the new packages provide. */
  packagesChanged(m: Machine): void {
    const pending = this.pending.get(m.key) ?? [];
    this.pending.set(m.key, pending.filter((c) => {
      if (!this.installed(m, c.name)) return true;
      m.bash.registerCommand(c);
      return false;
    }));
  }

  /** /dev/nvidia* on the host: nvidiactl with the module, nvidia0 once the GPU is bound, uvm with nvidia_uvm. */
  hostNodeVisible(node: string): boolean {
    const mods = this.host.state.node.modules;
    if (!mods.includes('nvidia')) return false;
    if (node.startsWith('nvidia-uvm')) return mods.includes('nvidia_uvm');
    if (node === 'nvidia0') return this.host.nvidiaLoaded();
    return true;
  }

  /** A CT starting: LXC bind-mounts the device nodes the host has now (an optional mount of a missing one is skipped). */
  noteStart(g: Guest): void {
    if (g.type === 'lxc') g.startNodes = NVIDIA_NODES.filter((n) => this.hostNodeVisible(n));
  }

  /**
   * A CT sees a node only if the host has it and the CT config passes it through: devN (made at start, which fails
   * without the node), or raw lxc lines whose bind mount found the node when the CT started (a CT started before
   * the host driver made its nodes stays without them until it restarts).
   */
  ctNodeVisible(vmid: number, node: string): boolean {
    const g = this.host.guest(vmid);
    if (!g || g.status !== 'running' || !this.hostNodeVisible(node)) return false;
    const path = `/dev/${node}`;
    for (const [k, v] of Object.entries(g.config)) {
      if (/^dev\d+$/.test(k) && (v.split(',')[0] ?? '').replace(/^path=/, '') === path) return true;
    }
    const major = node.startsWith('nvidia-uvm') ? 508 : 195;
    const lxc = this.host.effectiveLxc(g);
    const allowed = lxc.some(([k, v]) => /^lxc\.cgroup2?\.devices\.allow$/.test(k) && (v.trim() === 'a' || new RegExp(`^c ${major}:(\\*|\\d+) r?w?m?`).test(v.trim())));
    const source = (v: string): string => v.split(/\s+/)[0] ?? '';
    const whole = lxc.some(([k, v]) => k === 'lxc.mount.entry' && source(v) === '/dev');
    const mounted = lxc.some(([k, v]) => k === 'lxc.mount.entry' && source(v) === path) && (g.startNodes === undefined || g.startNodes.includes(node));
    return allowed && (whole || mounted);
  }

  /**
   * Run argv as a program, the way execvp does (lxc-attach under `pct exec`, sudo): no shell in between, so a word
   * only bash knows (`cd`, `export`, `FOO=1`) or a program the machine lacks is not found, and the caller words that
   * its own way. `assignments: 'env'` is sudo's reading of leading `NAME=value` words (environment, not a program).
   */
  async runProgram(m: Machine, argv: string[], opts: RunOptions & { assignments?: 'env' }): Promise<ExecResult | { notFound: string }> {
    const program = (opts.assignments === 'env' ? argv.find((a) => !ASSIGNMENT.test(a)) : argv[0]) ?? '';
    if (SHELL_ONLY.has(program) || (opts.assignments !== 'env' && ASSIGNMENT.test(program))) return { notFound: program };
    const res = await this.run(m, shellQuote(argv), opts);
    const bashSays = [notFound(program).stderr, `bash: ${program}: No such file or directory\n`];
    if (res.exitCode === 127 && res.stdout === '' && bashSays.includes(res.stderr)) return { notFound: program };
    return res;
  }

  /**
   * Run a command line the way `bash -c` would on this machine. Kernel write errors abort the line with
   * bash's own message (just-bash has no errno path for a failing redirect).
   */
  async run(m: Machine, script: string, opts: RunOptions): Promise<ExecResult> {
    try {
      const execOpts: Parameters<Bash['exec']>[1] = { stdin: opts.stdin ?? '', stdinKind: 'bytes', env: opts.env, cwd: opts.cwd ?? opts.env.HOME ?? '/root' };
      // Positional parameters ($1 …) for `bash -s -- a b` / `sh -c '…' name a b`.
      const prefix = opts.args && opts.args.length > 0 ? `set -- ${shellQuote(opts.args)}\n` : '';
      return await m.bash.exec(prefix + charDeviceTests(script), execOpts);
    } catch (e) {
      if (e instanceof WriteError) return { stdout: '', stderr: `bash: line 1: echo: write error: ${e.errnoText}\n`, exitCode: 1 };
      if (e instanceof ShellError) return { stdout: '', stderr: `bash: line 1: ${e.text}\n`, exitCode: 1 };
      const msg = e instanceof Error ? e.message : String(e);
      return { stdout: '', stderr: `bash: ${msg}\n`, exitCode: 1 };
    }
  }
}
