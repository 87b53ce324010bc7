// What a teardown needs: the host as it was before pve-vllm's first deploy, kept on the host when a deploy passes
// checkpoint 6. The first deploy's facts win: a later one (a re-run, a model switch) finds the host deployed, and
// adds only the config of a CT no earlier deploy had changed.
import type { DeployConfig } from '../config/schema';
import type { Changed, DeploymentRecord, UndoResult } from './contract';
import { ActivityDeps, Host, thisRunsRecord } from './deps';
import { keepVllmBefore } from './container';
import { COMFY_BEFORE, deployBeforePath, OWUI_STASH } from './frontends';
import { BOOT_UNIT_BEFORE, BOOT_UNIT_BEFORE_DEPLOY } from './host';

/** Root-only, on the host: no secrets in it (a frontend's connections stay in its own CT). */
export const DEPLOYMENT_RECORD = '/root/.pve-vllm-deployment.json';

function parse(text: string | undefined): DeploymentRecord | null {
  if (text === undefined) return null;
  try {
    return JSON.parse(text) as DeploymentRecord;
  } catch {
    return null;
  }
}

export function createTeardownActivities(deps: ActivityDeps) {
  const h = (cfg: DeployConfig) => new Host(deps, cfg);

  /** Copies this run's "before" of a file to its kept place, unless a first deploy's copy is there already. */
  async function keep(read: () => Promise<string | undefined>, write: (text: string) => Promise<void>, ownRecord: string | undefined): Promise<boolean> {
    if (!ownRecord || thisRunsRecord(ownRecord) === undefined || (await read()) !== undefined) return false;
    await write(ownRecord);
    return true;
  }

  return {
    async recordDeployment(cfg: DeployConfig, facts: DeploymentRecord): Promise<Changed> {
      const host = h(cfg);
      // Kept once: the first deploy knew the host as it was; a later one (a re-run, a model switch) knows it deployed.
      let changed = false;
      let record = parse(await host.read(DEPLOYMENT_RECORD));
      // A CT config no earlier deploy kept (a frontend added to the config since, say) is added: before this run,
      // that CT was as no pve-vllm deploy had left it. The vLLM CT's is kept by the first deploy only.
      const added = record ? Object.entries(facts.confBefore).filter(([id]) => !(id in (record as DeploymentRecord).confBefore) && id !== String((record as DeploymentRecord).vllmCt.id)) : [];
      if (record === null || added.length > 0) {
        record = record ? { ...record, confBefore: { ...record.confBefore, ...Object.fromEntries(added) } } : facts;
        await host.write(DEPLOYMENT_RECORD, `${JSON.stringify(record, null, 2)}\n`, '0600');
        changed = true;
      }
      changed = (await keep(() => host.read(BOOT_UNIT_BEFORE_DEPLOY), (t) => host.write(BOOT_UNIT_BEFORE_DEPLOY, t, '0600'), await host.read(BOOT_UNIT_BEFORE))) || changed;
      // A vLLM CT that was there before (repurposed, or made by hand) keeps what its service was, for a teardown.
      if (!record.vllmCt.created) changed = (await keepVllmBefore(host, record.vllmCt.id)) || changed;
      for (const [frontend, own] of [['comfyui', COMFY_BEFORE], ['openwebui', OWUI_STASH]] as const) {
        const g = cfg.guests[frontend];
        if (!g || (await host.ct(g.id, ['true'])).code !== 0) continue; // absent, stopped or scrapped: nothing of it to keep
        const kept = deployBeforePath(frontend);
        changed = (await keep(() => host.ctRead(g.id, kept), (t) => host.ctWrite(g.id, kept, t, '0600'), await host.ctRead(g.id, own))) || changed;
      }
      return { changed };
    },

    async readDeploymentRecord(cfg: DeployConfig): Promise<DeploymentRecord | null> {
      return parse(await h(cfg).read(DEPLOYMENT_RECORD));
    },

    async deleteDeploymentRecord(cfg: DeployConfig): Promise<UndoResult> {
      const host = h(cfg);
      if ((await host.read(DEPLOYMENT_RECORD)) === undefined) return { changed: false, detail: 'no deployment record' };
      await host.must(['rm', '-f', DEPLOYMENT_RECORD]);
      return { changed: true, detail: 'deployment record removed' };
    },
  };
}
