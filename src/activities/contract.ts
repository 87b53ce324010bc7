// The activity interface the deploy workflow calls. Types only: workflow code imports this file as a type.
// Every activity is an idempotent verb naming its end state: read, compare, act, read back, return { changed }.
import type { DeployConfig } from '../config/schema';

export interface Changed {
  /** true when this call changed the host */
  changed: boolean;
}

export interface GpuFact {
  bdf: string;
  vendor: 'nvidia' | 'amd' | 'other';
  name: string;
  driver: string | null;
}

export interface HostFacts {
  pveVersion: string;
  nodeName: string;
  gpus: GpuFact[];
  /** the configured NVIDIA GPU */
  gpu: GpuFact;
  /** the VM whose hostpciN names the GPU, if any */
  gpuHolder: { vmid: number; status: 'running' | 'stopped'; onboot: boolean } | null;
  /** `NVRM version` of the host kernel module, when loaded */
  hostDriverVersion: string | null;
  /** userspace driver version installed on the host (what the CT must match) */
  hostDriverPackageVersion: string | null;
  nouveauLoaded: boolean;
  vllmCtExists: boolean;
  /** the admin user exists before this run touches it (`id -u`); absent in histories from before it was read */
  adminUserExists?: boolean;
  /** the CTs running before this run (absent in histories from before it was read) */
  runningCts?: number[];
}

export interface AdminUserResult extends Changed {
  user: string;
  /** What this call changed, so that an undo takes back only that (absent in runs recorded before). */
  created?: boolean;
  addedToSudo?: boolean;
  /** The sudoers drop-in before this call wrote it: null when there was none; absent when it was not written. */
  sudoersBefore?: string | null;
  /** The public key was appended to authorized_keys; `keysFileExisted` says whether that file was there. */
  addedKey?: boolean;
  keysFileExisted?: boolean;
}

export interface ClaudeCodeResult extends Changed {
  version: string;
}

export interface AccessEvidence {
  whoami: string;
  sudoExitCode: number;
  evidence: string;
}

export interface RepoResult extends Changed {
  commit: string;
  path: string;
}

export interface OpenwebuiAssessment {
  vmid: number;
  exists: boolean;
  status: 'running' | 'stopped' | 'missing';
  cores: number;
  memoryMiB: number;
  gpuPassthrough: boolean;
  reachable: boolean;
  connectedToVllm: boolean;
  recommendation: 'repurpose' | 'keep' | 'scrap';
  reasons: string[];
}

export interface ContainerResult extends Changed {
  vmid: number;
  created: boolean;
}

export interface VmGpuRelease extends Changed {
  vmid: number;
  wasRunning: boolean;
  onbootBefore: boolean;
  /** CTs running before the run: giving the GPU back starts again those it (or an undo before it) left stopped. */
  runningCtsBefore?: number[];
  /** The card's driver before the run: a card that was on nvidia already is not taken off it by the undo. */
  driverBefore?: string | null;
}

/** The host before pve-vllm's first deploy, kept on the host for a teardown (no secrets in it). */
export interface DeploymentRecord {
  /** the deploy run that first wrote it */
  run: string;
  vm: { id: number; running: boolean; onboot: boolean };
  gpuDriver: string | null;
  /** CTs running before the deploy */
  runningCts: number[];
  vllmCt: { id: number; created: boolean };
  /** CT configs as they were before a deploy first changed them, by vmid */
  confBefore: Record<string, string>;
  /**
   * Frontend CTs whose insides a deploy changed (their "before" kept in the CT): any other one, stopped at a
   * teardown, needs only its config back. Absent in records of older pve-vllm: then nothing is known.
   */
  changedInside?: number[];
}

export interface HostDriverResult extends Changed {
  driverVersion: string;
  majors: { nvidia: number; nvidiaUvm: number; nvidiaCaps?: number };
  nouveauBlacklisted: boolean;
}

/** An existing CT's passthrough is undone by the config the workflow read before step 5 touched it. */
export type PassthroughResult = Changed;

export interface GpuInContainerEvidence {
  gpuName: string;
  memoryTotalMiB: number;
  driverVersion: string;
  evidence: string;
}

export interface ImagePullResult extends Changed {
  image: string;
  digest: string;
  layers: number;
}

export interface VllmLaunch {
  model: string;
  servedModelName: string;
  maxModelLen: number;
  gpuMemoryUtilization: number;
  cpuOffloadGb: number;
  quantization?: string;
  /** `--kv-cache-dtype`, when not the model's own dtype */
  kvCacheDtype?: string;
}

export interface ServingEvidence {
  ok: boolean;
  models: string[];
  maxModelLen?: number;
  evidence: string;
  /** classifier output when start-up failed */
  failure?: { cause: string; explanation: string; remedy: string; estimatedMaxLen?: number; suggestedMaxModelLen?: number };
}

export interface FrontendResult extends Changed {
  frontend: 'openwebui' | 'comfyui';
  beforeRaw?: string;
}

export interface ReachEvidence {
  frontend: 'openwebui' | 'comfyui';
  ok: boolean;
  evidence: string;
}

