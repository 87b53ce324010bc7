// Inside the vLLM container (through `pct exec`): NVIDIA userspace, Docker, the toolkit, the image, the service.
import { Context } from '@temporalio/activity';
import type { DeployConfig } from '../config/schema';
import type { Changed, GpuInContainerEvidence, ImagePullResult, UndoResult, VllmLaunch } from './contract';
import { ActivityDeps, CommandFailedError, Host, lookAgain, permanent, reportProgress, thisRun } from './deps';
import { parseGpuQuery } from './parse';

export const VLLM_DIR = '/opt/vllm';
const COMPOSE = `${VLLM_DIR}/docker-compose.yml`;
const ENV_FILE = `${VLLM_DIR}/.env`;
/**
 * What the vLLM service was before a run changed it: copies of its compose file and .env (root-only, on the CT,
 * never in history) and `state`: `<runId> <running|stopped> <files|none> [restored]`, written last.
 */
const BEFORE_DIR = `${VLLM_DIR}/.pve-vllm-before`;
const BEFORE_STATE = `${BEFORE_DIR}/state`;
/** The same, as pve-vllm's first deploy found it: kept for a teardown (recordDeployment). */
const KEPT_DIR = `${VLLM_DIR}/.pve-vllm-before-deploy`;
const KEPT_STATE = `${KEPT_DIR}/state`;
const VLLM_FILES = ['docker-compose.yml', '.env'];
const TOOLKIT_CONFIG = '/etc/nvidia-container-runtime/config.toml';
const NVML_MISMATCH = 'Failed to initialize NVML: Driver/library version mismatch';
const APT = { timeoutMs: 1_200_000 };

