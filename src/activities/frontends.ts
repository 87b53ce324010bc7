// Step 6: ComfyUI loses its GPU and gains an OpenAI-API node pointed at vLLM; OpenWebUI connects to vLLM through
// its persisted config (its env file alone does not take on an initialised instance). Each records how to undo.
import type { DeployConfig } from '../config/schema';
import type { DeploymentRecord, FrontendResult, UndoResult } from './contract';
import { ActivityDeps, DEPLOYMENT_RECORD, Host, permanent, runRecord, savedRecord, thisRunsRecord } from './deps';
import { joinConfigFile, splitConfigFile } from './parse';
import { ctStatus, restartCt, startCt } from './proxmox';

const COMFY_DIR = '/opt/ComfyUI';
const COMFY_UNIT = '/etc/systemd/system/comfyui.service';
const COMFY_DROPIN = '/etc/systemd/system/comfyui.service.d/pve-vllm-cpu.conf';
const COMFY_NODE_REPO = 'https://github.com/hekmon/comfyui-openai-api';
const COMFY_NODE_DIR = `${COMFY_DIR}/custom_nodes/comfyui-openai-api`;
const COMFY_TEMPLATE = `${COMFY_DIR}/user/default/workflows/pve-vllm-chat.json`;
/** where the previous OpenWebUI connection settings are kept, inside its own CT (they may hold keys) */
const OWUI_STASH = '/root/.pve-vllm-openwebui-openai-config.json';
/** what ComfyUI's files were before a run's first change to them, inside its own CT */
const COMFY_BEFORE = '/root/.pve-vllm-comfyui-before.json';
/**
 * On the host (readable while the CT is down): whether ComfyUI's CT ran when a run began taking its GPU, so that a
 * retry and the undo know it even after a restart cut short; and, kept from run to run until a teardown, whether
 * a run took its GPU lines while it was stopped and so still owes it --cpu.
 */
export const COMFY_RELEASE = '/root/.pve-vllm-comfyui-release.json';

interface ComfyRelease {
  wasRunning: boolean;
  cpuOwed?: boolean;
}

/**
 * A frontend's "before", saved in its CT at a run's first change there and tagged with that run: the undo of a
 * failed run restores only its own, so what an earlier successful run set up stays. `config` is OpenWebUI's
 * connection settings; `files` ComfyUI's pve-vllm files (null: absent) and `node`, whether its LLM node was there.
 */
export interface FrontendBefore {
  config?: Record<string, unknown>;
  files?: Record<string, string | null>;
  node?: boolean;
}

/** ComfyUI's GPU passthrough lines: the NVIDIA and DRI device majors and their bind mounts. */
const gpuLine = ([k, v]: [string, string]): boolean =>
  (k === 'lxc.cgroup2.devices.allow' && /^c (195|226|50\d|51\d|23\d):/.test(v)) || (k === 'lxc.mount.entry' && /\/dev\/(nvidia|dri)/.test(v));
/** …and PVE's own `devN: /dev/nvidia0,gid=44` entries, which community-scripts write (`configure_gpu_passthrough`). */
const gpuDevice = ([k, v]: [string, string]): boolean => /^dev\d+$/.test(k) && /^(path=)?\/dev\/(nvidia|dri)/.test(v);

/** A CT config without its GPU passthrough, in both forms. */
function withoutGpu(parts: ReturnType<typeof splitConfigFile>): ReturnType<typeof splitConfigFile> {
  return { ...parts, options: parts.options.filter((o) => !gpuDevice(o)), lxc: parts.lxc.filter((l) => !gpuLine(l)) };
}

export function hasGpuPassthrough(raw: string): boolean {
  const parts = splitConfigFile(raw);
  return joinConfigFile(withoutGpu(parts)) !== joinConfigFile(parts);
}

export function frontendUrl(cfg: DeployConfig, f: 'openwebui' | 'comfyui'): string | undefined {
  return cfg.guests[f]?.url?.replace(/\/$/, '');
}

