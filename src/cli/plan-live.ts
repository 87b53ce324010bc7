// `pve-vllm plan --live`: what the host has now, read over SSH and the API with the deploy's own read-only
// activities (no Temporal, nothing written), each with what the deploy would do about it. Terraform's plan reads
// the real state before it says what will change; so does this.
import type { DeployConfig } from '../config/schema';
import { createActivityDeps, type ActivityDeps, Host } from '../activities/deps';
import { hasGpuPassthrough } from '../activities/frontends';
import { BOOT_UNIT_NAME, createHostActivities } from '../activities/host';
import { createProbeActivities } from '../activities/probes';
import { createTeardownActivities } from '../activities/teardown';

export interface LiveLine {
  what: string;
  /** what the host has now */
  now: string;
  /** what the deploy would do about it ('' for a fact alone) */
  then: string;
}

/** Reads the host; throws (with the activity's own message) when it cannot be reached or is not what the config says. */
export async function readHostNow(cfg: DeployConfig, deps: ActivityDeps = createActivityDeps()): Promise<LiveLine[]> {
  try {
    return await read(cfg, deps);
  } finally {
    await deps.ssh.close();
  }
}

async function read(cfg: DeployConfig, deps: ActivityDeps): Promise<LiveLine[]> {
  const host = new Host(deps, cfg);
  const g = cfg.guests;
  const facts = await createHostActivities(deps).inspectHost(cfg);
  const lines: LiveLine[] = [{ what: 'node', now: `${facts.nodeName}, PVE ${facts.pveVersion}`, then: '' }];
  const gpu = facts.gpu;
  lines.push({ what: `GPU ${gpu.bdf}`, now: `${gpu.name}, driver ${gpu.driver ?? 'none'}`, then: gpu.driver === 'nvidia' ? 'stays on nvidia' : `${gpu.driver ?? 'none'} -> nvidia` });
  const holder = facts.gpuHolder;
  lines.push(
    holder
      ? { what: `VM ${holder.vmid}`, now: `passes the card through; ${holder.status}, onboot ${holder.onboot ? 1 : 0}`, then: holder.status === 'running' || holder.onboot ? 'shut down, onboot 0 (given back on undo or teardown)' : 'left stopped' }
      : { what: `VM ${g.vm.id}`, now: 'does not pass the card through', then: 'left alone' },
  );
  const driver = facts.hostDriverVersion ? `${facts.hostDriverVersion} loaded` : facts.hostDriverPackageVersion ? `${facts.hostDriverPackageVersion} installed, not loaded` : 'not installed';
  lines.push({
    what: 'host NVIDIA driver',
    now: driver,
    then: facts.hostDriverVersion ? 'used as is' : facts.hostDriverPackageVersion ? 'loaded' : 'missing: step 5 loads it and fails without it; install it on the host first',
  });
  if (facts.nouveauLoaded) lines.push({ what: 'nouveau', now: 'loaded', then: 'unloaded and blacklisted' });
  const unit = (await host.run(['systemctl', 'is-enabled', BOOT_UNIT_NAME])).stdout.trim();
  lines.push({ what: BOOT_UNIT_NAME, now: unit || 'absent', then: unit === 'enabled' ? 'checked' : 'written and enabled' });
  lines.push({ what: `user ${cfg.admin.user}`, now: facts.adminUserExists ? 'exists' : 'absent', then: facts.adminUserExists ? 'its key and sudoers checked' : 'created' });
  lines.push({ what: `CT ${g.vllm.id} (vLLM)`, now: facts.vllmCtExists ? 'exists' : 'absent', then: facts.vllmCtExists ? 'reconciled: its config checked, vLLM set to this model' : 'created' });
  lines.push({ what: 'vLLM', now: await servedModels(deps, host, cfg), then: `serves ${cfg.model.id}` });
  if (g.openwebui) {
    const a = await createProbeActivities(deps).assessOpenwebui(cfg);
    const choice = cfg.decisions.openwebui;
    lines.push({ what: `CT ${g.openwebui.id} (OpenWebUI)`, now: a.reasons.slice(0, 3).join('; '), then: `recommended ${a.recommendation}; ${choice ? `the config decides ${choice}` : 'asked at step 4'}` });
  }
  if (g.comfyui) {
    const raw = await host.read(`/etc/pve/lxc/${g.comfyui.id}.conf`);
    const status = raw === undefined ? 'absent' : (((await host.api().get(`/nodes/${host.node}/lxc/${g.comfyui.id}/status/current`)) as { status: string }).status);
    const gpuLines = raw !== undefined && hasGpuPassthrough(raw);
    lines.push({
      what: `CT ${g.comfyui.id} (ComfyUI)`,
      now: raw === undefined ? 'absent' : `${status}, ${gpuLines ? 'with' : 'without'} GPU passthrough`,
      then: !gpuLines ? 'its GPU left as is' : status === 'running' ? 'GPU passthrough removed, --cpu' : 'GPU passthrough removed, stays stopped; --cpu on a re-run once it runs',
    });
  }
  const record = await createTeardownActivities(deps).readDeploymentRecord(cfg);
  lines.push(
    record
      ? { what: 'deployment record', now: `kept by run ${record.run}: pve-vllm deployed here before`, then: 'kept (teardown returns to the host before that first deploy)' }
      : { what: 'deployment record', now: 'none: a first deploy', then: 'written after checkpoint 6' },
  );
  return lines;
}

/** What vLLM serves now at the configured endpoint, asked with its API key (never printed). */
async function servedModels(deps: ActivityDeps, host: Host, cfg: DeployConfig): Promise<string> {
  const endpoint = cfg.guests.vllm.endpoint;
  if (!endpoint) return 'no endpoint in the config';
  try {
    const res = await deps.fetch(`${endpoint}/v1/models`, { headers: { Authorization: `Bearer ${host.secret(cfg.vllm.apiKey)}` }, signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return `${endpoint} answers ${res.status}`;
    const ids = ((await res.json()) as { data?: Array<{ id: string }> }).data?.map((m) => m.id) ?? [];
    return ids.length ? `serves ${ids.join(', ')}` : 'serves no model';
  } catch {
    return `nothing answers at ${endpoint}`;
  }
}
