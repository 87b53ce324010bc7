/**
 * The lab: a simulated Proxmox VE host on 127.0.0.1 that speaks real SSH (ssh2 Server), the PVE HTTPS API
 * (pve-api/) and the HTTP APIs of vLLM/OpenWebUI/ComfyUI, starting from the design document's state.
 * A network peer: nothing outside src/lab imports it except tests and the `pve-vllm lab` command.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { LabHost } from './host';
import { designState, FAULT_NAMES, type FaultName, type JournalEntry, type LabKeys, type LabState } from './state';
import { World } from './world';
import { pveCommands } from './cmd-pve';
import { gpuCommands } from './cmd-gpu';
import { nodeCommands } from './cmd-node';
import { userCommands } from './cmd-users';
import { pkgCommands } from './cmd-pkg';
import { dockerCommands } from './cmd-docker';
import { netCommands } from './cmd-net';
import { gitCommands } from './cmd-git';
import { uvCommands } from './cmd-uv';
import { LabServices } from './services';
import { rebootHost, type BootReport } from './boot';
import { generateEd25519, startSshServer } from './ssh-server';
import { startPveApi } from './pve-api/server';

export type { FaultName, JournalEntry, LabState } from './state';
export { FAULT_NAMES } from './state';

export interface StartLabOptions {
  statePath?: string;
  faults?: FaultName[];
  timeScale?: number;
  seed?: 'design';
}

export interface Lab {
  ssh: { host: '127.0.0.1'; port: number; hostKeyFingerprint: string };
  api: { host: '127.0.0.1'; port: number; certFingerprint: string };
  secrets: { tokenId: string; tokenSecret: string; rootPassword: string; rootPrivateKeyPem: string; vllmApiKey: string };
  /** `vllmRepurposed`: vLLM at CT 116's address, once OpenWebUI's CT is repurposed for it. */
  endpoints: { vllm: string; vllmRepurposed: string; openwebui: string; comfyui: string };
  writeConfig(path: string): Promise<void>;
  state(): LabState;
  journal(): JournalEntry[];
  handshakes(): number;
  /** every SSH exec command line the lab received, verbatim (stdin is not kept) */
  commands(): Array<{ seq: number; at: string; user: string; command: string }>;
  armFault(name: FaultName): void;
  /** Reboots the simulated host (see boot.ts): what a unit or config made persistent comes back, the rest not. */
  reboot(): Promise<BootReport>;
  /** Stops the lab; its state is saved (with statePath) unless `save: false`, e.g. when a run never started. */
  stop(opts?: { save?: boolean }): Promise<void>;
}

function newKeys(): LabKeys {
  const hostKey = generateEd25519('root@pve');
  const root = generateEd25519('root@pve-vllm-lab');
  return {
    sshHostKeyPem: hostKey.privatePem,
    rootPrivateKeyPem: root.privatePem,
    rootPublicKey: `${root.publicLine} root@pve-vllm-lab`.replace(/( \S+@\S+)+$/, ' root@pve-vllm-lab'),
    vllmApiKey: randomBytes(24).toString('base64url'),
  };
}

/** A state file the lab cannot resume from: not JSON, or not a lab's state. */
export class LabStateError extends Error {
  constructor(readonly path: string, reason: string) {
    super(`got ${JSON.stringify(path)}; allowed: a state file the lab wrote (JSON, version 1) — ${reason}; remove it to start from the design's host`);
    this.name = 'LabStateError';
  }
}

