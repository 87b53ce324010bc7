// `pve-vllm teardown`: a completed deploy taken back, from what its first run kept on the host (recordDeployment).
// The reverse of the deploy's order: vLLM off the card, the boot unit, the frontends, then the GPU back to VM 151.
// Every step is idempotent, so a teardown that fails or is cancelled half-way is simply run again.
import { ActivityOptions, ApplicationFailure, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { DeployActivities, DeploymentRecord } from '../activities/contract';
import { DeployInput, DeployProgress, StepRecord, progressQuery } from './messages';
import { failureText } from './saga';

const OPTS: ActivityOptions = {
  startToCloseTimeout: '10m',
  heartbeatTimeout: '5s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 6 },
};
const acts = proxyActivities<DeployActivities>(OPTS);

export async function teardown(input: DeployInput): Promise<DeployProgress> {
  const cfg = input.config;
  const now = () => new Date().toISOString();
  const p: DeployProgress = {
    status: 'running', currentStep: 'starting', steps: [], checkpoints: [], pending: [], decisions: [], rejected: [], compensations: [], mutations: 0, changes: [],
  };
  setHandler(progressQuery, () => p);
  const step = async (name: string, body: () => Promise<string>): Promise<void> => {
    const rec: StepRecord = { step: p.steps.length + 1, name, status: 'running', startedAt: now() };
    p.steps.push(rec);
    p.currentStep = `${rec.step}. ${name}`;
    try {
      Object.assign(rec, { status: 'done', endedAt: now(), detail: await body() });
    } catch (err) {
      Object.assign(rec, { status: 'failed', endedAt: now(), detail: failureText(err) });
      throw err;
    }
  };
  const counted = (r: { changed: boolean; detail: string }): string => {
    if (r.changed) {
      p.mutations += 1;
      p.changes.push(r.detail);
    }
    return r.detail;
  };

  try {
    let found: DeploymentRecord | null = null;
    await step('Read what the host was before the first deploy', async () => {
      found = await acts.readDeploymentRecord(cfg);
      if (!found) {
        throw ApplicationFailure.nonRetryable(
          `no deployment record on ${cfg.proxmox.host} (/root/.pve-vllm-deployment.json): nothing deployed by pve-vllm is there ` +
            'to take back (or it was deployed before teardown existed: the README\'s "Taking a completed deploy back" says how by hand)',
          'NothingToTearDown',
        );
      }
      const r = found as DeploymentRecord;
      return `kept by run ${r.run}: VM ${r.vm.id} ${r.vm.running ? 'running' : 'stopped'}, onboot ${r.vm.onboot ? 1 : 0}; GPU on ${r.gpuDriver ?? 'no driver'}; ` +
        `CT ${r.vllmCt.id} ${r.vllmCt.created ? 'made by pve-vllm' : 'there before'}`;
    });
    const r = found as unknown as DeploymentRecord;
    const ct = r.vllmCt.id;

    // 1. vLLM off the card: a CT pve-vllm made goes; one that was there before keeps its data, gets its config back.
    await step(r.vllmCt.created ? `Destroy CT ${ct}, made by pve-vllm` : `Stop vLLM in CT ${ct}, its config as before`, async () => {
      if (r.vllmCt.created) return counted(await acts.destroyContainer(cfg, ct));
      const stopped = counted(await acts.stopVllmForTeardown(cfg, ct));
      const conf = r.confBefore[String(ct)];
      return `${stopped}; ${conf ? counted(await acts.restoreContainerConfig(cfg, ct, conf)) : 'its config was not kept'}`;
    });
    // 2. The boot unit that would take the card again at the next boot.
    await step('Remove the GPU boot unit', async () => counted(await acts.tearDownGpuBootUnit(cfg)));
    // 3. The frontends as they were (a repurposed OpenWebUI CT was step 1's).
    await step('Put the frontends back', async () => {
      const done: string[] = [];
      for (const f of ['openwebui', 'comfyui'] as const) {
        const g = cfg.guests[f];
        if (!g || g.id === ct) continue;
        done.push(`${f}: ${counted(await acts.tearDownFrontend(cfg, f, r.confBefore[String(g.id)]))}`);
      }
      return done.join('; ') || 'no frontends in the config';
    });
    // 4. The GPU back where it was, and every CT that ran before the deploy running again.
    await step(`Give GPU ${cfg.gpu.pciAddress} back to VM ${r.vm.id}`, async () =>
      counted(
        await acts.returnGpuToVm(cfg, {
          changed: true,
          vmid: r.vm.id,
          wasRunning: r.vm.running,
          onbootBefore: r.vm.onboot,
          runningCtsBefore: r.runningCts.filter((id) => !(r.vllmCt.created && id === ct)),
          driverBefore: r.gpuDriver,
        }),
      ),
    );
    await step('Forget the deployment', async () => counted(await acts.deleteDeploymentRecord(cfg)));
    p.status = 'completed';
    p.currentStep = 'done';
    return p;
  } catch (err) {
    p.status = 'failed';
    p.error = failureText(err);
    p.currentStep = 'done';
    throw ApplicationFailure.create({
      message: `${p.error} — the teardown stopped in workflow ${workflowInfo().workflowId}; every step is safe to run again`,
      type: 'TeardownFailed',
      nonRetryable: true,
      details: [p],
      cause: err instanceof Error ? err : undefined,
    });
  }
}