export function createContainerActivities(deps: ActivityDeps) {
  const h = (cfg: DeployConfig) => new Host(deps, cfg);
  const signal = () => Context.current().cancellationSignal;

  async function gpuQuery(host: Host, vmid: number) {
    return host.ct(vmid, ['nvidia-smi', '--query-gpu=name,memory.total,driver_version', '--format=csv,noheader,nounits']);
  }

  return {
    async ensureNvidiaUserspace(cfg: DeployConfig, vmid: number, driverVersion: string): Promise<Changed> {
      const host = h(cfg);
      const q = await gpuQuery(host, vmid);
      if (q.code === 0 && parseGpuQuery(q.stdout)?.driverVersion === driverVersion) return { changed: false };
      // The CT shares the host's kernel module: install only the userspace of exactly that version, from
      // NVIDIA's CUDA repository for Debian 12 (apt pins `=<version>-1`; Debian's own is another branch).
      const keyring = '/tmp/cuda-keyring_1.1-1_all.deb';
      await host.ctMust(vmid, ['apt-get', 'update'], APT);
      await host.ctMust(vmid, ['apt-get', 'install', '-y', 'curl', 'ca-certificates'], APT);
      await host.ctMust(vmid, ['curl', '-fsSL', '-o', keyring, 'https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb'], APT);
      await host.ctMust(vmid, ['dpkg', '-i', keyring], APT);
      await host.ctMust(vmid, ['apt-get', 'update'], APT);
      await host.ctMust(vmid, ['apt-get', 'install', '-y', `nvidia-driver-cuda=${driverVersion}-1`], APT);
      return { changed: true };
    },

    async verifyGpuInContainer(cfg: DeployConfig, vmid: number): Promise<GpuInContainerEvidence> {
      const host = h(cfg);
      return lookAgain<GpuInContainerEvidence>(async () => {
        const q = await gpuQuery(host, vmid);
        const text = `${q.stdout}${q.stderr}`.trim();
        if (text.includes(NVML_MISMATCH)) {
          // Does not heal by waiting.
          throw permanent(
            `checkpoint 3 failed: nvidia-smi in CT ${vmid}: "${NVML_MISMATCH}". The CT's userspace driver differs from the host's kernel module ` +
              'and reinstalling it did not help: install the host driver version in the CT (NVIDIA .run with --no-kernel-module) or reboot the host after a driver upgrade.',
            'DriverMismatch',
          );
        }
        const gpu = q.code === 0 ? parseGpuQuery(q.stdout) : null;
        if (!gpu) return { notYet: `checkpoint 3 failed: nvidia-smi in CT ${vmid} exited ${q.code}: ${text.slice(0, 300)}` };
        // The model was sized for the GPU the config names: a different card, or less memory, voids that.
        const wanted = cfg.gpu.model;
        if (wanted && gpu.name.toLowerCase() !== wanted.toLowerCase()) {
          throw permanent(`checkpoint 3 failed: nvidia-smi in CT ${vmid} reports ${gpu.name}, but gpu.model is ${wanted}: the model was sized for that card; correct gpu.model (and gpu.vramMiB) and run again`, 'GpuMismatch');
        }
        if (cfg.gpu.vramMiB !== undefined && gpu.memoryTotalMiB < cfg.gpu.vramMiB) {
          throw permanent(`checkpoint 3 failed: nvidia-smi in CT ${vmid} reports ${gpu.memoryTotalMiB} MiB, less than gpu.vramMiB ${cfg.gpu.vramMiB} the model was sized for; set gpu.vramMiB to ${gpu.memoryTotalMiB} and run again`, 'GpuMismatch');
        }
        return { ok: { gpuName: gpu.name, memoryTotalMiB: gpu.memoryTotalMiB, driverVersion: gpu.driverVersion, evidence: `pct exec ${vmid} -- nvidia-smi: ${gpu.name}, ${gpu.memoryTotalMiB} MiB, driver ${gpu.driverVersion}` } };
      });
    },

    async ensureDocker(cfg: DeployConfig, vmid: number): Promise<Changed> {
      const host = h(cfg);
      const hasCompose = (await host.ct(vmid, ['docker', 'compose', 'version'])).code === 0;
      const active = (await host.ct(vmid, ['systemctl', 'is-active', 'docker'])).code === 0;
      if (hasCompose && active) return { changed: false };
      if (!hasCompose) {
        await host.ctMust(vmid, ['apt-get', 'update'], APT);
        await host.ctMust(vmid, ['apt-get', 'install', '-y', 'ca-certificates', 'curl'], APT);
        await host.ctMust(vmid, ['install', '-m', '0755', '-d', '/etc/apt/keyrings']);
        await host.ctMust(vmid, ['curl', '-fsSL', '-o', '/etc/apt/keyrings/docker.asc', 'https://download.docker.com/linux/debian/gpg']);
        await host.ctWrite(vmid, '/etc/apt/sources.list.d/docker.list',
          'deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian bookworm stable\n');
        await host.ctMust(vmid, ['apt-get', 'update'], APT);
        await host.ctMust(vmid, ['apt-get', 'install', '-y', 'docker-ce', 'docker-ce-cli', 'containerd.io', 'docker-compose-plugin'], APT);
      }
      await host.ctMust(vmid, ['systemctl', 'enable', '--now', 'docker']);
      return { changed: true };
    },

    async ensureNvidiaToolkit(cfg: DeployConfig, vmid: number): Promise<Changed> {
      const host = h(cfg);
      let changed = false;
      if ((await host.ct(vmid, ['nvidia-ctk', '--version'])).code !== 0) {
        await host.ctMust(vmid, ['curl', '-fsSL', '-o', '/etc/apt/keyrings/nvidia-container-toolkit.asc', 'https://nvidia.github.io/libnvidia-container/gpgkey']);
        await host.ctWrite(vmid, '/etc/apt/sources.list.d/nvidia-container-toolkit.list',
          'deb [signed-by=/etc/apt/keyrings/nvidia-container-toolkit.asc] https://nvidia.github.io/libnvidia-container/stable/deb/amd64 /\n');
        await host.ctMust(vmid, ['apt-get', 'update'], APT);
        await host.ctMust(vmid, ['apt-get', 'install', '-y', 'nvidia-container-toolkit'], APT);
        changed = true;
      }
      const runtimes = await host.ctMust(vmid, ['docker', 'info', '--format', '{{json .Runtimes}}']);
      if (!runtimes.includes('"nvidia"')) {
        await host.ctMust(vmid, ['nvidia-ctk', 'runtime', 'configure', '--runtime=docker']);
        changed = true;
      }
      // An unprivileged CT cannot manage device cgroups: the toolkit must not try (no-cgroups).
      if (!/^no-cgroups = true$/m.test((await host.ctRead(vmid, TOOLKIT_CONFIG)) ?? '')) {
        await host.ctMust(vmid, ['nvidia-ctk', 'config', '--set', 'nvidia-container-cli.no-cgroups=true', '--in-place']);
        changed = true;
      }
      if (changed) await host.ctMust(vmid, ['systemctl', 'restart', 'docker']);
      return { changed };
    },

    async ensureImagePulled(cfg: DeployConfig, vmid: number): Promise<ImagePullResult> {
      const host = h(cfg);
      const image = cfg.vllm.image;
      const have = await host.ct(vmid, ['docker', 'image', 'inspect', '--format', '{{.Id}}', image]);
      if (have.code === 0) return { changed: false, image, digest: have.stdout.trim(), layers: 0 };
      const layers = new Set<string>();
      const done = new Set<string>();
      let buf = '';
      const r = await host.ct(vmid, ['docker', 'pull', image], {
        timeoutMs: 3_600_000,
        signal: signal(),
        onOutput: (chunk, stream) => {
          if (stream !== 'stdout') return;
          buf += chunk;
          const lines = buf.split('\n');
          buf = lines.pop() ?? '';
          for (const line of lines) {
            const m = /^([0-9a-f]{12}): (.+)$/.exec(line);
            if (!m) continue;
            layers.add(m[1] as string);
            if (m[2] === 'Pull complete' || m[2] === 'Already exists') done.add(m[1] as string);
            reportProgress(`pulling ${image}: ${done.size}/${layers.size} layers`);
          }
        },
      });
      if (r.code !== 0) {
        if (/manifest unknown|not found|pull access denied/i.test(r.stderr)) {
          throw permanent(`image ${image} does not exist or is private: ${r.stderr.trim()}; set vllm.image to a published tag`, 'ImageNotFound');
        }
        throw new CommandFailedError(`docker pull ${image}`, r);
      }
      const digest = /Digest: (sha256:[0-9a-f]+)/.exec(r.stdout)?.[1] ?? '';
      return { changed: true, image, digest, layers: layers.size };
    },

    async ensureVllmService(cfg: DeployConfig, vmid: number, launch: VllmLaunch): Promise<Changed> {
      const host = h(cfg);
      const run = thisRun();
      const compose = composeFile(cfg, launch);
      const env = envFile(host, cfg);
      const oldCompose = await host.ctRead(vmid, COMPOSE);
      const oldEnv = await host.ctRead(vmid, ENV_FILE);
      const running = await vllmRunning(host, vmid);
      // Saved by an earlier attempt of this run: then that attempt may have changed the service already.
      const ours = parseBefore(await host.ctRead(vmid, BEFORE_STATE))?.run === run;
      if (oldCompose === compose && oldEnv === env && running) return { changed: ours };
      if (!ours) {
        // Copies first, the state line last: a state line naming this run means the copies are whole.
        await host.ctMust(vmid, ['sh', '-c', `set -e; mkdir -p ${VLLM_DIR}; install -d -m 0700 ${BEFORE_DIR}; rm -f ${BEFORE_STATE}; ${copyVllmFiles(VLLM_DIR, BEFORE_DIR)}`]);
        const hadFiles = oldCompose !== undefined || oldEnv !== undefined;
        await host.ctWrite(vmid, BEFORE_STATE, formatBefore({ run, running, hadFiles, restored: false }), '0600');
      }
      if (oldEnv !== env) await host.ctWrite(vmid, ENV_FILE, env, '0600');
      if (oldCompose !== compose) await host.ctWrite(vmid, COMPOSE, compose);
      await host.ctMust(vmid, ['docker', 'compose', '-f', COMPOSE, 'up', '-d'], { timeoutMs: 600_000 });
      return { changed: true };
    },

    /**
     * Teardown of a vLLM CT that was there before the first deploy (repurposed, or made by hand): its vLLM
     * service as that deploy found it (the kept copy: the old compose running again, or no vLLM at all), else
     * none. Its .env (the API key) goes with it. Docker stays installed.
     */
    async stopVllmForTeardown(cfg: DeployConfig, vmid: number): Promise<UndoResult> {
      const host = h(cfg);
      if ((await host.ct(vmid, ['true'])).code !== 0) {
        throw permanent(`CT ${vmid} is stopped, so its vLLM service cannot be put back: start it (pct start ${vmid}) and run teardown again`, 'VllmCtStopped');
      }
      const kept = parseBefore(await host.ctRead(vmid, KEPT_STATE));
      if (!kept && (await host.ct(vmid, ['test', '-e', COMPOSE])).code !== 0) return { changed: false, detail: `no vLLM service in CT ${vmid}` };
      if (await vllmRunning(host, vmid, true)) await host.ctMust(vmid, ['docker', 'compose', '-f', COMPOSE, 'down'], { timeoutMs: 300_000 });
      if (kept?.hadFiles) {
        await host.ctMust(vmid, ['sh', '-c', `set -e; ${copyVllmFiles(KEPT_DIR, VLLM_DIR)}`]);
        if (kept.running) await host.ctMust(vmid, ['docker', 'compose', '-f', COMPOSE, 'up', '-d'], { timeoutMs: 600_000 });
      } else {
        await host.ctMust(vmid, ['rm', '-f', COMPOSE, ENV_FILE]);
      }
      await host.ctMust(vmid, ['rm', '-rf', KEPT_DIR, BEFORE_DIR]);
      return {
        changed: true,
        detail: kept?.hadFiles
          ? `vLLM in CT ${vmid} back on the compose file it had before the first deploy${kept.running ? ', started again' : ''}`
          : `vLLM removed from CT ${vmid} (Docker stays installed)`,
      };
    },

    /**
     * Undo of ensureVllmService (the name is kept so that recorded histories replay): puts the service back as
     * this run found it — the previous compose and .env, running again if they were, or no vLLM at all. A
     * failed model switch leaves the old model serving. The workflow registers it before ensureVllmService runs:
     * without a state line of this run, this run changed nothing there, and it does nothing.
     */
    async stopVllmService(cfg: DeployConfig, vmid: number): Promise<UndoResult> {
      const host = h(cfg);
      const before = parseBefore(await host.ctRead(vmid, BEFORE_STATE));
      if (!before || before.run !== thisRun()) return { changed: false, detail: `vLLM in CT ${vmid} not changed by this run` };
      if (before.restored) return { changed: false, detail: `vLLM in CT ${vmid} already as it was` };
      // `docker compose ps` fails without a compose file, so this also covers "no files".
      if (await vllmRunning(host, vmid, true)) await host.ctMust(vmid, ['docker', 'compose', '-f', COMPOSE, 'down']);
      await host.ctMust(vmid, ['sh', '-c', `set -e; ${copyVllmFiles(BEFORE_DIR, VLLM_DIR)}`]);
      if (before.running && before.hadFiles) await host.ctMust(vmid, ['docker', 'compose', '-f', COMPOSE, 'up', '-d'], { timeoutMs: 600_000 });
      await host.ctWrite(vmid, BEFORE_STATE, formatBefore({ ...before, restored: true }), '0600');
      const detail = !before.hadFiles
        ? `vLLM removed from CT ${vmid} (it had none before)`
        : before.running
          ? `vLLM in CT ${vmid} back on its previous compose file, started again`
          : `vLLM in CT ${vmid} stopped, its previous compose file put back`;
      return { changed: true, detail };
    },
  };
}

