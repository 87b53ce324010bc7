// The crash matrix: the worker process is SIGKILLed at activity boundaries and in the middle of long
// activities, a new worker process takes over, and the run must end as it would have without the crash,
// having applied no mutation twice (compared with an uncrashed reference run's lab journal).
import type { JournalEntry, LabState } from '../lab/state';
import { compareJournals, describeEntry } from './journal';
import { activityEvents, completedActivities, historyEvents, isClosed, pendingActivities, waitForProgress } from './history';
import { hostStateViolations, stateDifferences } from './host-check';
import { runScenario, type Env, type LiveRun, type RunOutcome, type Scenario } from './session';

/**
 * `afterOp`: kill only once the lab journal shows this operation (e.g. `vm.shutdown`): the activity's side
 * effect has landed but its completion was never reported, the hardest case for a retry. `delayMs`: kill that
 * long after the activity was seen running.
 */
export type KillTrigger =
  | { kind: 'boundary'; k: number }
  | { kind: 'during'; activity: string; delayMs?: number; afterOp?: string };

export interface KillPoint {
  scenario: Scenario;
  trigger: KillTrigger;
}

export interface Reference {
  scenario: Scenario;
  journal: JournalEntry[];
  final: LabState;
  status: string;
  /** activity types in completion order: boundary k is after the k-th */
  completed: string[];
}

export interface CrashResult {
  label: string;
  scenario: string;
  /** what was killed: the boundary reached / the activity running at the kill; '' when never reached */
  killedAt: string;
  killed: boolean;
  status: string;
  /** ended as the scenario expects (completed, or compensated for a fault) */
  completed: boolean;
  duplicated: number;
  missing: number;
  stateDiffs: string[];
  hostLost: string[];
  /** time from the new worker's start to the run's next progress; undefined when it had already ended */
  recoveryMs?: number;
  /** the run had closed before the new worker started (a kill after the last step): nothing to recover */
  closedBeforeRestart: boolean;
  notes: string[];
}

export function labelOf(p: KillPoint, ref?: Reference): string {
  if (p.trigger.kind === 'during') {
    const t = p.trigger;
    return `during ${t.activity}${t.afterOp ? ` after ${t.afterOp}` : ''}${t.delayMs ? ` (+${t.delayMs} ms)` : ''}`;
  }
  const name = ref?.completed[p.trigger.k - 1];
  return `after #${p.trigger.k}${name ? ` ${name}` : ''}`;
}

/** One uncrashed run: the journal and final state every crashed run of the scenario is compared with. */
export async function referenceRun(env: Env, scenario: Scenario): Promise<Reference & { outcome: RunOutcome }> {
  const outcome = await runScenario(env, scenario);
  try {
    const completed = (await completedActivities(outcome.handle)).map((e) => e.activity);
    return { scenario, journal: outcome.lab.journal(), final: outcome.lab.state(), status: outcome.progress.status, completed, outcome };
  } finally {
    await outcome.lab.stop();
  }
}

