// What a teardown needs: the host as it was before pve-vllm's first deploy, kept on the host when a deploy passes
// checkpoint 6. The first deploy's facts win: a later one (a re-run, a model switch) finds the host deployed, and
// adds only the config of a CT no earlier deploy had changed.
import type { DeployConfig } from '../config/schema';
import type { Changed, DeploymentRecord, UndoResult } from './contract';
import { ActivityDeps, DEPLOYMENT_RECORD, Host, savedRecord, thisRun } from './deps';
import { keepVllmBefore } from './container';
import { COMFY_RELEASE, deployBeforePath, runBeforePath } from './frontends';
import { BOOT_UNIT_BEFORE, BOOT_UNIT_BEFORE_DEPLOY } from './host';

export function createTeardownActivities(deps: ActivityDeps) {
  const h = (cfg: DeployConfig) => new Host(deps, cfg);

  /**
   * Copies this run's "before" record of a file to its kept place, unless a first deploy's copy is there already:
   * one command wherever it runs (on the host, or in a CT through `pct exec`). The run id is an argument.
   */
  const keepArgv = (own: string, kept: string): string[] => [
    'sh', '-c', `if [ -e ${kept} ]; then echo there; elif [ -e ${own} ] && grep -qF "\\"run\\":\\"$1\\"" ${own}; then cp -p ${own} ${kept} && echo kept; fi`, 'keep', thisRun(),
  ];
  /** This command copied the record: a change. */
  const kept = (r: { code: number; stdout: string }): boolean => r.code === 0 && r.stdout.includes('kept');
  /** A first deploy's record is there, copied now or before. */
  const keptAny = (r: { code: number; stdout: string }): boolean => r.code === 0 && /^(kept|there)$/m.test(r.stdout);

  return {
    async recordDeployment(cfg: DeployConfig, facts: DeploymentRecord): Promise<Changed> {
      const host = h(cfg);
      // Kept once: the first deploy knew the host as it was; a later one (a re-run, a model switch) knows it deployed.
      let changed = false;
      const saved = savedRecord<DeploymentRecord>(await host.read(DEPLOYMENT_RECORD));
      // A CT config no earlier deploy kept (a frontend added to the config since, say) is added: before this run,
      // that CT was as no pve-vllm deploy had left it. The vLLM CT's is kept by the first deploy only.
      const added = saved ? Object.entries(facts.confBefore).filter(([id]) => !(id in saved.confBefore) && id !== String(saved.vllmCt.id)) : [];
      const record: DeploymentRecord = saved ? { ...saved, confBefore: { ...saved.confBefore, ...Object.fromEntries(added) } } : { ...facts, changedInside: [] };
      let write = !saved || added.length > 0;
      changed = kept(await host.run(keepArgv(BOOT_UNIT_BEFORE, BOOT_UNIT_BEFORE_DEPLOY))) || changed;
      // A vLLM CT that was there before (repurposed, or made by hand) keeps what its service was, for a teardown.
      if (!record.vllmCt.created) changed = (await keepVllmBefore(host, record.vllmCt.id)) || changed;
      for (const frontend of ['comfyui', 'openwebui'] as const) {
        const g = cfg.guests[frontend];
        // A CT that is absent, stopped or scrapped fails the exec: nothing of it to keep.
        if (!g) continue;
        const r = await host.ct(g.id, keepArgv(runBeforePath(frontend), deployBeforePath(frontend)));
        changed = kept(r) || changed;
        // Noted on the host, where a teardown can read it while the CT is stopped (an older record: unknown, left so).
        if (keptAny(r) && record.changedInside && !record.changedInside.includes(g.id)) {
          record.changedInside = [...record.changedInside, g.id];
          write = true;
        }
      }
      if (write) {
        await host.write(DEPLOYMENT_RECORD, `${JSON.stringify(record, null, 2)}\n`, '0600');
        changed = true;
      }
      return { changed };
    },

    async readDeploymentRecord(cfg: DeployConfig): Promise<DeploymentRecord | null> {
      return savedRecord<DeploymentRecord>(await h(cfg).read(DEPLOYMENT_RECORD)) ?? null;
    },

    async deleteDeploymentRecord(cfg: DeployConfig): Promise<UndoResult> {
      const host = h(cfg);
      if ((await host.read(DEPLOYMENT_RECORD)) === undefined) return { changed: false, detail: 'no deployment record' };
      // With it goes what ComfyUI's release kept from run to run (--cpu owed): the next deploy starts afresh.
      await host.must(['rm', '-f', DEPLOYMENT_RECORD, COMFY_RELEASE]);
      return { changed: true, detail: 'deployment record removed' };
    },
  };
}