/** The compose file of the design document, with the model flags; the API key comes from .env, never argv. */
export function composeFile(cfg: DeployConfig, l: VllmLaunch): string {
  const args = [
    '--model', l.model,
    '--served-model-name', l.servedModelName,
    '--max-model-len', String(l.maxModelLen),
    '--gpu-memory-utilization', String(l.gpuMemoryUtilization),
    ...(l.quantization ? ['--quantization', l.quantization] : []),
    ...(l.kvCacheDtype ? ['--kv-cache-dtype', l.kvCacheDtype] : []),
    ...(l.cpuOffloadGb > 0 ? ['--cpu-offload-gb', String(l.cpuOffloadGb)] : []),
    '--host', '0.0.0.0',
    '--port', String(cfg.vllm.port),
  ];
  return [
    'services:',
    '  vllm:',
    `    image: ${cfg.vllm.image}`,
    '    container_name: vllm',
    '    restart: unless-stopped',
    '    runtime: nvidia',
    '    ipc: host',
    '    security_opt:',
    '      - apparmor=unconfined',
    '    environment:',
    '      - NVIDIA_VISIBLE_DEVICES=all',
    '    env_file:',
    '      - .env',
    '    ports:',
    `      - "${cfg.vllm.port}:${cfg.vllm.port}"`,
    '    volumes:',
    '      - /root/.cache/huggingface:/root/.cache/huggingface',
    '    command:',
    ...args.map((a) => `      - ${JSON.stringify(a)}`),
    '',
  ].join('\n');
}


