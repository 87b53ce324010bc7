/**
 * `docker` and `docker compose` inside a CT (host-commands.md §7): non-TTY pull progress streamed line by
 * line, image inspect, compose up/down/ps/logs/pull, and the LXC failure modes (AppArmor/runc, missing
 * nesting, NVIDIA runtime/driver problems) decided from the CT's config and the host's driver state.
 */
import { createHash } from 'node:crypto';
import { defineCommand } from 'just-bash';
import type { Command } from 'just-bash';
import { fail, isRoot, notFound, ok, parseFlags, type Ctx, type Result } from './cmd-util';
import { loadCompose, type ComposeProject, type ComposeService } from './compose';
import { hasCommand } from './cmd-pkg';
import type { Machine, World } from './world';
import type { DockerContainer, DockerImage } from './state';

const NO_DAEMON = 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n';
const OCI = 'Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: ';
const APPARMOR = `${OCI}open sysctl net.ipv4.ip_unprivileged_port_start file: reopen fd 8: permission denied: unknown\n`;
const HOOK = `${OCI}error running hook #0: error running hook: exit status 1, stdout: , stderr: Auto-detected mode as 'legacy'\n`;

const hex = (s: string, n = 64): string => createHash('sha256').update(s).digest('hex').slice(0, n);

/**
 * Images the lab's registry serves: a repository it does not know is "pull access denied", a tag it does not know
 * "manifest unknown". vllm/vllm-openai's release tags all have one shape, `vX.Y.Z` with an optional fourth number
 * or `.postN` (v0.6.4.post1, v0.9.0.1): a tag of another shape (0.6.4, v0.6, v0.6.4post1) does not exist, though
 * a well-shaped one the registry never had still pulls here.
 */
function registryImage(ref: string): { layers: number; sizeBytes: number } | 'no such tag' | null {
  const vllm = { layers: 14, sizeBytes: 10_442_513_237 };
  // A digest pins the image whatever the tag says (docker pulls NAME:TAG@DIGEST by the digest); the lab cannot
  // know which digests exist, so a well-formed one is served.
  if (/^(docker\.io\/)?vllm\/vllm-openai(:[\w.-]+)?@sha256:[0-9a-f]{64}$/.test(ref)) return vllm;
  if (/^(docker\.io\/)?vllm\/vllm-openai:/.test(ref)) return /:(v\d+\.\d+\.\d+(\.\d+|\.post\d+)?|latest|nightly)$/.test(ref) ? vllm : 'no such tag';
  if (/^(docker\.io\/)?nvidia\/cuda:[\w.-]+$/.test(ref)) return { layers: 6, sizeBytes: 250_000_000 };
  if (/^(docker\.io\/)?(library\/)?(hello-world|busybox|debian|ubuntu)(:[\w.-]+)?$/.test(ref)) return { layers: 1, sizeBytes: 13_256 };
  return null;
}