export interface ChatEvidence {
  frontend: 'openwebui' | 'comfyui';
  ok: boolean;
  reply: string;
  evidence: string;
}

export interface UndoResult extends Changed {
  detail: string;
}

export interface LabGuestView {
  status: string;
  gpu: boolean;
}

export interface DeployActivities {
  // 1. Connect
  inspectHost(cfg: DeployConfig): Promise<HostFacts>;
  // 2. Admin user + Claude Code
  ensureAdminUser(cfg: DeployConfig): Promise<AdminUserResult>;
  ensureClaudeCode(cfg: DeployConfig): Promise<ClaudeCodeResult>;
  verifyAdminAccess(cfg: DeployConfig): Promise<AccessEvidence>;
  removeAdminUser(cfg: DeployConfig): Promise<UndoResult>;
  revertAdminUser(cfg: DeployConfig, change: AdminUserResult): Promise<UndoResult>;
  // 3. vLLM repository
  ensureRepoCloned(cfg: DeployConfig): Promise<RepoResult>;
  // 4. OpenWebUI assessment
  assessOpenwebui(cfg: DeployConfig): Promise<OpenwebuiAssessment>;
  // 5. vLLM container and GPU
  ensureVllmContainer(cfg: DeployConfig, vmid: number): Promise<ContainerResult>;
  destroyContainer(cfg: DeployConfig, vmid: number): Promise<UndoResult>;
  readGuestConfig(cfg: DeployConfig, vmid: number): Promise<string>;
  restoreContainerConfig(cfg: DeployConfig, vmid: number, beforeRaw: string): Promise<UndoResult>;
  ensureGpuReleasedFromVm(cfg: DeployConfig): Promise<VmGpuRelease>;
  ensureHostGpuDriver(cfg: DeployConfig): Promise<HostDriverResult>;
  /** A boot unit that puts the GPU on nvidia and makes its device nodes before pve-guests starts the vLLM CT. */
  ensureGpuBootUnit(cfg: DeployConfig): Promise<Changed>;
  removeGpuBootUnit(cfg: DeployConfig): Promise<UndoResult>;
  returnGpuToVm(cfg: DeployConfig, release: VmGpuRelease): Promise<UndoResult>;
  ensureGpuPassthrough(cfg: DeployConfig, vmid: number, majors: HostDriverResult['majors']): Promise<PassthroughResult>;
  ensureContainerRunning(cfg: DeployConfig, vmid: number): Promise<Changed>;
  ensureNvidiaUserspace(cfg: DeployConfig, vmid: number, driverVersion: string): Promise<Changed>;
  verifyGpuInContainer(cfg: DeployConfig, vmid: number): Promise<GpuInContainerEvidence>;
  ensureDocker(cfg: DeployConfig, vmid: number): Promise<Changed>;
  ensureNvidiaToolkit(cfg: DeployConfig, vmid: number): Promise<Changed>;
  ensureImagePulled(cfg: DeployConfig, vmid: number): Promise<ImagePullResult>;
  ensureVllmService(cfg: DeployConfig, vmid: number, launch: VllmLaunch): Promise<Changed>;
  stopVllmService(cfg: DeployConfig, vmid: number): Promise<UndoResult>;
  verifyVllmServing(cfg: DeployConfig, vmid: number, launch: VllmLaunch): Promise<ServingEvidence>;
  // 6. Frontends
  ensureComfyuiOnVllm(cfg: DeployConfig, servedModelName: string): Promise<FrontendResult>;
  ensureOpenwebuiOnVllm(cfg: DeployConfig, servedModelName: string): Promise<FrontendResult>;
  /** ComfyUI when it is not the frontend: its GPU passthrough out and --cpu, nothing else. */
  releaseComfyuiGpu(cfg: DeployConfig): Promise<FrontendResult & { detail: string }>;
  restoreFrontend(cfg: DeployConfig, result: FrontendResult): Promise<UndoResult>;
  verifyFrontendReachesVllm(cfg: DeployConfig, frontend: 'openwebui' | 'comfyui', servedModelName: string): Promise<ReachEvidence>;
  // 7. Integration test
  verifyChatThroughFrontend(cfg: DeployConfig, frontend: 'openwebui' | 'comfyui', servedModelName: string): Promise<ChatEvidence>;
  // Scrap (irreversible, after checkpoint 6)
  backupGuest(cfg: DeployConfig, vmid: number): Promise<{ volid: string } & Changed>;
  // Teardown of a completed deploy
  recordDeployment(cfg: DeployConfig, facts: DeploymentRecord): Promise<Changed>;
  readDeploymentRecord(cfg: DeployConfig): Promise<DeploymentRecord | null>;
  deleteDeploymentRecord(cfg: DeployConfig): Promise<UndoResult>;
  stopVllmForTeardown(cfg: DeployConfig, vmid: number): Promise<UndoResult>;
  tearDownFrontend(cfg: DeployConfig, frontend: 'openwebui' | 'comfyui', confBefore: string | undefined): Promise<UndoResult>;
  tearDownGpuBootUnit(cfg: DeployConfig): Promise<UndoResult>;
}
