// `pve-vllm plan`: validate the config and run every offline preflight. Like `terraform plan`: nothing changes.
import { formatProblems, loadConfig } from '../config/load';
import { renderAlternatives, renderSizingTable, suggestAlternatives } from '../sizing';
import { preflightModel } from '../workflows/preflight';
import { CHECKPOINTS } from '../workflows/deploy';
import { EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK } from './exit';
import { readHostNow, type LiveLine } from './plan-live';
import type { Io } from './run-commands';

export interface PlanFlags {
  config: string;
  model?: string;
  maxModelLen?: number;
  json?: boolean;
  /** read the host too (read-only) */
  live?: boolean;
}

export async function planCommand(f: PlanFlags, io: Io): Promise<number> {
  const loaded = loadConfig(f.config, { model: f.model, maxModelLen: f.maxModelLen });
  if (!loaded.ok) {
    io.err.write(`${formatProblems(loaded.problems)}\n`);
    return EXIT_BAD_INPUT;
  }
  const cfg = loaded.config;
  for (const note of loaded.notes) io.err.write(`note: ${note}\n`);
  const pre = preflightModel(cfg);
  const g = cfg.guests;
  const steps = [
    `1. Connect to ${cfg.proxmox.host} (SSH ${cfg.proxmox.ssh.port}, API ${cfg.proxmox.api.port}): PVE version, GPUs, who holds ${cfg.gpu.pciAddress}`,
    `2. Create sudo user ${cfg.admin.user} with its SSH key; install Claude Code  -> checkpoint 1 (${CHECKPOINTS[0]})`,
    `3. Clone ${cfg.repo.url} at ${cfg.repo.ref} to ${cfg.repo.path}`,
    `4. Assess OpenWebUI CT ${g.openwebui?.id ?? '(none)'}; decide repurpose | keep | scrap  -> checkpoint 2`,
    `5. CT ${g.vllm.id} (${g.vllm.cores} cores, ${g.vllm.memoryMiB} MiB, ${g.vllm.diskGiB} GiB on ${g.vllm.storage}); release GPU from VM ${g.vm.id} (stop, onboot 0); bind it to nvidia; passthrough  -> checkpoint 3; Docker + NVIDIA toolkit; pull ${cfg.vllm.image}; start vLLM  -> checkpoint 4`,
    `6. Decide the frontend (openwebui | comfyui | both); reconfigure it to use ${g.vllm.endpoint ?? 'the vLLM CT'}/v1  -> checkpoint 5`,
    '7. Chat completion through each chosen frontend  -> checkpoint 6',
  ];
  const decisions = [
    `openwebui: ${cfg.decisions.openwebui ?? `asked at step 4 (waits up to ${cfg.decisions.timeout})`}`,
    `frontend: ${cfg.decisions.frontend ?? `asked at step 4 too, needed at step 6 (waits up to ${cfg.decisions.timeout})`}`,
  ];
  const changes = [
    `host: user ${cfg.admin.user}, /etc/sudoers.d/pve-vllm-${cfg.admin.user}, ${cfg.repo.path}, /etc/modprobe.d/blacklist-nouveau.conf, GPU driver vfio-pci -> nvidia, ` +
      'pve-vllm-gpu.service (enabled: the GPU back on nvidia with /dev/nvidia-uvm at boot, before pve-guests)',
    `VM ${g.vm.id}: stopped, onboot 0 (undone on failure or cancel)`,
    `CT ${g.vllm.id}: created or reconciled; raw lxc GPU lines, keyctl, AppArmor unconfined (root-only: edited over SSH)`,
    ...(g.comfyui
      ? [
          `CT ${g.comfyui.id} (ComfyUI): GPU lines removed and --cpu whichever frontend is chosen (a stopped CT loses its GPU lines and stays stopped; --cpu on a re-run once it runs); ` +
            `if chosen, also ${g.comfyui.reduceTo ? `${g.comfyui.reduceTo.cores} cores / ${g.comfyui.reduceTo.memoryMiB} MiB` : 'resources kept'}, OpenAI API node`,
        ]
      : []),
    ...(g.openwebui ? [`CT ${g.openwebui.id} (OpenWebUI), if kept: ${g.openwebui.reduceTo ? `${g.openwebui.reduceTo.cores} cores / ${g.openwebui.reduceTo.memoryMiB} MiB` : 'resources kept'}, connection to vLLM`] : []),
    'scrap (only if chosen): vzdump backup, then CT destroyed — after checkpoint 6 only',
  ];
  const alternatives = pre.ok ? [] : suggestAlternatives(pre.input);
  // Read-only, and only once the config is known good: nothing is asked of a host the config gets wrong.
  let live: LiveLine[] | undefined;
  let liveError: string | undefined;
  if (f.live && !pre.ok) io.err.write('note: --live skipped: the model does not fit; make it fit first (see the nearest configurations below)\n');
  if (f.live && pre.ok) {
    try {
      // Secret files are named relative to the config's directory, as for a deploy.
      const located: typeof cfg & { configDir: string } = { ...cfg, configDir: loaded.configDir };
      live = await readHostNow(located);
    } catch (err) {
      liveError = err instanceof Error ? err.message : String(err);
    }
  }
  if (f.json) {
    io.out.write(`${JSON.stringify({ ok: pre.ok, steps, decisions, changes, launch: pre.launch, sizing: pre.fit, alternatives: alternatives.map((a) => ({ kind: a.kind, summary: a.summary, change: a.change, verdict: a.result.verdict })), ...(live ? { live } : {}), ...(liveError ? { liveError } : {}) }, null, 2)}\n`);
  } else {
    const w = (s = '') => io.out.write(`${s}\n`);
    w(`Plan for ${cfg.proxmox.node} (${cfg.proxmox.host}): vLLM ${cfg.model.id} in CT ${g.vllm.id}`);
    w('\nSteps:');
    steps.forEach((s) => w(`  ${s}`));
    w('\nDecisions:');
    decisions.forEach((s) => w(`  ${s}`));
    w('\nChanges it expects to make:');
    changes.forEach((s) => w(`  ${s}`));
    w('\nModel fit:');
    renderSizingTable(pre.fit, { explain: true }).forEach((s) => w(`  ${s}`));
    if (!pre.ok) {
      w('\nNearest configurations that fit:');
      renderAlternatives(alternatives).forEach((s) => w(`  ${s}`));
    } else {
      const l = pre.launch;
      w(`\nvLLM flags: --max-model-len ${l.maxModelLen} --gpu-memory-utilization ${l.gpuMemoryUtilization}${l.quantization ? ` --quantization ${l.quantization}` : ''}${l.kvCacheDtype ? ` --kv-cache-dtype ${l.kvCacheDtype}` : ''}${l.cpuOffloadGb > 0 ? ` --cpu-offload-gb ${l.cpuOffloadGb}` : ''}`);
    }
    if (live) {
      w(`\nThe host now (read over SSH and the API; nothing changed), and what the deploy would do:`);
      const width = Math.max(...live.map((x) => x.what.length));
      live.forEach((x) => w(`  ${x.what.padEnd(width)}  ${x.now}${x.then ? `\n  ${' '.repeat(width)}  -> ${x.then}` : ''}`));
    }
  }
  if (liveError) io.err.write(`could not read the host: ${liveError}\n`);
  if (!pre.ok) return EXIT_BAD_INPUT;
  return liveError ? EXIT_FAILED : EXIT_OK;
}