/** OpenWebUI's admin API key (Settings > Account > API keys), needed to change its persisted connections. */
export function openwebuiKey(host: Host, cfg: DeployConfig): string {
  const ref = (cfg.guests.openwebui as { apiKey?: { env: string } | { file: string } } | undefined)?.apiKey;
  if (!ref) {
    throw permanent(
      'guests.openwebui.apiKey is not set: OpenWebUI keeps its OpenAI connections in its database, so pve-vllm changes them ' +
        'through its admin API. Create an API key as an admin (Settings > Account > API keys) and reference it as { env: NAME } or { file: PATH }.',
      'OpenwebuiKeyMissing',
    );
  }
  return host.secret(ref);
}

/** A call to OpenWebUI's API with the admin key: 401/403 are permanent (a wrong key does not heal by retrying). */
export async function owuiApi(deps: ActivityDeps, host: Host, cfg: DeployConfig, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await deps.fetch(`${frontendUrl(cfg, 'openwebui')}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { Authorization: `Bearer ${openwebuiKey(host, cfg)}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  if (res.status === 401 || res.status === 403) throw permanent(`OpenWebUI refused the admin API key (${res.status}) on ${path}`, 'OpenwebuiAuthFailed');
  // Not the body: OpenWebUI's 422 echoes the request, and these requests carry API keys (a failure reaches history).
  if (res.status !== 200) throw new Error(`OpenWebUI ${path} -> ${res.status} ${res.statusText}`.trimEnd());
  return JSON.parse(text) as Record<string, unknown>;
}

export function createFrontendActivities(deps: ActivityDeps) {
  const h = (cfg: DeployConfig) => new Host(deps, cfg);

  async function resize(host: Host, vmid: number, reduceTo: { cores: number; memoryMiB: number } | undefined): Promise<boolean> {
    if (!reduceTo) return false;
    const conf = (await host.api().get(`/nodes/${host.node}/lxc/${vmid}/config`)) as Record<string, unknown> & { digest: string };
    const update: Record<string, number> = {};
    if (Number(conf.cores) !== reduceTo.cores) update.cores = reduceTo.cores;
    if (Number(conf.memory) !== reduceTo.memoryMiB) update.memory = reduceTo.memoryMiB;
    if (Object.keys(update).length === 0) return false;
    await host.api().put(`/nodes/${host.node}/lxc/${vmid}/config`, { ...update, digest: conf.digest });
    return true;
  }

  async function comfyHasNode(cfg: DeployConfig): Promise<boolean> {
    try {
      const res = await deps.fetch(`${frontendUrl(cfg, 'comfyui')}/object_info/OAIAPIClient`, { signal: AbortSignal.timeout(5000) });
      return res.status === 200 && 'OAIAPIClient' in ((await res.json()) as object);
    } catch {
      return false;
    }
  }

  /** Saves ComfyUI's pve-vllm files as they are, once per run, before that run's first change to them. */
  function comfyBeforeSaver(host: Host, vmid: number, recordRaw: string): () => Promise<void> {
    let saved = thisRunsRecord<FrontendBefore>(recordRaw) !== undefined;
    return async () => {
      if (saved) return;
      const files: Record<string, string | null> = {};
      for (const path of [COMFY_DROPIN, COMFY_TEMPLATE]) files[path] = (await host.ctRead(vmid, path)) ?? null;
      const node = (await host.ct(vmid, ['test', '-d', COMFY_NODE_DIR])).code === 0;
      await host.ctWrite(vmid, COMFY_BEFORE, runRecord({ files, node } satisfies FrontendBefore), '0600');
      saved = true;
    };
  }

  /** Without its GPU, ComfyUI's CUDA torch must be told --cpu: a drop-in on its unit. True when it was written. */
  async function ensureCpuDropin(host: Host, vmid: number, saveBefore: () => Promise<void>): Promise<boolean> {
    const unit = (await host.ctRead(vmid, COMFY_UNIT)) ?? '';
    const execStart = /^ExecStart=(.+)$/m.exec(unit)?.[1];
    if (!execStart) throw permanent(`CT ${vmid}: ${COMFY_UNIT} has no ExecStart; is ComfyUI installed as comfyui.service?`, 'ComfyuiLayoutUnknown');
    const dropin = `[Service]\nExecStart=\nExecStart=${execStart.includes('--cpu') ? execStart : `${execStart} --cpu`}\n`;
    if ((await host.ctRead(vmid, COMFY_DROPIN)) === dropin) return false;
    await saveBefore();
    await host.ctMust(vmid, ['mkdir', '-p', `${COMFY_UNIT}.d`]);
    await host.ctWrite(vmid, COMFY_DROPIN, dropin);
    await host.ctMust(vmid, ['systemctl', 'daemon-reload']);
    return true;
  }

  return {
    async ensureOpenwebuiOnVllm(cfg: DeployConfig, _servedModelName: string): Promise<FrontendResult> {
      const host = h(cfg);
      const g = cfg.guests.openwebui;
      if (!g) throw permanent('guests.openwebui is not in the config', 'FrontendMissing');
      let changed = await resize(host, g.id, g.reduceTo);
      const current = await owuiApi(deps, host, cfg, '/openai/config');
      const url = `${cfg.guests.vllm.endpoint}/v1`;
      const urls = (current.OPENAI_API_BASE_URLS as string[] | undefined) ?? [];
      const keys = (current.OPENAI_API_KEYS as string[] | undefined) ?? [];
      const key = host.secret(cfg.vllm.apiKey);
      const at = urls.indexOf(url);
      if (!(current.ENABLE_OPENAI_API === true && at >= 0 && keys[at] === key)) {
        // This run's first change here saves what it changes; a retry keeps the first attempt's copy.
        if (!thisRunsRecord<FrontendBefore>(await host.ctRead(g.id, OWUI_STASH))) {
          await host.ctWrite(g.id, OWUI_STASH, runRecord({ config: current } satisfies FrontendBefore), '0600');
        }
        const nextUrls = at >= 0 ? urls : [...urls, url];
        const nextKeys = nextUrls.map((u, i) => (u === url ? key : keys[i] ?? ''));
        await owuiApi(deps, host, cfg, '/openai/config/update', { ...current, ENABLE_OPENAI_API: true, OPENAI_API_BASE_URLS: nextUrls, OPENAI_API_KEYS: nextKeys });
        changed = true;
      }
      // Whether OpenWebUI lists the model is checked at checkpoint 5: this runs beside the image pull, before vLLM serves.
      return { changed, frontend: 'openwebui' };
    },

    async ensureComfyuiOnVllm(cfg: DeployConfig, servedModelName: string): Promise<FrontendResult> {
      const host = h(cfg);
      const g = cfg.guests.comfyui;
      if (!g) throw permanent('guests.comfyui is not in the config', 'FrontendMissing');
      const conf = `/etc/pve/lxc/${g.id}.conf`;
      const beforeRaw = (await host.read(conf)) ?? '';
      let changed = false;
      // 1. GPU passthrough out (raw lxc lines are root-only: edit the file), CPU/RAM down; applies on restart.
      const parts = withoutGpu(splitConfigFile(beforeRaw));
      const options = parts.options.map(([k, v]): [string, string] =>
        k === 'cores' && g.reduceTo ? [k, String(g.reduceTo.cores)] : k === 'memory' && g.reduceTo ? [k, String(g.reduceTo.memoryMiB)] : [k, v],
      );
      const raw = joinConfigFile({ ...parts, options });
      const saveBefore = comfyBeforeSaver(host, g.id, (await host.ctRead(g.id, COMFY_BEFORE)) ?? '');
      if (raw !== beforeRaw) {
        await saveBefore();
        await host.write(conf, raw, '0640');
        await restartCt(host, g.id);
        changed = true;
      }
      // 2. CPU-only: without its GPU, ComfyUI's CUDA torch must be told --cpu.
      let restart = false;
      if (await ensureCpuDropin(host, g.id, saveBefore)) restart = changed = true;
      // 3. The OpenAI-compatible LLM node (its only dependency is the openai client), and a ready-made chat
      //    workflow pointed at vLLM.
      if ((await host.ct(g.id, ['test', '-d', COMFY_NODE_DIR])).code !== 0) {
        await saveBefore();
        await host.ctMust(g.id, ['git', 'clone', '--depth', '1', COMFY_NODE_REPO, COMFY_NODE_DIR], { timeoutMs: 600_000 });
        changed = true;
      }
      if ((await host.ct(g.id, ['test', '-f', `${COMFY_NODE_DIR}/.pve-vllm-deps`])).code !== 0) {
        await saveBefore();
        await host.ctMust(g.id, ['uv', 'pip', 'install', '--python', `${COMFY_DIR}/venv/bin/python`, 'openai'], { timeoutMs: 900_000 });
        await host.ctMust(g.id, ['touch', `${COMFY_NODE_DIR}/.pve-vllm-deps`]);
        changed = true;
      }
      const template = `${JSON.stringify(comfyTemplate(`${cfg.guests.vllm.endpoint}/v1`, servedModelName), null, 2)}\n`;
      if ((await host.ctRead(g.id, COMFY_TEMPLATE)) !== template) {
        await saveBefore();
        await host.ctMust(g.id, ['mkdir', '-p', `${COMFY_DIR}/user/default/workflows`]);
        await host.ctWrite(g.id, COMFY_TEMPLATE, template);
        changed = true;
      }
      // Read back from ComfyUI itself: a restart lost to a retry must still happen.
      if (restart || !(await comfyHasNode(cfg))) {
        await host.ctMust(g.id, ['systemctl', 'restart', 'comfyui']);
        changed = true;
        for (let i = 0; i < 120 && !(await comfyHasNode(cfg)); i++) await new Promise((r) => setTimeout(r, 500));
        if (!(await comfyHasNode(cfg))) throw new Error('ComfyUI does not list OAIAPIClient after its restart');
      }
      return { changed, frontend: 'comfyui', beforeRaw };
    },

    /**
     * ComfyUI when it is not the frontend: the design's step 6 still takes its GPU away, since vLLM claims most of
     * the card's memory and a ComfyUI that loads a model beside it would starve it (or stop it starting after a
     * reboot). Only the NVIDIA passthrough and --cpu: its size, nodes and workflows stay as they are. A stopped CT
     * loses its GPU lines (its config is a host file) but cannot be given --cpu (its files cannot be written): the
     * result says so, and a re-run once it runs finishes the job.
     */
    async releaseComfyuiGpu(cfg: DeployConfig): Promise<FrontendResult & { detail: string }> {
      const host = h(cfg);
      const g = cfg.guests.comfyui;
      if (!g) return { changed: false, frontend: 'comfyui', detail: 'no ComfyUI in the config' };
      const conf = `/etc/pve/lxc/${g.id}.conf`;
      const beforeRaw = await host.read(conf);
      if (beforeRaw === undefined) return { changed: false, frontend: 'comfyui', detail: `CT ${g.id} does not exist` };
      const without = joinConfigFile(withoutGpu(splitConfigFile(beforeRaw)));
      const hasGpu = hasGpuPassthrough(beforeRaw);
      const releaseRaw = await host.read(COMFY_RELEASE);
      // This run's record wins over the CT's state now: an attempt may have stopped it and not lived to start it.
      const ours = thisRunsRecord<ComfyRelease>(releaseRaw);
      const cpuOwed = savedRecord<ComfyRelease>(releaseRaw)?.cpuOwed === true;
      const running = (await ctStatus(host, g.id)) === 'running';
      const wasRunning = ours ? ours.wasRunning : running;
      const noteRelease = async (r: ComfyRelease): Promise<void> => {
        if (!ours) await host.write(COMFY_RELEASE, runRecord(r), '0600');
      };
      if (!wasRunning) {
        const then = `start it (pct start ${g.id}) and run deploy again, so that ComfyUI runs with --cpu`;
        if (hasGpu) {
          await noteRelease({ wasRunning: false, cpuOwed: true });
          await host.write(conf, without, '0640');
        } else if (!ours) {
          return { changed: false, frontend: 'comfyui', beforeRaw, detail: cpuOwed ? `CT ${g.id} is stopped, its GPU passthrough removed by an earlier deploy; ${then}` : `CT ${g.id} is stopped and has no GPU passthrough` };
        }
        return { changed: true, frontend: 'comfyui', beforeRaw, detail: `CT ${g.id} is stopped: its GPU passthrough is removed from its config; ${then}` };
      }
      if (!running) await startCt(host, g.id); // this run stopped it to restart it, and did not get to start it
      const recordRaw = (await host.ctRead(g.id, COMFY_BEFORE)) ?? '';
      // This run's record in the CT: a retry finds the GPU lines gone and must still finish what the first attempt
      // began. A deploy that found the CT stopped took its GPU lines and left --cpu owed.
      const oursInCt = thisRunsRecord<FrontendBefore>(recordRaw) !== undefined;
      if (!hasGpu && !oursInCt && !cpuOwed) return { changed: false, frontend: 'comfyui', beforeRaw, detail: `CT ${g.id} has no GPU passthrough` };
      await noteRelease({ wasRunning: true, ...(cpuOwed ? { cpuOwed } : {}) });
      const saveBefore = comfyBeforeSaver(host, g.id, recordRaw);
      let changed = await ensureCpuDropin(host, g.id, saveBefore);
      if (hasGpu) {
        await saveBefore();
        await host.write(conf, without, '0640');
        changed = true;
      }
      // Applies on restart; read back from the CT, so a restart lost to a retry still happens.
      if (changed || (await host.ct(g.id, ['test', '-e', '/dev/nvidia0'])).code === 0) {
        await restartCt(host, g.id);
        changed = true;
      }
      return { changed, frontend: 'comfyui', beforeRaw, detail: changed ? `CT ${g.id}: GPU passthrough removed, ComfyUI on --cpu` : `CT ${g.id} already without its GPU` };
    },

    async restoreFrontend(cfg: DeployConfig, result: FrontendResult): Promise<UndoResult> {
      const host = h(cfg);
      const g = cfg.guests[result.frontend];
      if (!g) return { changed: false, detail: `no ${result.frontend} in the config` };
      // Only what this run saved before its own first change: an earlier run's setup is not this run's to undo.
      const path = runBeforePath(result.frontend);
      // A ComfyUI this run found stopped stays so; the CT's state now may be a restart cut short.
      const wasStopped = result.frontend === 'comfyui' && thisRunsRecord<ComfyRelease>(await host.read(COMFY_RELEASE))?.wasRunning === false;
      return restoreFrontendFrom(host, cfg, result.frontend, thisRunsRecord<FrontendBefore>(await host.ctRead(g.id, path)), path, result.beforeRaw, wasStopped);
    },

    /** Teardown: a frontend as it was before pve-vllm's first deploy changed it (kept by recordDeployment). */
    async tearDownFrontend(cfg: DeployConfig, frontend: 'openwebui' | 'comfyui', confBefore: string | undefined): Promise<UndoResult> {
      const host = h(cfg);
      const g = cfg.guests[frontend];
      if (!g) return { changed: false, detail: `no ${frontend} in the config` };
      const confNow = await host.read(`/etc/pve/lxc/${g.id}.conf`);
      if (confNow === undefined) return { changed: false, detail: `CT ${g.id} is gone (scrapped: its vzdump backup restores it)` };
      if ((await host.ct(g.id, ['true'])).code !== 0) {
        // Stopped: what the deploy changed inside it cannot be read or put back. A CT left as it was (stopped all
        // along, say) has nothing to put back; one whose insides no deploy changed (stopped when its GPU lines
        // went) needs only its config, and stays stopped.
        if (confBefore === undefined || confBefore === confNow) return { changed: false, detail: `CT ${g.id} is stopped, its config as before` };
        const inside = savedRecord<DeploymentRecord>(await host.read(DEPLOYMENT_RECORD))?.changedInside;
        if (inside && !inside.includes(g.id)) {
          await host.write(`/etc/pve/lxc/${g.id}.conf`, confBefore, '0640');
          return { changed: true, detail: `CT ${g.id} config restored (stopped; nothing inside it was changed)` };
        }
        throw permanent(`CT ${g.id} (${frontend}) is stopped, so what the deploy changed inside it cannot be put back: start it (pct start ${g.id}) and run teardown again`, 'FrontendStopped');
      }
      const kept = deployBeforePath(frontend);
      const undone = await restoreFrontendFrom(host, cfg, frontend, savedRecord<FrontendBefore>(await host.ctRead(g.id, kept)), kept, confBefore);
      // The runs' own records go too: a later deploy starts from the host as it now is.
      await host.ctMust(g.id, ['rm', '-f', runBeforePath(frontend)]);
      return undone;
    },
  };

  /** Puts back a frontend's files and connections from a saved "before" (then removes it), and its CT config. */
  async function restoreFrontendFrom(host: Host, cfg: DeployConfig, frontend: 'openwebui' | 'comfyui', before: FrontendBefore | undefined, recordPath: string, beforeRaw: string | undefined, wasStopped = false): Promise<UndoResult> {
    const g = cfg.guests[frontend];
    if (!g) return { changed: false, detail: `no ${frontend} in the config` };
    const done: string[] = [];
    if (frontend === 'comfyui') {
      if (before) {
        for (const [path, was] of Object.entries(before.files ?? {})) {
          const now = await host.ctRead(g.id, path);
          if (now === was || (now === undefined && was === null)) continue;
          if (was === null) {
            await host.ctMust(g.id, ['rm', '-f', path]);
            done.push(`removed ${path}`);
          } else {
            await host.ctWrite(g.id, path, was);
            done.push(`${path} as before`);
          }
        }
        if (!before.node && (await host.ct(g.id, ['test', '-d', COMFY_NODE_DIR])).code === 0) {
          await host.ctMust(g.id, ['rm', '-rf', COMFY_NODE_DIR]);
          done.push('removed the OpenAI API node');
        }
        await host.ctMust(g.id, ['rm', '-f', recordPath]);
        if (done.length) await host.ctMust(g.id, ['systemctl', 'daemon-reload']);
      }
    } else if (before?.config) {
      await owuiApi(deps, host, cfg, '/openai/config/update', before.config);
      await host.ctMust(g.id, ['rm', '-f', recordPath]);
      done.push('OpenAI connections restored');
    }
    const conf = `/etc/pve/lxc/${g.id}.conf`;
    if (beforeRaw !== undefined && (await host.read(conf)) !== beforeRaw) {
      await host.write(conf, beforeRaw, '0640');
      if (wasStopped && (await ctStatus(host, g.id)) !== 'running') {
        done.push(`CT ${g.id} config restored (left stopped, as it was)`);
      } else {
        await restartCt(host, g.id);
        done.push(`CT ${g.id} config restored and restarted`);
      }
    } else if (done.length && frontend === 'comfyui') {
      await host.ctMust(g.id, ['systemctl', 'restart', 'comfyui']);
    }
    return { changed: done.length > 0, detail: done.length ? done.join('; ') : `${frontend} already as before` };
  }
}

/** Where a run saves a frontend's "before", in its CT (OpenWebUI's connections; ComfyUI's files). */
export function runBeforePath(frontend: 'openwebui' | 'comfyui'): string {
  return frontend === 'comfyui' ? COMFY_BEFORE : OWUI_STASH;
}

/** Where a frontend's "before" of pve-vllm's first deploy is kept in its CT, for a teardown. */
export function deployBeforePath(frontend: 'openwebui' | 'comfyui'): string {
  return frontend === 'comfyui' ? '/root/.pve-vllm-comfyui-before-deploy.json' : '/root/.pve-vllm-openwebui-before-deploy.json';
}

/** The chat workflow saved in ComfyUI for the user; the API key is entered in the UI, never stored here. */
function comfyTemplate(baseUrl: string, model: string): Record<string, unknown> {
  return {
    '1': { class_type: 'OAIAPIClient', inputs: { base_url: baseUrl, api_key: '', max_retries: 2, timeout: 600 } },
    '2': { class_type: 'OAIAPI_ChatCompletion', inputs: { client: ['1', 0], model, prompt: 'Hello from ComfyUI' } },
    '3': { class_type: 'PreviewAny', inputs: { source: ['2', 0] } },
  };
}
