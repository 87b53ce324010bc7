/**
 * The lab's host model: plain, JSON-serialisable data (so it can be saved to `statePath` and deep-copied
 * for `lab.state()`), plus the starting state of the design document before the deploy.
 *
 * Guest configs are kept exactly as PVE stores them: `config` holds `key -> value` strings as they appear
 * in `/etc/pve/lxc/<id>.conf` (e.g. `features: "nesting=1,keyctl=1"`), raw `lxc.*` lines are kept in file
 * order in `lxc`, and `pending` holds un-applied changes of a running guest. `pct config`, the config file
 * and the API GET config are all rendered from this one record (see guest-config.ts).
 *
 * Shared with the PVE-API side (src/lab/pve-api/): it reads/writes this model only through LabHost (host.ts).
 */

export type FaultName = 'pve-500' | 'ssh-drop' | 'vllm-oom' | 'driver-mismatch' | 'frontend-unreachable';
export const FAULT_NAMES: readonly FaultName[] = ['pve-500', 'ssh-drop', 'vllm-oom', 'driver-mismatch', 'frontend-unreachable'];

export type Via = 'ssh' | 'api';

/** One mutating operation. Reads are never journaled, so a re-run that changes nothing adds no entries. */
export interface JournalEntry {
  seq: number;
  at: string; // ISO time
  via: Via;
  op: string; // e.g. 'pct set', 'lxc.config.put', 'qm stop', 'file.write', 'docker pull'
  guest?: number; // vmid, absent for host-level operations
  detail: string; // short human text; never a secret
}

export type GuestType = 'lxc' | 'qemu';
export type GuestStatus = 'running' | 'stopped';

export interface Guest {
  vmid: number;
  type: GuestType;
  status: GuestStatus;
  /** PVE option key -> value string, as written in the config file (never contains `digest` or `lxc`). */
  config: Record<string, string>;
  /** Raw `lxc.*` lines, file order; always empty for qemu guests. */
  lxc: Array<[string, string]>;
  /** Pending (not yet applied) changes of a running guest; `delete` lists keys pending deletion. */
  pending: Record<string, string>;
  /** Epoch seconds of the last start, for uptime; 0 when stopped. */
  startedAt: number;
  pid: number;
  /** Raw file text when the file was last written by hand (pmxcfs keeps the bytes); cleared by any PVE write. */
  raw?: string;
  /** Raw lxc lines as they were when the CT last started: LXC reads them only at start. */
  appliedLxc?: Array<[string, string]>;
  /** The host's /dev/nvidia* nodes when the CT last started: a bind mount of a node made later is not in the CT. */
  startNodes?: string[];
  /** Lock held by a running task ('create', 'backup', ...), printed by `pct list`. */
  lock?: string;
}

/** A PCI function on the host. `driver` follows bind/unbind; `null` = no driver bound. */
export interface PciDevice {
  bdf: string; // 0000:01:00.0
  classCode: string; // '0300'
  className: string; // 'VGA compatible controller'
  vendorId: string; // '10de'
  deviceId: string; // '2705'
  vendorName: string; // 'NVIDIA Corporation'
  deviceName: string; // 'AD103 [GeForce RTX 4070 Ti SUPER]'
  subsystem: string; // 'Subsystem: ...' text after the colon
  rev: string; // 'a1'
  driver: string | null;
  driverOverride: string | null;
  kernelModules: string[];
  iommuGroup: number;
}

export interface TaskRecord {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number; // epoch seconds
  type: string; // 'vzstart', 'qmstop', 'vzcreate', ...
  id: string; // vmid as string or ''
  user: string; // 'root@pam' or 'root@pam!pve-vllm'
  status: 'running' | 'stopped';
  exitstatus?: string; // 'OK' | 'WARNINGS: n' | error text
  endtime?: number;
  log: string[];
}

export interface StorageContent {
  volid: string; // local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst
  content: 'vztmpl' | 'iso' | 'backup' | 'images' | 'rootdir';
  format: string; // 'tzst', 'raw', ...
  size: number; // bytes
  ctime: number;
  vmid?: number;
}

export interface Storage {
  storage: string; // 'local' | 'local-lvm'
  type: 'dir' | 'lvmthin';
  content: string[]; // allowed content types
  total: number;
  used: number;
  items: StorageContent[];
}

export interface ApiToken {
  userid: string; // root@pam
  tokenid: string; // pve-vllm
  privsep: 0 | 1;
  secret: string; // lab only: the UUID the client must present
  comment?: string;
  expire: number;
}

export interface ApiUser {
  userid: string;
  enable: 0 | 1;
  expire: number;
  firstname?: string;
  lastname?: string;
  email?: string;
  comment?: string;
}

/** A docker image present in a container's engine. */
export interface DockerImage {
  ref: string; // vllm/vllm-openai:v0.6.4.post1
  id: string; // sha256:…
  sizeBytes: number;
  created: string;
}

