// Hostile input end to end: every hostile string in every shell-bound field of the lab's own config goes
// through validation; what validation lets through is deployed, and the lab must show it arrived as one
// literal argument with nothing else run. Invalid decisions must be refused by the update validator while
// the run keeps waiting.
import { readFileSync } from 'node:fs';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { parse } from 'yaml';
import type { LabState } from '../lab/state';
import type { DeployProgress } from '../workflows/messages';
import { quoteArg } from '../adapters/quote';
import { CANARY, validationMatrix, type ValidationVerdict } from './hostile-inputs';
import { hostStateViolations } from './host-check';
import { labCommands } from './secrets';
import { runScenario, type Env, type Scenario } from './session';
import { startLab } from '../lab';

export interface HostileReport {
  /** (field, value) pairs tried through validation, plus decisions tried through the update validator */
  tried: number;
  rejected: number;
  accepted: ValidationVerdict[];
  /** refused, but under another field's name: a message that does not help the user */
  misnamed: ValidationVerdict[];
  /** accepted values that were deployed, and what the lab showed */
  deployed: Array<{ field: string; value: string; status: string; problems: string[] }>;
  decisionsTried: number;
  decisionsRefused: number;
  decisionProblems: string[];
  hostLost: string[];
  /** problems of any kind: an accepted value that ran something, a misnamed field, a decision accepted */
  problems: string[];
}

/** Any trace of an injected command on any machine of the lab: the canary file, or the marker in the journal. */
export function injectionTraces(state: LabState): string[] {
  const out: string[] = [];
  for (const [machine, files] of Object.entries(state.files)) for (const f of files) if (f.path.startsWith(CANARY)) out.push(`${machine}: ${f.path} exists`);
  for (const e of state.journal) if (e.detail.includes('pwned') || e.op === 'id') out.push(`journal: ${e.op} ${e.detail}`);
  return out;
}

async function labBaseConfig(workDir: string): Promise<Record<string, unknown>> {
  const lab = await startLab({});
  try {
    const path = `${workDir}/hostile-base.yaml`;
    await lab.writeConfig(path);
    return parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } finally {
    await lab.stop();
  }
}

const BAD_DECISIONS: Record<'openwebui' | 'frontend', string[]> = {
  openwebui: ['explode', 'keep; rm -rf /', '$(id)', 'KEEP', ' keep', '', 'keep\n'],
  frontend: ['openwebui && id', 'both|id', 'comfyui`id`', 'none'],
};

export async function hostileCheck(env: Env, opts: { deploy?: boolean; decisions?: boolean } = {}): Promise<HostileReport> {
  const base = await labBaseConfig(env.workDir);
  const matrix = validationMatrix(base);
  const r: HostileReport = {
    tried: matrix.length,
    rejected: matrix.filter((v) => v.rejected).length,
    accepted: matrix.filter((v) => v.accepted),
    misnamed: matrix.filter((v) => v.rejectedElsewhere),
    deployed: [],
    decisionsTried: 0,
    decisionsRefused: 0,
    decisionProblems: [],
    hostLost: [],
    problems: [],
  };
  for (const v of r.misnamed) r.problems.push(`${v.field}=${JSON.stringify(v.value)} refused under ${v.problems.map((p) => p.path).join(', ')}`);

  if (opts.deploy !== false) {
    for (const v of r.accepted) r.deployed.push(await deployAccepted(env, v));
    for (const d of r.deployed) r.problems.push(...d.problems.map((p) => `${d.field}=${JSON.stringify(d.value)}: ${p}`));
  }
  if (opts.decisions !== false) await decisionCheck(env, r);
  return r;
}

/** Deploys with one accepted hostile value; it must reach the host only as one quoted argument, if at all. */
async function deployAccepted(env: Env, v: ValidationVerdict): Promise<HostileReport['deployed'][number]> {
  const scenario: Scenario = {
    name: `hostile-${v.field}`,
    decide: { openwebui: 'keep', frontend: 'openwebui' },
    expect: 'completed',
    editRaw: (raw) => {
      const parts = v.field.split('.');
      let o = raw;
      for (const p of parts.slice(0, -1)) o = o[p] as Record<string, unknown>;
      o[parts[parts.length - 1] as string] = v.value;
    },
  };
  const o = await runScenario(env, scenario);
  try {
    const problems: string[] = [];
    const state = o.lab.state();
    problems.push(...injectionTraces(state));
    const cmds = labCommands(o.lab);
    if (cmds) {
      // Where the value reached a command line at all, it must be there as one quoted word.
      const raw = cmds.filter((c) => c.includes(v.value) && !c.includes(quoteArg(v.value)));
      for (const c of raw) problems.push(`unquoted in a command line: ${c.slice(0, 200)}`);
    }
    if (o.progress.status === 'compensated' || o.progress.status === 'cancelled') problems.push(...hostStateViolations(o.before, state));
    if (o.progress.status === 'failed' && o.progress.mutations > 0) problems.push(`failed with ${o.progress.mutations} changes not undone: ${o.progress.error ?? ''}`);
    return { field: v.field, value: v.value, status: `${o.progress.status}${o.progress.error ? `: ${o.progress.error.slice(0, 160)}` : ''}`, problems };
  } finally {
    await o.lab.stop();
  }
}

/** Invalid decisions through the Update are refused by its validator; the run keeps waiting, then completes. */
async function decisionCheck(env: Env, r: HostileReport): Promise<void> {
  const scenario: Scenario = { name: 'hostile-decisions', decide: {}, expect: 'completed' };
  const o = await runScenario(env, scenario, async ({ handle }) => {
    let p: DeployProgress | undefined;
    for (let i = 0; i < 3000 && !p?.pending.some((d) => d.decision === 'openwebui'); i++) {
      p = await handle.query<DeployProgress>('progress').catch(() => undefined);
      if (p && p.status !== 'running') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    for (const decision of ['openwebui', 'frontend'] as const) {
      for (const choice of BAD_DECISIONS[decision]) {
        r.decisionsTried += 1;
        const got = await handle.executeUpdate(decision === 'openwebui' ? 'decideOpenwebui' : 'decideFrontend', { args: [{ choice, by: 'hostile' }] }).catch((e: unknown) => e);
        if (got instanceof WorkflowUpdateFailedError) r.decisionsRefused += 1;
        else r.decisionProblems.push(`${decision}=${JSON.stringify(choice)} was ${got instanceof Error ? `an error other than a refusal: ${got.message}` : 'accepted'}`);
      }
    }
    p = await handle.query<DeployProgress>('progress');
    if (p.status !== 'running') r.decisionProblems.push(`after the refused decisions the run is ${p.status}, not waiting`);
    if (!p.pending.some((d) => d.decision === 'openwebui')) r.decisionProblems.push('after the refused decisions the openwebui decision is no longer pending');
    if (p.decisions.length > 0) r.decisionProblems.push(`decisions recorded from refused updates: ${JSON.stringify(p.decisions)}`);
    await handle.executeUpdate('decideOpenwebui', { args: [{ choice: 'keep', by: 'hostile' }] });
    await handle.executeUpdate('decideFrontend', { args: [{ choice: 'openwebui', by: 'hostile' }] });
  });
  try {
    if (!o.ok) r.decisionProblems.push(`the run ended ${o.progress.status} after valid answers: ${o.progress.error ?? ''}`);
    r.tried += r.decisionsTried;
    r.rejected += r.decisionsRefused;
    r.problems.push(...r.decisionProblems);
  } finally {
    await o.lab.stop();
  }
}
