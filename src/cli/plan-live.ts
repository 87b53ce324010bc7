// `pve-vllm plan --live`: what the host has now, read over SSH and the API (no Temporal, nothing written), each
// fact with what the deploy would do about it under this config's decisions. Terraform's plan reads the real
// state before it says what will change; so does this. The reads are the deploy's own read-only steps
// (inspectHost, assessOpenwebui, readDeploymentRecord) and a few of its own; secrets are resolved here, in the
// CLI's process.
import type { DeployConfig } from '../config/schema';
import { createActivityDeps, type ActivityDeps, Host } from '../activities/deps';
import { hasGpuPassthrough } from '../activities/frontends';
import { BOOT_UNIT_NAME, NOUVEAU_BLACKLIST, NOUVEAU_BLACKLIST_TEXT, createHostActivities } from '../activities/host';
import { createProbeActivities } from '../activities/probes';
import { ctStatus, vllmCtUpdate } from '../activities/proxmox';
import { createTeardownActivities } from '../activities/teardown';
import { repurposedEndpoint } from '../workflows/endpoints';

export interface LiveLine {
  what: string;
  /** what the host has now */
  now: string;
  /** what the deploy would do about it ('' for a fact alone) */
  then: string;
}

/** The whole read may take this long: a command or a host that hangs does not hang `plan`. */
export const LIVE_DEADLINE_MS = 60_000;

/** Reads the host; throws (with the adapters' own message) when it cannot be read or is not what the config says. */
export async function readHostNow(cfg: DeployConfig, deps: ActivityDeps = createActivityDeps()): Promise<LiveLine[]> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the host did not answer within ${LIVE_DEADLINE_MS / 1000} s`)), LIVE_DEADLINE_MS);
  });
  try {
    return await Promise.race([read(cfg, deps), deadline]);
  } finally {
    clearTimeout(timer);
    await deps.ssh.close();
  }
}

async function read(cfg: DeployConfig, deps: ActivityDeps): Promise<LiveLine[]> {
  const host = new Host(deps, cfg);
  const g = cfg.guests;
  const d = cfg.decisions;
  // Every read below goes through sudo when the SSH user is not root: without it they would all "fail" quietly
  // and the host would look empty.
  const asUser = await host.run(['true']);
  if (asUser.code !== 0) {
    const why = (asUser.stderr || asUser.stdout).trim().split('\n').pop() ?? `exit ${asUser.code}`;
    throw new Error(`the SSH user ${cfg.proxmox.ssh.user} is not root and cannot use sudo without a password (${why}): pve-vllm needs root, or passwordless sudo`);
  }
  const facts = await createHostActivities(deps).inspectHost(cfg);
  const lines: LiveLine[] = [{ what: 'node', now: `${facts.nodeName}, PVE ${facts.pveVersion}`, then: '' }];
  const gpu = facts.gpu;
  lines.push({ what: `GPU ${gpu.bdf}`, now: `${gpu.name}, driver ${gpu.driver ?? 'none'}`, then: gpu.driver === 'nvidia' ? 'stays on nvidia' : `${gpu.driver ?? 'none'} -> nvidia` });

  // Step 5 shuts VM 151 down and sets onboot 0 whether or not it names the card: it is the VM the card is taken from.
  const vmConf = (await host.api().get(`/nodes/${host.node}/qemu/${g.vm.id}/config`)) as Record<string, unknown>;
  const vmRunning = ((await host.api().get(`/nodes/${host.node}/qemu/${g.vm.id}/status/current`)) as { status: string }).status === 'running';
  const onboot = Number(vmConf.onboot ?? 0) === 1;
  const vmThen = [vmRunning ? 'shut down' : '', onboot ? 'onboot 0' : ''].filter(Boolean).join(', ');
  lines.push({
    what: `VM ${g.vm.id}`,
    now: `${facts.gpuHolder ? 'passes the card through' : 'does not pass the card through'}; ${vmRunning ? 'running' : 'stopped'}, onboot ${onboot ? 1 : 0}`,
    then: vmThen ? `${vmThen} (given back on undo or teardown)` : 'left stopped',
  });

  const driver = facts.hostDriverVersion ? `${facts.hostDriverVersion} loaded` : facts.hostDriverPackageVersion ? `${facts.hostDriverPackageVersion} installed, not loaded` : 'not installed';
  lines.push({
    what: 'host NVIDIA driver',
    now: driver,
    then: facts.hostDriverVersion ? 'used as is' : facts.hostDriverPackageVersion ? 'loaded' : 'missing: step 5 loads it and fails without it; install it on the host first',
  });
  const blacklisted = (await host.read(NOUVEAU_BLACKLIST)) === NOUVEAU_BLACKLIST_TEXT;
  const nouveauThen = [facts.nouveauLoaded ? 'unloaded' : '', blacklisted ? '' : `${NOUVEAU_BLACKLIST} written, initramfs updated`].filter(Boolean).join('; ');
  lines.push({ what: 'nouveau', now: `${facts.nouveauLoaded ? 'loaded' : 'not loaded'}, ${blacklisted ? 'blacklisted' : 'not blacklisted'}`, then: nouveauThen || 'as is' });
  const unit = (await host.run(['systemctl', 'is-enabled', BOOT_UNIT_NAME])).stdout.trim();
  lines.push({ what: BOOT_UNIT_NAME, now: unit || 'absent', then: unit === 'enabled' ? 'checked, rewritten if it differs' : 'written and enabled' });
  lines.push({ what: `user ${cfg.admin.user}`, now: facts.adminUserExists ? 'exists' : 'absent', then: facts.adminUserExists ? 'its key and sudoers checked' : 'created' });

  // Where vLLM goes: CT 117, or OpenWebUI's CT when it is repurposed (decided now, or at step 4).
  const repurpose = d.openwebui === 'repurpose';
  let reuse = 'created';
  if (facts.vllmCtExists) {
    // The same comparison step 5 makes before it changes a CT that is already there.
    const current = (await host.api().get(`/nodes/${host.node}/lxc/${g.vllm.id}/config`)) as Record<string, unknown>;
    const update = Object.entries(vllmCtUpdate(cfg, current)).map(([k, v]) => `${k} ${String(current[k] ?? 'unset')} -> ${v}`);
    reuse = `reused: ${update.length ? update.join(', ') : 'cores, memory and nesting as asked'}; GPU passthrough and vLLM set to this config`;
  }
  lines.push({
    what: `CT ${g.vllm.id} (vLLM)`,
    now: facts.vllmCtExists ? 'exists' : 'absent',
    then: repurpose ? `not used: vLLM goes into OpenWebUI's CT ${g.openwebui?.id ?? ''} (repurpose)` : `${reuse}${d.openwebui ? '' : ", unless OpenWebUI's CT is repurposed at step 4"}`,
  });
  const endpoint = repurpose ? repurposedEndpoint(cfg) : g.vllm.endpoint;
  const ctThere = repurpose ? true : facts.vllmCtExists;
  lines.push({ what: 'vLLM', now: ctThere ? await servedModels(deps, host, cfg, endpoint) : 'no vLLM CT yet', then: `serves ${cfg.model.id}${endpoint ? ` at ${endpoint}` : ''}` });

  if (g.openwebui) {
    const a = await createProbeActivities(deps).assessOpenwebui(cfg);
    const then = {
      keep: `kept as a chat frontend${g.openwebui.reduceTo ? `, shrunk to ${g.openwebui.reduceTo.cores} cores / ${g.openwebui.reduceTo.memoryMiB} MiB` : ''} if chosen at step 6, connected to vLLM`,
      scrap: 'scrapped: vzdump backup, then destroyed, after checkpoint 6',
      repurpose: 'repurposed: vLLM runs in it',
    };
    lines.push({ what: `CT ${g.openwebui.id} (OpenWebUI)`, now: a.reasons.slice(0, 3).join('; '), then: d.openwebui ? then[d.openwebui] : `asked at step 4 (recommended: ${a.recommendation})` });
  }
  if (g.comfyui) lines.push(await comfyuiLine(host, cfg));

  const record = await createTeardownActivities(deps).readDeploymentRecord(cfg);
  lines.push(
    record
      ? { what: 'deployment record', now: `kept by run ${record.run}: pve-vllm deployed here before`, then: 'kept (teardown returns to the host before that first deploy)' }
      : { what: 'deployment record', now: 'none: a first deploy', then: 'written after checkpoint 6' },
  );
  return lines;
}