async function killWhen(run: LiveRun, trigger: KillTrigger): Promise<string | undefined> {
  const deadline = Date.now() + 10 * 60_000;
  while (Date.now() < deadline) {
    if (trigger.kind === 'boundary') {
      const events = await historyEvents(run.handle).catch(() => undefined);
      const done = events ? activityEvents(events).filter((e) => e.kind === 'completed') : [];
      if (done.length >= trigger.k) {
        await run.workers[0]?.kill();
        const over = done.length > trigger.k ? ` (+${done.length - trigger.k} more had completed)` : '';
        return `after #${trigger.k} ${done[trigger.k - 1]?.activity ?? '?'}${over}`;
      }
      if (events && isClosed(events)) return undefined;
    } else {
      const got = await pendingActivities(run.handle).catch(() => undefined);
      if (got?.pending.some((p) => p.activity === trigger.activity && p.started)) {
        // The op lands in the lab's journal (this process) a moment before the activity reports, sometimes less
        // than one look at the pending activities: watch the journal itself, closely, and kill at once.
        let lastLook = Date.now();
        while (trigger.afterOp && !run.lab.journal().some((e) => e.op === trigger.afterOp)) {
          await new Promise((r) => setTimeout(r, 2));
          if (Date.now() - lastLook < 250) continue;
          lastLook = Date.now();
          const now = await pendingActivities(run.handle).catch(() => undefined);
          if ((now && !now.running) || Date.now() > deadline) return undefined; // the run ended without the op
        }
        if (trigger.delayMs) await new Promise((r) => setTimeout(r, trigger.delayMs));
        await run.workers[0]?.kill();
        // The server still lists a killed attempt as started; an attempt that had reported is gone from the list.
        const still = await pendingActivities(run.handle).catch(() => undefined);
        const running = still?.pending.some((p) => p.activity === trigger.activity && p.started);
        return `during ${trigger.activity}${trigger.afterOp ? ` after ${trigger.afterOp}` : ''}${trigger.delayMs ? ` +${trigger.delayMs} ms` : ''}${running ? '' : ' (it had ended)'}`;
      }
      if (got && !got.running) return undefined;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return undefined;
}

/** One kill point: run, kill the worker when the trigger fires, start a new one, compare with the reference. */
export async function crashRun(env: Env, point: KillPoint, ref: Reference): Promise<CrashResult> {
  let killedAt: string | undefined;
  let recoveryMs: number | undefined;
  let closedBeforeRestart = false;
  const outcome = await runScenario(env, point.scenario, async (run) => {
    killedAt = await killWhen(run, point.trigger);
    if (!killedAt) return;
    closedBeforeRestart = isClosed(await historyEvents(run.handle));
    const next = run.spawnWorker();
    if (closedBeforeRestart) return;
    const progressAt = await waitForProgress(run.handle, next.startedAt, 120_000);
    if (progressAt !== undefined) recoveryMs = progressAt - next.startedAt;
  });
  try {
    return judge(point, ref, outcome, killedAt, recoveryMs, closedBeforeRestart);
  } finally {
    await outcome.lab.stop();
  }
}

export function judge(
  point: KillPoint,
  ref: Reference,
  outcome: RunOutcome,
  killedAt: string | undefined,
  recoveryMs: number | undefined,
  closedBeforeRestart = false,
): CrashResult {
  const cmp = compareJournals(ref.journal, outcome.lab.journal());
  const notes = [
    ...cmp.duplicated.map((e) => `duplicated (${e.kind === 'sameKey' ? 'same op again' : 'op the reference never does'}): ${describeEntry(e)}`),
    ...cmp.missing.map((e) => `missing: ${describeEntry(e)}`),
  ];
  const after = outcome.lab.state();
  const stateDiffs = outcome.progress.status === ref.status ? stateDifferences(ref.final, after) : [];
  for (const d of stateDiffs) notes.push(`final state differs from the reference: ${d}`);
  const undone = outcome.progress.status === 'compensated' || outcome.progress.status === 'cancelled';
  const hostLost = undone ? hostStateViolations(outcome.before, after) : [];
  if (killedAt && !closedBeforeRestart && recoveryMs === undefined) notes.push('no progress seen after the new worker started');
  if (!outcome.ok) notes.push(`ended ${outcome.progress.status}, expected ${outcome.scenario.expect}: ${outcome.progress.error ?? ''}`);
  return {
    label: labelOf(point, ref),
    scenario: point.scenario.name,
    killedAt: killedAt ?? '',
    killed: killedAt !== undefined,
    status: outcome.progress.status,
    completed: outcome.ok,
    duplicated: cmp.duplicated.length,
    missing: cmp.missing.length,
    stateDiffs,
    hostLost,
    recoveryMs,
    closedBeforeRestart,
    notes,
  };
}

/** Kill points of a scenario: every boundary 1..K (or the given subset) plus the mid-activity ones. */
export function killPoints(scenario: Scenario, ref: Reference, opts: { boundaries?: number[]; during?: Array<string | { activity: string; delayMs?: number; afterOp?: string }> } = {}): KillPoint[] {
  const ks = opts.boundaries ?? ref.completed.map((_, i) => i + 1);
  return [
    ...ks.filter((k) => k >= 1 && k <= ref.completed.length).map((k) => ({ scenario, trigger: { kind: 'boundary', k } as KillTrigger })),
    ...(opts.during ?? []).map((d) => ({ scenario, trigger: { kind: 'during', ...(typeof d === 'string' ? { activity: d } : d) } as KillTrigger })),
  ];
}
