// Each lab fault once, without crashes: transient ones must be ridden out, permanent ones must end in a
// compensated run that put the host back as it was.
import type { FaultName } from '../lab/state';
import { hostStateViolations } from './host-check';
import { runScenario, type Env, type Scenario } from './session';

export const FAULT_SCENARIOS: Scenario[] = (
  [
    ['pve-500', 'completed'],
    ['ssh-drop', 'completed'],
    ['vllm-oom', 'compensated'],
    ['driver-mismatch', 'compensated'],
    ['frontend-unreachable', 'compensated'],
  ] as Array<[FaultName, Scenario['expect']]>
).map(([fault, expect]) => ({ name: `fault-${fault}`, decide: { openwebui: 'keep', frontend: 'comfyui' }, faults: [fault], expect }));

export interface FaultResult {
  scenario: string;
  status: string;
  ok: boolean;
  hostLost: string[];
  error?: string;
}

export async function faultRun(env: Env, s: Scenario): Promise<FaultResult> {
  const o = await runScenario(env, s);
  try {
    const undone = o.progress.status === 'compensated' || o.progress.status === 'cancelled';
    return {
      scenario: s.name,
      status: o.progress.status,
      ok: o.ok,
      hostLost: undone ? hostStateViolations(o.before, o.lab.state()) : [],
      error: o.progress.error,
    };
  } finally {
    await o.lab.stop();
  }
}