/** ComfyUI loses its GPU whichever frontend is chosen; as the frontend it also gets the LLM node (and must run). */
async function comfyuiLine(host: Host, cfg: DeployConfig): Promise<LiveLine> {
  const c = cfg.guests.comfyui as NonNullable<DeployConfig['guests']['comfyui']>;
  const what = `CT ${c.id} (ComfyUI)`;
  const raw = await host.read(`/etc/pve/lxc/${c.id}.conf`);
  if (raw === undefined) return { what, now: 'absent', then: 'nothing to do (and it cannot be the frontend)' };
  const running = (await ctStatus(host, c.id)) === 'running';
  const gpu = hasGpuPassthrough(raw);
  const now = `${running ? 'running' : 'stopped'}, ${gpu ? 'with' : 'without'} GPU passthrough`;
  const released = !gpu ? 'its GPU left as is' : running ? 'GPU passthrough removed, --cpu' : 'GPU passthrough removed, stays stopped; --cpu on a re-run once it runs';
  const frontend = `the frontend: GPU passthrough removed, --cpu${c.reduceTo ? `, ${c.reduceTo.cores} cores / ${c.reduceTo.memoryMiB} MiB` : ''}, LLM node and chat workflow${running ? '' : ' (it must be running: start it first)'}`;
  const f = cfg.decisions.frontend;
  const then = f === 'openwebui' ? released : f ? frontend : `if chosen at step 6, ${frontend}; if not, ${released}`;
  return { what, now, then };
}

/** What vLLM serves now, asked with its API key (never printed; a key that cannot be read fails the plan, as it would the deploy). */
async function servedModels(deps: ActivityDeps, host: Host, cfg: DeployConfig, endpoint: string | undefined): Promise<string> {
  if (!endpoint) return 'no endpoint in the config';
  const key = host.secret(cfg.vllm.apiKey);
  try {
    const res = await deps.fetch(`${endpoint}/v1/models`, { headers: { Authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return `${endpoint} answers ${res.status}`;
    const ids = ((await res.json()) as { data?: Array<{ id: string }> }).data?.map((m) => m.id) ?? [];
    return ids.length ? `serves ${ids.join(', ')}` : 'serves no model';
  } catch {
    return `nothing answers at ${endpoint}`;
  }
}