const normRef = (ref: string): string => (ref.includes(':') || ref.includes('@') ? ref : `${ref}:latest`).replace(/^docker\.io\//, '');

export function dockerCommands(world: World, m: Machine): Command[] {
  if (m.vmid === null) return [];
  const vmid = m.vmid;
  const host = world.host;
  const rt = (): ReturnType<World['runtime']> => world.runtime(m.key);
  const journal = (op: string, detail: string): void => { host.record('ssh', op, vmid, detail); };
  const guest = (): NonNullable<ReturnType<typeof host.guest>> | undefined => host.guest(vmid);

  const image = (ref: string): DockerImage | undefined => rt().docker.images.find((i) => i.ref === normRef(ref));

  /** Stream a line now when an SSH session listens, else collect it. */
  const emitter = (ctx: Ctx): { line(s: string): void; text(): string } => {
    const sink = world.sinks.get(ctx.env.get('SSH_CONNECTION') ?? '');
    let buf = '';
    return {
      line: (s) => { if (sink) sink.write(`${s}\n`, 'stdout'); else buf += `${s}\n`; },
      text: () => buf,
    };
  };

  async function pull(ctx: Ctx, ref: string, out: { line(s: string): void }): Promise<string | null> {
    const n = normRef(ref);
    const reg = registryImage(n);
    // NAME[:TAG][@DIGEST]: the progress lines are headed by the tag, else the digest (moby's tagOrDigest).
    const parsed = /^([^:@]+)(?::([\w.-]+))?(?:@(sha256:[0-9a-f]{64}))?$/.exec(n);
    const repo = parsed?.[1] ?? n;
    const tag = parsed?.[2] ?? parsed?.[3] ?? 'latest';
    const named = n.slice(repo.length);
    if (!reg) return `Error response from daemon: pull access denied for ${repo}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied\n`;
    if (reg === 'no such tag') return `Error response from daemon: manifest for ${n} not found: manifest unknown: manifest unknown\n`;
    if (image(n)) {
      out.line(`${tag}: Pulling from ${repo.includes('/') ? repo : `library/${repo}`}`);
      out.line(`Digest: sha256:${hex(`${n}digest`)}`);
      out.line(`Status: Image is up to date for ${n}`);
      out.line(`docker.io/${repo.includes('/') ? repo : `library/${repo}`}${named}`);
      return null;
    }
    const layers = Array.from({ length: reg.layers }, (_v, i) => hex(`${n}layer${i}`, 12));
    out.line(`${tag}: Pulling from ${repo.includes('/') ? repo : `library/${repo}`}`);
    for (const l of layers) out.line(`${l}: Pulling fs layer`);
    for (const l of layers.slice(4)) out.line(`${l}: Waiting`);
    const sink = world.sinks.get(ctx.env.get('SSH_CONNECTION') ?? '');
    for (let i = 0; i < layers.length; i++) {
      await host.delay(reg.layers > 4 ? 350 : 100);
      if (i === Math.floor(layers.length / 2) && sink && host.takeFault('ssh-drop')) {
        sink.drop();
        return 'dropped';
      }
      out.line(`${layers[i]}: Verifying Checksum`);
      out.line(`${layers[i]}: Download complete`);
    }
    for (const l of layers) { await host.delay(60); out.line(`${l}: Pull complete`); }
    out.line(`Digest: sha256:${hex(`${n}digest`)}`);
    out.line(`Status: Downloaded newer image for ${n}`);
    out.line(`docker.io/${repo.includes('/') ? repo : `library/${repo}`}${named}`);
    rt().docker.images.push({ ref: n, id: `sha256:${hex(n)}`, sizeBytes: reg.sizeBytes, created: '2024-11-18T21:06:54.123456789Z' });
    journal('docker pull', n);
    return null;
  }

  /** Why a container cannot start in this CT, in the daemon's words (null = it starts). */
  function startError(svc: { gpu: boolean; runtime?: string }): string | null {
    const g = guest();
    if (!g) return NO_DAEMON;
    if (!host.effectiveLxc(g).some(([k, v]) => k === 'lxc.apparmor.profile' && v.trim() === 'unconfined')) return APPARMOR;
    if (svc.runtime && !rt().docker.runtimes.includes(svc.runtime)) return `Error response from daemon: unknown or invalid runtime name: ${svc.runtime}\n`;
    if (!svc.gpu) return null;
    if (!rt().packages.includes('nvidia-container-toolkit')) return 'Error response from daemon: could not select device driver "nvidia" with capabilities: [[gpu]]\n';
    if (g.config.unprivileged === '1' && !/^no-cgroups = true$/m.test(ctkToml)) {
      return `${HOOK}nvidia-container-cli: mount error: failed to add device rules: unable to find any existing device filters attached to the cgroup: bpf_prog_query(BPF_CGROUP_DEVICE) failed: operation not permitted: unknown\n`;
    }
    if (!rt().nvidiaUserspace) return `${HOOK}nvidia-container-cli: initialization error: load library failed: libnvidia-ml.so.1: cannot open shared object file: no such file or directory: unknown\n`;
    if (!world.ctNodeVisible(vmid, 'nvidiactl')) return `${HOOK}nvidia-container-cli: initialization error: nvml error: driver not loaded: unknown\n`;
    if (rt().nvidiaUserspace !== host.state.node.nvidiaDriver) return `${HOOK}nvidia-container-cli: initialization error: nvml error: driver/library version mismatch: unknown\n`;
    if (!world.ctNodeVisible(vmid, 'nvidia0')) return `${HOOK}nvidia-container-cli: device error: 0: unknown device: unknown\n`;
    return null;
  }
  let ctkToml = '';

  const containerName = (p: ComposeProject, s: ComposeService): string => s.containerName ?? `${p.name}-${s.name}-1`;

  async function composeUp(ctx: Ctx, p: ComposeProject, out: { line(s: string): void }): Promise<Result> {
    let err = '';
    const net = `${p.name}_default`;
    const containers = rt().docker.containers;
    const haveNet = containers.some((c) => c.project === p.name);
    for (const s of p.services) {
      if (!image(s.image)) {
        const r = await pull(ctx, s.image, { line: (l) => { err += `${l}\n`; } });
        if (r === 'dropped') return { stdout: '', stderr: '', exitCode: 255 };
        if (r) return fail(err + r, 1);
      }
    }
    if (!haveNet) err += ` Network ${net}  Creating\n Network ${net}  Created\n`;
    for (const s of p.services) {
      const name = containerName(p, s);
      const existing = containers.find((c) => c.name === name);
      const same = existing && existing.image === normRef(s.image) && JSON.stringify(existing.command) === JSON.stringify(s.command) && JSON.stringify(existing.env) === JSON.stringify(s.environment);
      if (existing && same && (existing.state === 'running' || existing.state === 'restarting')) { err += ` Container ${name}  Running\n`; continue; }
      if (existing && !same) {
        err += ` Container ${name}  Recreate\n`;
        world.services?.containerStopped(vmid, existing.id);
        containers.splice(containers.indexOf(existing), 1);
        err += ` Container ${name}  Recreated\n`;
      } else if (!existing) {
        err += ` Container ${name}  Creating\n Container ${name}  Created\n`;
      }
      err += ` Container ${name}  Starting\n`;
      const problem = startError(s);
      const c: DockerContainer = existing && same ? existing : {
        id: hex(`${name}${Date.now()}${Math.random()}`), name, project: p.name, service: s.name, image: normRef(s.image), command: s.command,
        env: s.environment, ports: s.ports, state: 'created', exitCode: 0, createdAt: host.now(), startedAt: 0, logs: [], restart: s.restart,
        gpu: s.gpu, gpuMiB: 0, pid: 0,
      };
      if (!containers.includes(c)) containers.push(c);
      journal('docker compose up', name);
      if (problem) { c.state = 'created'; c.exitCode = 128; return fail(err + problem, 1); }
      c.state = 'running';
      c.startedAt = host.now();
      c.pid = 20000 + Math.floor(Math.random() * 40000);
      err += ` Container ${name}  Started\n`;
      world.services?.containerStarted(vmid, c.id);
    }
    void out;
    return ok('', err);
  }

  function composeDown(p: ComposeProject): Result {
    let err = '';
    const containers = rt().docker.containers;
    const mine = containers.filter((c) => c.project === p.name);
    for (const c of mine) {
      if (c.state === 'running') err += ` Container ${c.name}  Stopping\n Container ${c.name}  Stopped\n`;
      err += ` Container ${c.name}  Removing\n Container ${c.name}  Removed\n`;
      world.services?.containerStopped(vmid, c.id);
      containers.splice(containers.indexOf(c), 1);
      journal('docker compose down', c.name);
    }
    if (mine.length > 0) err += ` Network ${p.name}_default  Removing\n Network ${p.name}_default  Removed\n`;
    return ok('', err);
  }

  function psJson(c: DockerContainer): string {
    const pubs = c.ports.map((x) => ({ URL: '0.0.0.0', TargetPort: x.container, PublishedPort: x.host, Protocol: 'tcp' }));
    const obj: Record<string, unknown> = {
      Command: '"python3 -m vllm.en…"', CreatedAt: new Date(c.createdAt * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' +0000 UTC',
      ExitCode: c.exitCode, Health: '', ID: c.id.slice(0, 12), Image: c.image, Labels: `com.docker.compose.project=${c.project},com.docker.compose.service=${c.service}`,
      LocalVolumes: '0', Mounts: '', Name: c.name, Names: c.name, Networks: `${c.project}_default`,
      Ports: c.ports.map((x) => `0.0.0.0:${x.host}->${x.container}/tcp`).join(', '), Project: c.project, Publishers: pubs,
      RunningFor: 'About a minute ago', Service: c.service, Size: '0B', State: c.state,
      Status: c.state === 'running' ? 'Up About a minute' : c.state === 'restarting' ? 'Restarting (1) 2 seconds ago' : `Exited (${c.exitCode}) 5 seconds ago`,
    };
    return JSON.stringify(obj);
  }

  const docker = defineCommand('docker', async (args, ctx): Promise<Result> => {
    if (!hasCommand(world, m, 'docker')) return notFound('docker');
    if (args[0] === '--version' || args[0] === 'version' && args[1] === '--format') return ok('Docker version 28.5.2, build ecc6942\n');
    if (!isRoot(ctx)) return fail('permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.51/info": dial unix /var/run/docker.sock: connect: permission denied\n', 1);
    if (rt().services['docker.service'] !== 'active') return fail(NO_DAEMON, 1);
    ctkToml = await ctx.fs.readFile('/etc/nvidia-container-runtime/config.toml').catch(() => '');
    const out = emitter(ctx);
    const [sub, ...rest] = args;
    switch (sub) {
      case 'pull': {
        const ref = rest.filter((a) => !a.startsWith('-'))[0] ?? '';
        const r = await pull(ctx, ref, out);
        if (r === 'dropped') return { stdout: '', stderr: '', exitCode: 255 };
        return r ? fail(r, 1, out.text()) : ok(out.text());
      }
      case 'image': case 'inspect': {
        const ops = sub === 'image' ? rest.slice(1) : rest;
        const { flags, operands } = parseFlags(ops, ['--format', '-f']);
        const ref = operands[0] ?? '';
        const img = image(ref);
        const ctr = rt().docker.containers.find((c) => c.name === ref || c.id.startsWith(ref));
        if (sub === 'inspect' && ctr) {
          const fmt = String(flags['--format'] ?? flags['-f'] ?? '');
          if (/\.State\.Status/.test(fmt)) return ok(`${ctr.state}\n`);
          if (/\.State\.Running/.test(fmt)) return ok(`${ctr.state === 'running'}\n`);
          return ok(`${JSON.stringify([{ Id: ctr.id, Name: `/${ctr.name}`, State: { Status: ctr.state, Running: ctr.state === 'running', ExitCode: ctr.exitCode }, Config: { Image: ctr.image } }], null, 4)}\n`);
        }
        if (!img) return fail(`Error response from daemon: No such image: ${normRef(ref)}\n`, 1, typeof (flags['--format'] ?? flags['-f']) === 'string' ? '' : '[]\n');
        const fmt = String(flags['--format'] ?? flags['-f'] ?? '');
        if (fmt.includes('.Id')) return ok(`${img.id}\n`);
        if (fmt.includes('.Size')) return ok(`${img.sizeBytes}\n`);
        if (fmt.includes('RepoTags')) return ok(`${JSON.stringify([img.ref])}\n`);
        return ok(`${JSON.stringify([{ Id: img.id, RepoTags: [img.ref], RepoDigests: [`${img.ref.split(':')[0]}@sha256:${hex(`${img.ref}digest`)}`], Created: img.created, Size: img.sizeBytes, Architecture: 'amd64', Os: 'linux' }], null, 4)}\n`);
      }
      case 'images': return ok(`REPOSITORY         TAG            IMAGE ID       CREATED       SIZE\n${rt().docker.images.map((i) => `${(i.ref.split(':')[0] ?? '').padEnd(18)} ${(i.ref.split(':')[1] ?? '').padEnd(14)} ${i.id.slice(7, 19)}   2 weeks ago   ${(i.sizeBytes / 1e9).toFixed(1)}GB\n`).join('')}`);
      case 'info': {
        const fmt = rest.join(' ');
        const runtimes = Object.fromEntries([...rt().docker.runtimes].sort().map((r) => [r, { path: r === 'nvidia' ? 'nvidia-container-runtime' : 'runc' }]));
        if (fmt.includes('.Runtimes')) return ok(`${JSON.stringify(runtimes)}\n`);
        return ok(`Client: Docker Engine - Community\n Version:    28.5.2\n\nServer:\n Runtimes: ${Object.keys(runtimes).join(' ')}\n Default Runtime: runc\n`);
      }
      case 'ps': {
        const { flags } = parseFlags(rest, ['--format', '--filter', '-f']);
        const list = rt().docker.containers.filter((c) => flags['-a'] || flags['--all'] || c.state === 'running' || c.state === 'restarting');
        const fmt = String(flags['--format'] ?? '');
        if (fmt === 'json' || fmt === '{{json .}}') return ok(list.map((c) => `${psJson(c)}\n`).join(''));
        if (fmt.includes('.Names')) return ok(list.map((c) => `${c.name}\n`).join(''));
        return ok(`CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n${list.map((c) => `${c.id.slice(0, 12)}   ${c.image}   "python3 -m vllm.en…"   1 minute ago   ${c.state === 'running' ? 'Up 1 minute' : `Exited (${c.exitCode})`}   ${c.name}\n`).join('')}`);
      }
      case 'logs': {
        const { flags, operands } = parseFlags(rest, ['--tail', '-n', '--since']);
        const c = rt().docker.containers.find((x) => x.name === operands[0] || x.id.startsWith(operands[0] ?? '-'));
        if (!c) return fail(`Error response from daemon: No such container: ${operands[0] ?? ''}\n`, 1);
        const tail = Number(flags['--tail'] ?? flags['-n'] ?? 'NaN');
        const lines = Number.isFinite(tail) ? c.logs.slice(-tail) : c.logs;
        return ok(lines.map((l) => `${l}\n`).join(''));
      }
      case 'compose': return compose(ctx, rest, out);
      case 'run': {
        const { flags, operands } = parseFlags(rest, ['--gpus', '--name', '-e', '--runtime', '-v', '-p', '--entrypoint']);
        const ref = operands[0] ?? '';
        if (!image(ref)) {
          const r = await pull(ctx, ref, { line: () => undefined });
          if (r) return fail(`Unable to find image '${normRef(ref)}' locally\ndocker: ${r.replace(/^Error response/, 'Error response')}`, 125);
        }
        const svc: { gpu: boolean; runtime?: string } = { gpu: flags['--gpus'] !== undefined };
        if (typeof flags['--runtime'] === 'string') svc.runtime = flags['--runtime'];
        const problem = startError(svc);
        if (problem) return fail(`docker: ${problem}\nRun 'docker run --help' for more information\n`, 125);
        journal('docker run', normRef(ref));
        const inner = operands.slice(1);
        if (inner[0] === 'nvidia-smi') return world.run(m, ['nvidia-smi', ...inner.slice(1)].join(' '), { env: { USER: 'root', HOME: '/root' } });
        return ok();
      }
      case 'rm': case 'stop': {
        const names = rest.filter((a) => !a.startsWith('-'));
        for (const n of names) {
          const c = rt().docker.containers.find((x) => x.name === n || x.id.startsWith(n));
          if (!c) return fail(`Error response from daemon: No such container: ${n}\n`, 1);
          world.services?.containerStopped(vmid, c.id);
          if (sub === 'rm') rt().docker.containers.splice(rt().docker.containers.indexOf(c), 1);
          else c.state = 'exited';
          journal(`docker ${sub}`, c.name);
        }
        return ok(names.map((n) => `${n}\n`).join(''));
      }
      default:
        return fail(`docker: '${sub ?? ''}' is not a docker command.\nSee 'docker --help'\n`, 1);
    }
  });

  async function compose(ctx: Ctx, args: string[], out: ReturnType<typeof emitter>): Promise<Result> {
    if (!rt().packages.includes('docker-compose-plugin')) return fail("docker: 'compose' is not a docker command.\nSee 'docker --help'\n", 1);
    const opts: { file?: string; dir?: string; project?: string } = {};
    let i = 0;
    for (; i < args.length; i++) {
      const a = args[i] ?? '';
      if (a === '-f' || a === '--file') opts.file = args[++i];
      else if (a === '-p' || a === '--project-name') opts.project = args[++i];
      else if (a === '--project-directory') opts.dir = args[++i];
      else break;
    }
    const [sub, ...rest] = args.slice(i);
    if (sub === 'version') return ok('Docker Compose version v2.40.3\n');
    const p = await loadCompose(ctx, opts);
    if (typeof p === 'string') return fail(`${p}\n`, 1);
    const { flags, operands } = parseFlags(rest, ['--format', '--tail', '-n']);
    switch (sub) {
      case 'up': {
        if (!flags['-d'] && !flags['--detach']) return fail('lab: only detached `docker compose up -d` is supported\n', 1);
        return composeUp(ctx, p, out);
      }
      case 'down': return composeDown(p);
      case 'pull': {
        for (const s of p.services) {
          const r = await pull(ctx, s.image, out);
          if (r === 'dropped') return { stdout: '', stderr: '', exitCode: 255 };
          if (r) return fail(r, 1, out.text());
        }
        return ok(out.text());
      }
      case 'ps': {
        // Like `docker ps`: without --all only running (and restarting) containers, not created or exited ones.
        const list = rt().docker.containers.filter((c) => c.project === p.name && (flags['-a'] || flags['--all'] || c.state === 'running' || c.state === 'restarting'));
        if (flags['--format'] === 'json') return ok(list.map((c) => `${psJson(c)}\n`).join(''));
        return ok(`NAME      IMAGE     COMMAND   SERVICE   CREATED   STATUS    PORTS\n${list.map((c) => `${c.name}   ${c.image}   "python3 -m vllm.en…"   ${c.service}   1 minute ago   ${c.state === 'running' ? 'Up 1 minute' : `Exited (${c.exitCode})`}   ${c.ports.map((x) => `0.0.0.0:${x.host}->${x.container}/tcp`).join(', ')}\n`).join('')}`);
      }
      case 'logs': {
        const svc = operands[0];
        const tail = Number(flags['--tail'] ?? flags['-n'] ?? 'NaN');
        const noPrefix = Boolean(flags['--no-log-prefix']);
        const list = rt().docker.containers.filter((c) => c.project === p.name && (!svc || c.service === svc));
        let text = '';
        for (const c of list) {
          const lines = Number.isFinite(tail) ? c.logs.slice(-tail) : c.logs;
          text += lines.map((l) => (noPrefix ? `${l}\n` : `${c.name}  | ${l}\n`)).join('');
        }
        return ok(text);
      }
      case 'restart': {
        const down = composeDown(p);
        const up = await composeUp(ctx, p, out);
        return { ...up, stderr: down.stderr + up.stderr };
      }
      default: return fail(`unknown docker command: "compose ${sub ?? ''}"\n`, 1);
    }
  }

  return [docker];
}