/** Keeps this run's copy of the vLLM service's "before" for a teardown, unless a first deploy's is there already. */
export async function keepVllmBefore(host: Host, vmid: number): Promise<boolean> {
  // One command: only this run's copy (its state line starts with the run id), only if none is kept yet, and the
  // state line last, as for the run's own copy: with it there, the copies are whole.
  const script = `set -e; if [ ! -e ${KEPT_STATE} ] && grep -q "^$1 " ${BEFORE_STATE} 2>/dev/null; then ` +
    `install -d -m 0700 ${KEPT_DIR}; ${copyVllmFiles(BEFORE_DIR, KEPT_DIR)}; cp -p ${BEFORE_STATE} ${KEPT_STATE}; echo kept; fi`;
  const r = await host.ct(vmid, ['sh', '-c', script, 'keep', thisRun()]);
  if (r.code !== 0 && (await host.ct(vmid, ['true'])).code === 0) throw new CommandFailedError(`pct exec ${vmid} -- keep the vLLM service's before`, r);
  return r.stdout.includes('kept');
}

/**
 * Whether the vLLM service has a container that is running (or, with `any`, that exists at all: `--all`, for
 * compose lists only running containers without it, and a start that failed leaves one created or exited).
 */
async function vllmRunning(host: Host, vmid: number, any = false): Promise<boolean> {
  const ps = await host.ct(vmid, ['docker', 'compose', '-f', COMPOSE, 'ps', ...(any ? ['--all'] : []), '--format', 'json']);
  if (ps.code !== 0) return false;
  return any ? ps.stdout.trim() !== '' : /"State":"running"/.test(ps.stdout);
}

