// Reading a run's progress from its Temporal event history and its pending activities.
import type { WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Timestamp = { seconds?: { toNumber(): number } | number | string | null; nanos?: number | null } | null | undefined;

export function tsMs(t: Timestamp): number | undefined {
  if (!t || t.seconds === undefined || t.seconds === null) return undefined;
  const s = typeof t.seconds === 'object' ? t.seconds.toNumber() : Number(t.seconds);
  return s * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

export interface ActivityEvent {
  kind: 'started' | 'completed' | 'failed' | 'timedOut';
  activity: string;
  at: number;
  eventId: number;
  attempt?: number;
}

/** Activity starts/ends in history order, each with the activity type from its scheduled event. */
export function activityEvents(events: HistoryEvent[]): ActivityEvent[] {
  const scheduled = new Map<number, string>();
  const out: ActivityEvent[] = [];
  for (const e of events) {
    const id = Number(e.eventId ?? 0);
    const at = tsMs(e.eventTime as Timestamp) ?? 0;
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(id, s.activityType?.name ?? '?');
    const st = e.activityTaskStartedEventAttributes;
    if (st) out.push({ kind: 'started', activity: scheduled.get(Number(st.scheduledEventId)) ?? '?', at, eventId: id, attempt: st.attempt ?? undefined });
    const c = e.activityTaskCompletedEventAttributes;
    if (c) out.push({ kind: 'completed', activity: scheduled.get(Number(c.scheduledEventId)) ?? '?', at, eventId: id });
    const f = e.activityTaskFailedEventAttributes;
    if (f) out.push({ kind: 'failed', activity: scheduled.get(Number(f.scheduledEventId)) ?? '?', at, eventId: id });
    const t = e.activityTaskTimedOutEventAttributes;
    if (t) out.push({ kind: 'timedOut', activity: scheduled.get(Number(t.scheduledEventId)) ?? '?', at, eventId: id });
  }
  return out;
}

/** The last event closes the run (completed, failed, cancelled, terminated, timed out, continued). */
export function isClosed(events: HistoryEvent[]): boolean {
  const last = events[events.length - 1];
  return Boolean(
    last &&
      (last.workflowExecutionCompletedEventAttributes ||
        last.workflowExecutionFailedEventAttributes ||
        last.workflowExecutionCanceledEventAttributes ||
        last.workflowExecutionTerminatedEventAttributes ||
        last.workflowExecutionTimedOutEventAttributes ||
        last.workflowExecutionContinuedAsNewEventAttributes),
  );
}

export async function historyEvents(handle: WorkflowHandle): Promise<HistoryEvent[]> {
  const h = await handle.fetchHistory();
  return h.events ?? [];
}

export async function completedActivities(handle: WorkflowHandle): Promise<ActivityEvent[]> {
  return activityEvents(await historyEvents(handle)).filter((e) => e.kind === 'completed');
}

export interface PendingActivity {
  activity: string;
  started: boolean;
  lastStartedMs?: number;
  attempt: number;
}

export async function pendingActivities(handle: WorkflowHandle): Promise<{ running: boolean; pending: PendingActivity[] }> {
  const d = await handle.describe();
  // PENDING_ACTIVITY_STATE_STARTED = 2 in temporal.api.enums.v1.PendingActivityState
  const pending = (d.raw.pendingActivities ?? []).map((a) => ({
    activity: a.activityType?.name ?? '?',
    started: Number(a.state) === 2,
    lastStartedMs: tsMs(a.lastStartedTime as Timestamp),
    attempt: a.attempt ?? 1,
  }));
  return { running: d.status.name === 'RUNNING', pending };
}

/**
 * Waits for the first sign the workflow moved on after `sinceMs` (a new worker's start): an activity started
 * (pending, with a start time after it) or an activity event / the close of the run in the history after it.
 * Returns the time of that progress, or undefined after `timeoutMs`.
 */
export async function waitForProgress(handle: WorkflowHandle, sinceMs: number, timeoutMs = 60_000): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const seen: number[] = [];
    const { running, pending } = await pendingActivities(handle).catch(() => ({ running: true, pending: [] as PendingActivity[] }));
    for (const p of pending) if (p.started && p.lastStartedMs !== undefined && p.lastStartedMs > sinceMs) seen.push(p.lastStartedMs);
    const events = await historyEvents(handle).catch(() => [] as HistoryEvent[]);
    for (const e of activityEvents(events)) if (e.at > sinceMs && (e.kind === 'started' || e.kind === 'completed')) seen.push(e.at);
    if (!running) {
      const last = events[events.length - 1];
      const at = tsMs(last?.eventTime as Timestamp);
      if (at !== undefined && at > sinceMs) seen.push(at);
    }
    if (seen.length > 0) return Math.min(...seen);
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}
