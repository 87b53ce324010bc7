// The bench's one activity: `/bin/true` on the target through the production SSH pool, wrapped like the
// deploy's activities (instrument: heartbeats, error typing) so the per-step cost includes what a deploy pays.
import { instrument } from '../activities/deps';
import type { SshPool, SshTarget } from '../adapters/ssh';

export interface SshStepActivities {
  sshStep(i: number): Promise<number>;
  noopStep(i: number): Promise<number>;
}

export function createSshStepActivities(pool: SshPool, target: SshTarget): SshStepActivities {
  const session = pool.session(target);
  return {
    sshStep: instrument(async (_i: number) => {
      const r = await session.exec(['/bin/true'], { timeoutMs: 30_000 });
      return r.code;
    }),
    noopStep: instrument(async (_i: number) => 1),
  };
}