interface VllmBefore {
  run: string;
  running: boolean;
  hadFiles: boolean;
  restored: boolean;
}

function formatBefore(b: VllmBefore): string {
  return `${b.run} ${b.running ? 'running' : 'stopped'} ${b.hadFiles ? 'files' : 'none'}${b.restored ? ' restored' : ''}\n`;
}

/** Shell that makes `to` hold exactly the vLLM files `from` has: each copied (mode kept), or removed if absent. */
function copyVllmFiles(from: string, to: string): string {
  return VLLM_FILES.map((f) => `rm -f ${to}/${f}; if [ -e ${from}/${f} ]; then cp -p ${from}/${f} ${to}/${f}; fi`).join('; ');
}

function parseBefore(text: string | undefined): VllmBefore | undefined {
  const m = /^(\S+) (running|stopped) (files|none)( restored)?\n?$/.exec(text ?? '');
  if (!m) return undefined;
  return { run: m[1] as string, running: m[2] === 'running', hadFiles: m[3] === 'files', restored: m[4] !== undefined };
}

/** vLLM reads VLLM_API_KEY itself; HF_TOKEN lets it fetch gated models. Mode 0600 in the CT. */
function envFile(host: Host, cfg: DeployConfig): string {
  const lines = [`VLLM_API_KEY=${host.secret(cfg.vllm.apiKey)}`];
  if (cfg.vllm.hfToken) lines.push(`HF_TOKEN=${host.secret(cfg.vllm.hfToken)}`);
  return `${lines.join('\n')}\n`;
}