/** A docker container in a CT's engine (we model compose services as containers). */
export interface DockerContainer {
  id: string;
  name: string; // vllm
  project: string; // compose project name ('' for docker run)
  service: string;
  image: string;
  command: string[]; // argv after the image entrypoint (vLLM args)
  env: Record<string, string>;
  ports: Array<{ host: number; container: number }>;
  state: 'created' | 'running' | 'exited' | 'restarting';
  exitCode: number;
  createdAt: number;
  startedAt: number;
  logs: string[];
  restart: string;
  /** GPU reservation (compose `deploy.resources.reservations.devices` / `--gpus`). */
  gpu: boolean;
  /** VRAM the process holds once running (0 while starting or failed). */
  gpuMiB: number;
  pid: number;
}

/** Per-container runtime facts that are not files (packages, services, docker engine). */
export interface CtRuntime {
  packages: string[]; // apt packages installed
  services: Record<string, 'active' | 'inactive' | 'failed'>; // systemd unit -> state
  enabledServices: string[];
  aptUpdated: boolean;
  /** Repositories (sources.list.d file names) whose indexes were fetched by the last `apt-get update`. */
  aptRepos?: string[];
  /** Userspace NVIDIA driver version installed in the CT ('' = none). */
  nvidiaUserspace: string;
  docker: { images: DockerImage[]; containers: DockerContainer[]; runtimes: string[] };
  /** OpenWebUI's persisted (database) config: after the first start the DB wins over the env file. */
  openwebui?: { initialised: boolean; adminApiKey: string; config: OpenWebuiConfig };
  /** ComfyUI: custom node packs loaded at the last (re)start of comfyui.service. */
  comfyui?: { loadedPacks: string[] };
}

export interface OpenWebuiConfig {
  ENABLE_OPENAI_API: boolean;
  OPENAI_API_BASE_URLS: string[];
  OPENAI_API_KEYS: string[];
  ENABLE_OLLAMA_API: boolean;
}

/** A persisted file (the filesystem of each machine is saved as a list of these). */
export interface SavedFile {
  path: string;
  content: string; // base64
  mode: number;
}

export interface NodeState {
  name: string; // 'pve'
  pveManager: string; // 'pve-manager/8.4.1/2a5fa54a8503f96d'
  kernel: string; // '6.8.12-9-pve'
  /** The host's NVIDIA kernel driver version (installed; loaded only while `nvidia` is in `modules`). */
  nvidiaDriver: string;
  /** Loaded kernel modules (lsmod). */
  modules: string[];
  /** Whether the initramfs is older than the modprobe.d files (needs `update-initramfs -u`). */
  initramfsStale: boolean;
  ip: string; // management address shown in configs, e.g. 10.0.50.10 (never contacted)
}

/** Long-lived key material, kept in the state so two runs in a row keep the same pins and credentials. */
export interface LabKeys {
  sshHostKeyPem: string; // ed25519, OpenSSH private key format
  rootPrivateKeyPem: string; // root's login key (handed to tests/config)
  rootPublicKey: string; // 'ssh-ed25519 AAAA… root@lab'
  vllmApiKey: string; // the key the deploy config carries (written into the compose file by the deploy)
  tls?: { certPem: string; keyPem: string }; // PVE API certificate (owned by pve-api/)
  admin?: { privatePem: string; publicLine: string }; // the deploy's admin user key pair (writeConfig)
}

export interface LabState {
  version: 1;
  keys: LabKeys;
  node: NodeState;
  pci: PciDevice[];
  guests: Record<string, Guest>; // keyed by vmid as string (JSON keys)
  storage: Storage[];
  access: { users: ApiUser[]; tokens: ApiToken[]; rootPassword: string };
  tasks: TaskRecord[];
  runtimes: Record<string, CtRuntime>; // keyed by CT vmid
  files: Record<string, SavedFile[]>; // 'host' or CT vmid -> files written by commands (see fs.ts)
  journal: JournalEntry[];
  /** loopback ports of the vLLM/OpenWebUI/ComfyUI stand-ins, kept so a saved lab keeps its URLs */
  servicePorts?: { vllm?: number; vllmRepurposed?: number; openwebui?: number; comfyui?: number };
  seq: number; // last journal seq
}

export const NVIDIA_BDF = '0000:01:00.0';
export const NVIDIA_AUDIO_BDF = '0000:01:00.1';
export const AMD_BDF = '0000:03:00.0';
export const HOST_NVIDIA_DRIVER = '580.126.09';
export const DEBIAN_TEMPLATE = 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst';

export function emptyRuntime(): CtRuntime {
  return {
    packages: [],
    services: {},
    enabledServices: [],
    aptUpdated: false,
    nvidiaUserspace: '',
    docker: { images: [], containers: [], runtimes: ['io.containerd.runc.v2', 'runc'] },
  };
}

/** What a CT made from the Debian 12 standard template has installed (no apt lists yet: `apt-get update` first). */
export function templateRuntime(): CtRuntime {
  const rt = emptyRuntime();
  rt.packages = ['ca-certificates', 'curl', 'wget', 'openssh-server', 'python3'];
  rt.services = { 'ssh.service': 'active', 'cron.service': 'active' };
  rt.enabledServices = ['ssh.service', 'cron.service'];
  return rt;
}

export { designState } from './seed';
