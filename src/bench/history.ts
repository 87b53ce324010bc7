// Reading a workflow's history for the bench: activity spans (scheduled -> closed), the workflow's wall time,
// and two lower bounds on it: the union of the spans and the longest chain of spans in sequence.
import type { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

// Numeric values of temporal.api.enums.v1.EventType (stable parts of the public API).
const EV = {
  WORKFLOW_STARTED: 1,
  WORKFLOW_COMPLETED: 2,
  WORKFLOW_FAILED: 3,
  WORKFLOW_TIMED_OUT: 4,
  ACTIVITY_SCHEDULED: 10,
  ACTIVITY_STARTED: 11,
  ACTIVITY_COMPLETED: 12,
  ACTIVITY_FAILED: 13,
  ACTIVITY_TIMED_OUT: 14,
  ACTIVITY_CANCELED: 16,
  WORKFLOW_CANCELED: 26,
  WORKFLOW_TERMINATED: 28,
} as const;

export interface ActivitySpan {
  eventId: number;
  type: string;
  scheduled: number;
  /** when the last attempt started (absent if it never did) */
  started?: number;
  closed: number;
  outcome: 'completed' | 'failed' | 'timed-out' | 'canceled';
}

type Timestamp = { seconds?: { toString(): string } | number | null; nanos?: number | null } | null | undefined;

/** Milliseconds since the epoch; seconds arrive as a Long from the server and as a number in hand-made events. */
export function timestampMs(t: Timestamp): number {
  if (!t) return Number.NaN;
  const s = t.seconds;
  const seconds = typeof s === 'number' ? s : s ? Number(s.toString()) : 0;
  return seconds * 1000 + (t.nanos ?? 0) / 1e6;
}

function at(e: HistoryEvent): number {
  return timestampMs(e.eventTime);
}

function idOf(e: HistoryEvent): number {
  return Number(e.eventId);
}

/** One span per activity that closed; attempts retried by the server are inside one span. */
export function activitySpans(history: History): ActivitySpan[] {
  const scheduled = new Map<number, { type: string; at: number }>();
  const started = new Map<number, number>();
  const spans: ActivitySpan[] = [];
  for (const e of history.events ?? []) {
    const t = Number(e.eventType);
    if (t === EV.ACTIVITY_SCHEDULED) {
      scheduled.set(idOf(e), { type: e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?', at: at(e) });
    } else if (t === EV.ACTIVITY_STARTED) {
      started.set(Number(e.activityTaskStartedEventAttributes?.scheduledEventId), at(e));
    } else if (t === EV.ACTIVITY_COMPLETED || t === EV.ACTIVITY_FAILED || t === EV.ACTIVITY_TIMED_OUT || t === EV.ACTIVITY_CANCELED) {
      const attrs =
        e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
      const sid = Number(attrs?.scheduledEventId);
      const s = scheduled.get(sid);
      if (!s) continue;
      const outcome = t === EV.ACTIVITY_COMPLETED ? 'completed' : t === EV.ACTIVITY_FAILED ? 'failed' : t === EV.ACTIVITY_TIMED_OUT ? 'timed-out' : 'canceled';
      spans.push({ eventId: sid, type: s.type, scheduled: s.at, started: started.get(sid), closed: at(e), outcome });
    }
  }
  return spans;
}

export function scheduledActivityTypes(history: History): string[] {
  return (history.events ?? [])
    .filter((e) => Number(e.eventType) === EV.ACTIVITY_SCHEDULED)
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?');
}

/** Start of the run to its close (completed, failed, cancelled, terminated or timed out). */
export function workflowWall(history: History): { start: number; end: number; ms: number } | undefined {
  const events = history.events ?? [];
  const first = events.find((e) => Number(e.eventType) === EV.WORKFLOW_STARTED);
  const closing: number[] = [EV.WORKFLOW_COMPLETED, EV.WORKFLOW_FAILED, EV.WORKFLOW_TIMED_OUT, EV.WORKFLOW_CANCELED, EV.WORKFLOW_TERMINATED];
  const last = [...events].reverse().find((e) => closing.includes(Number(e.eventType)));
  if (!first || !last) return undefined;
  return { start: at(first), end: at(last), ms: at(last) - at(first) };
}

/**
 * The recorded start of an activity's last attempt, once it has closed (a retried activity's started event is
 * written when it closes and carries the attempt number): undefined while it runs or if it never started.
 */
export function lastAttempt(history: History, type: string): { attempt: number; startedAt: number } | undefined {
  const events = history.events ?? [];
  const sid = events.find((e) => Number(e.eventType) === EV.ACTIVITY_SCHEDULED && e.activityTaskScheduledEventAttributes?.activityType?.name === type)?.eventId;
  if (sid === undefined || sid === null) return undefined;
  const started = events.find((e) => Number(e.eventType) === EV.ACTIVITY_STARTED && Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === Number(sid));
  if (!started) return undefined;
  return { attempt: Number(started.activityTaskStartedEventAttributes?.attempt ?? 1), startedAt: at(started) };
}

/** Times of completed activities after `since` (ms epoch), in order. */
export function completionsAfter(history: History, since: number): Array<{ at: number; type: string }> {
  const spans = activitySpans(history).filter((s) => s.outcome === 'completed' && s.closed >= since);
  return spans.sort((a, b) => a.closed - b.closed).map((s) => ({ at: s.closed, type: s.type }));
}

export interface Interval {
  start: number;
  end: number;
}

/** Total time covered by at least one interval. */
export function unionMs(intervals: Interval[]): number {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  let total = 0;
  let curStart = Number.NaN;
  let curEnd = Number.NaN;
  for (const iv of sorted) {
    if (Number.isNaN(curEnd) || iv.start > curEnd) {
      if (!Number.isNaN(curEnd)) total += curEnd - curStart;
      curStart = iv.start;
      curEnd = iv.end;
    } else if (iv.end > curEnd) {
      curEnd = iv.end;
    }
  }
  if (!Number.isNaN(curEnd)) total += curEnd - curStart;
  return total;
}

/**
 * The heaviest chain of intervals where each one starts at or after the previous one ended: the work that had
 * to happen one after another (weighted interval scheduling, O(n log n) after sorting, n is small anyway).
 */
export function longestChain<T extends Interval>(intervals: T[]): { ms: number; chain: T[] } {
  const byEnd = [...intervals].sort((a, b) => a.end - b.end);
  const best: number[] = [];
  const prev: number[] = [];
  for (let i = 0; i < byEnd.length; i++) {
    const cur = byEnd[i] as T;
    // last interval (by end) that ends at or before this one starts
    let lo = 0;
    let hi = i - 1;
    let j = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((byEnd[mid] as T).end <= cur.start) {
        j = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const take = cur.end - cur.start + (j >= 0 ? (best[j] as number) : 0);
    const skip = i > 0 ? (best[i - 1] as number) : 0;
    if (take >= skip) {
      best.push(take);
      prev.push(j);
    } else {
      best.push(skip);
      prev.push(-2); // skip marker
    }
  }
  const chain: T[] = [];
  let i = byEnd.length - 1;
  while (i >= 0) {
    if (prev[i] === -2) {
      i--;
      continue;
    }
    chain.unshift(byEnd[i] as T);
    i = prev[i] as number;
  }
  return { ms: best.length ? (best[best.length - 1] as number) : 0, chain };
}

/**
 * The critical path through a dependency graph, with each activity's measured span as its duration: an activity
 * can start once every activity of a type it depends on (that ran before it) has closed. Activities the graph
 * does not name (undos) depend on what closed before them, so a failed run's compensation counts in full.
 */
export function graphCriticalPath(spans: ActivitySpan[], deps: Record<string, readonly string[]>): { ms: number; path: ActivitySpan[] } {
  const sorted = [...spans].sort((a, b) => a.scheduled - b.scheduled);
  const finish = new Map<ActivitySpan, { at: number; via?: ActivitySpan }>();
  let best: { at: number; last?: ActivitySpan } = { at: 0 };
  for (const s of sorted) {
    const wants = deps[s.type];
    let start = 0;
    let via: ActivitySpan | undefined;
    for (const [d, f] of finish) {
      const isDep = wants ? wants.includes(d.type) : true;
      if (isDep && d.closed <= s.scheduled && f.at > start) {
        start = f.at;
        via = d;
      }
    }
    const at = start + (s.closed - s.scheduled);
    finish.set(s, { at, via });
    if (at > best.at) best = { at, last: s };
  }
  const path: ActivitySpan[] = [];
  for (let cur = best.last; cur; cur = finish.get(cur)?.via) path.unshift(cur);
  return { ms: best.at, path };
}
