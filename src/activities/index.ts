// All activities, each wrapped to heartbeat and to mark permanent errors non-retryable.
import type { DeployActivities } from './contract';
import { createContainerActivities } from './container';
import { ActivityDeps, instrument } from './deps';
import { createFrontendActivities } from './frontends';
import { createHostActivities } from './host';
import { createProbeActivities } from './probes';
import { createProxmoxActivities } from './proxmox';
import { createTeardownActivities } from './teardown';

export function createActivities(deps: ActivityDeps): DeployActivities {
  const all = {
    ...createHostActivities(deps),
    ...createProxmoxActivities(deps),
    ...createContainerActivities(deps),
    ...createProbeActivities(deps),
    ...createFrontendActivities(deps),
    ...createTeardownActivities(deps),
  } satisfies DeployActivities;
  const wrapped = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(all)) wrapped[name] = instrument(fn as (...a: unknown[]) => Promise<unknown>);
  return wrapped as unknown as DeployActivities;
}
