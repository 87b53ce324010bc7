// Bench-only workflows (their own bundle): N steps in a row, each one Temporal activity, as the deploy runs them.
import { proxyActivities } from '@temporalio/workflow';
import type { SshStepActivities } from './ssh-activities';

// The same timeouts as the deploy's short steps, so the bench pays what a deploy pays per step.
const { sshStep, noopStep } = proxyActivities<SshStepActivities>({
  startToCloseTimeout: '1m',
  heartbeatTimeout: '5s',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
});

/** N × `/bin/true` over SSH. */
export async function sshSteps(n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const code = await sshStep(i);
    if (code === 0) ok++;
  }
  return ok;
}

/** N activities that do nothing: what Temporal alone costs per step. */
export async function noopSteps(n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) ok += await noopStep(i);
  return ok;
}