async function loadState(statePath?: string): Promise<{ state: LabState; loaded: boolean }> {
  if (!statePath || !existsSync(statePath)) return { state: designState(newKeys()), loaded: false };
  let text: string;
  try {
    text = await readFile(statePath, 'utf8');
  } catch (err) {
    throw new LabStateError(statePath, `it cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the file's first characters, and a wrong path may name a secret.
    throw new LabStateError(statePath, 'it is not JSON');
  }
  const why = notLabState(parsed);
  if (why) throw new LabStateError(statePath, `it is not a lab state (${why})`);
  return { state: parsed as LabState, loaded: true };
}

/** What a file lacks to be a saved lab state, or undefined: the parts the lab reads before anything else. */
function notLabState(v: unknown): string | undefined {
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObject(v)) return 'not an object';
  if (v.version !== 1) return 'version is not 1';
  const keys = v.keys;
  if (!isObject(keys) || typeof keys.sshHostKeyPem !== 'string' || typeof keys.rootPrivateKeyPem !== 'string' || typeof keys.vllmApiKey !== 'string') return 'no keys';
  if (!isObject(v.node)) return 'no node';
  if (!isObject(v.guests) || !isObject(v.runtimes) || !isObject(v.files)) return 'no guests, runtimes or files';
  const access = v.access;
  if (!isObject(access) || !Array.isArray(access.tokens) || access.tokens.length === 0 || typeof access.rootPassword !== 'string') return 'no API access';
  for (const list of ['pci', 'storage', 'tasks', 'journal'] as const) if (!Array.isArray(v[list])) return `no ${list}`;
  return undefined;
}

export async function startLab(opts: StartLabOptions = {}): Promise<Lab> {
  for (const f of opts.faults ?? []) if (!FAULT_NAMES.includes(f)) throw new Error(`unknown lab fault '${String(f)}' (known: ${FAULT_NAMES.join(', ')})`);
  const { state } = await loadState(opts.statePath);
  const host = new LabHost(state, opts.timeScale ?? 1);
  for (const f of opts.faults ?? []) host.armFault(f);
  const world = new World(host);
  for (const f of [pveCommands, gpuCommands, userCommands, pkgCommands, gitCommands, dockerCommands, netCommands, nodeCommands, uvCommands]) world.addCommands(f);

  const decode = (files: LabState['files'][string] | undefined): Record<string, string> | undefined =>
    files ? Object.fromEntries(files.map((f) => [f.path, Buffer.from(f.content, 'base64').toString('utf8')])) : undefined;
  world.createMachine('host', decode(state.files.host));
  for (const g of host.guests()) if (g.type === 'lxc') world.createMachine(String(g.vmid), decode(state.files[String(g.vmid)]));

  const services = new LabServices(world);
  world.services = services;
  host.on('guestCreated', (g) => { if (!world.machine(String(g.vmid))) world.createMachine(String(g.vmid)); });
  host.on('guestDestroyed', (vmid) => { world.machines.delete(String(vmid)); });
  host.on('guestStopped', (g) => { if (g.type === 'lxc') services.guestStopped(g.vmid); });
  host.on('guestStarted', (g) => { world.noteStart(g); if (g.type === 'lxc') services.guestStarted(g.vmid); });
  await services.start();

  // Persist after mutations (debounced) and at stop, so two runs in a row act on the same host.
  let saving: Promise<void> = Promise.resolve();
  let saveTimer: NodeJS.Timeout | null = null;
  const save = async (): Promise<void> => {
    if (!opts.statePath) return;
    for (const [key, m] of world.machines) state.files[key] = await m.fs.snapshot(() => false);
    await mkdir(dirname(opts.statePath), { recursive: true });
    await writeFile(opts.statePath, JSON.stringify(state), { mode: 0o600 });
  };
  host.on('mutated', () => {
    if (!opts.statePath || saveTimer) return;
    saveTimer = setTimeout(() => { saveTimer = null; saving = saving.then(save).catch(() => undefined); }, 200);
  });

  const ssh = await startSshServer(world, state.keys.sshHostKeyPem);
  const api = await startPveApi(host);
  const token = state.access.tokens[0];
  if (!token) throw new Error('lab state has no API token');
  const tokenId = `${token.userid}!${token.tokenid}`;
  const endpoints = {
    vllm: `http://127.0.0.1:${services.vllmPort.port}`,
    vllmRepurposed: `http://127.0.0.1:${services.vllmRepurposedPort.port}`,
    openwebui: `http://127.0.0.1:${services.openwebuiPort.port}`,
    comfyui: `http://127.0.0.1:${services.comfyuiPort.port}`,
  };
  let stopped = false;

  const lab: Lab = {
    ssh: { host: '127.0.0.1', port: ssh.port, hostKeyFingerprint: ssh.hostKeyFingerprint },
    api: { host: '127.0.0.1', port: api.port, certFingerprint: api.certFingerprint },
    secrets: { tokenId, tokenSecret: token.secret, rootPassword: state.access.rootPassword, rootPrivateKeyPem: state.keys.rootPrivateKeyPem, vllmApiKey: state.keys.vllmApiKey },
    endpoints,
    writeConfig: (path) => writeLabConfig(path, lab, state),
    state: () => structuredClone(state),
    journal: () => structuredClone(state.journal),
    handshakes: () => ssh.handshakes(),
    commands: () => ssh.commands(),
    armFault: (name) => {
      if (!FAULT_NAMES.includes(name)) throw new Error(`unknown lab fault '${String(name)}'`);
      host.armFault(name);
    },
    reboot: () => rebootHost(world, host),
    stop: async (stopOpts) => {
      if (stopped) return;
      stopped = true;
      if (saveTimer) clearTimeout(saveTimer);
      await Promise.all([ssh.stop(), api.stop(), services.stop()]);
      await saving;
      if (stopOpts?.save !== false) await save();
    },
  };
  return lab;
}

/** The deploy config pointing at the lab; secrets go to files beside it (mode 0600), referenced by { file }. */
async function writeLabConfig(path: string, lab: Lab, state: LabState): Promise<void> {
  const dir = dirname(path);
  const stem = basename(path).replace(/\.ya?ml$/, '');
  await mkdir(dir, { recursive: true });
  if (!state.keys.admin) {
    const admin = generateEd25519('claude@pve-vllm');
    state.keys.admin = { privatePem: admin.privatePem, publicLine: `${admin.publicLine.split(' ').slice(0, 2).join(' ')} claude@pve-vllm` };
  }
  const secrets: Record<string, string> = {
    'pve-token': lab.secrets.tokenSecret,
    'root-password': lab.secrets.rootPassword,
    'root-ssh-key': lab.secrets.rootPrivateKeyPem,
    'vllm-api-key': lab.secrets.vllmApiKey,
    'admin-ssh-key': state.keys.admin.privatePem,
    'openwebui-api-key': state.runtimes['116']?.openwebui?.adminApiKey ?? '',
  };
  const ref = (name: string): { file: string } => ({ file: `./${stem}.${name}` });
  for (const [name, value] of Object.entries(secrets)) {
    await writeFile(join(dir, `${stem}.${name}`), value, { mode: 0o600 });
  }
  const config = {
    proxmox: {
      host: '127.0.0.1',
      node: state.node.name,
      api: { port: lab.api.port, tokenId: lab.secrets.tokenId, tokenSecret: ref('pve-token'), tls: { fingerprint: lab.api.certFingerprint } },
      root: { password: ref('root-password') },
      ssh: { port: lab.ssh.port, user: 'root', privateKey: ref('root-ssh-key'), hostKey: lab.ssh.hostKeyFingerprint },
    },
    gpu: { pciAddress: '0000:01:00.0', model: 'NVIDIA GeForce RTX 4070 Ti SUPER', vramMiB: 16376, computeCapability: '8.9' },
    guests: {
      vm: { id: 151 },
      openwebui: { id: 116, url: lab.endpoints.openwebui, reduceTo: { cores: 4, memoryMiB: 8192 }, apiKey: ref('openwebui-api-key'), vllmEndpoint: lab.endpoints.vllmRepurposed },
      comfyui: { id: 118, url: lab.endpoints.comfyui, reduceTo: { cores: 4, memoryMiB: 8192 } },
      vllm: {
        id: 117, hostname: 'vllm', cores: 16, memoryMiB: 98304, diskGiB: 64, storage: 'local-lvm',
        template: 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst',
        network: { bridge: 'vmbr0', ip: '10.0.50.117/24', gateway: '10.0.50.1' },
        endpoint: lab.endpoints.vllm,
      },
    },
    model: { id: 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', maxModelLen: 16384, gpuMemoryUtilization: 0.9, cpuOffloadGb: 0, allowContextReduction: true },
    vllm: { image: 'vllm/vllm-openai:v0.6.4.post1', port: 8000, apiKey: ref('vllm-api-key') },
    admin: { user: 'claude', publicKey: state.keys.admin.publicLine, privateKey: ref('admin-ssh-key') },
    repo: { url: 'https://github.com/vllm-project/vllm.git', ref: 'v0.6.4', path: '/opt/vllm' },
    backup: { beforeScrap: true, storage: 'local' },
  };
  await writeFile(path, `# pve-vllm deploy config for the lab (127.0.0.1 only). Secrets are in the files beside it.\n${stringify(config)}`, { mode: 0o600 });
}
