// Compares the lab journal of a crashed run with that of an uncrashed reference run of the same scenario.
// Pure: shared by `npm run reliability` and the jest tests.
import type { JournalEntry } from '../lab/state';

/**
 * Parts of a journal detail that differ between two runs of the same scenario without meaning a different
 * effect: task ids (UPIDs), MAC addresses PVE generates, hex ids/digests (docker image ids), timestamps and
 * long numbers (pids, epoch seconds). Everything else (paths, config keys and values, guest ids) is kept.
 */
export function normalizeDetail(detail: string): string {
  return detail
    .replace(/UPID:[^\s,;]+/g, 'UPID:*')
    .replace(/\b[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}\b/g, 'MAC')
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?/g, 'TIME')
    .replace(/\b(sha256:)?[0-9a-f]{12,}\b/g, 'HEX')
    .replace(/\b\d{5,}\b/g, 'N');
}

/** What identifies one mutating operation: where it came in, what it did, to which guest, with what detail. */
export function journalKey(e: Pick<JournalEntry, 'via' | 'op' | 'guest' | 'detail'>): string {
  return `${e.via} ${e.op} ${e.guest ?? '-'} ${normalizeDetail(e.detail)}`;
}

export interface JournalComparison {
  /**
   * Duplicated side effects: entries of the crashed run beyond what the reference run did, as a multiset
   * difference over journalKey. The lab journals only operations that changed something (reads and no-op
   * re-runs add nothing), so every extra entry is a mutation the crash made us apply again: an activity
   * that was retried after its effect had landed and did it a second time instead of finding it done.
   * An extra entry with the same key as a reference entry (`sameKey`) re-applied the same operation (e.g.
   * the same `pct set`); one with a key the reference never has (`newKey`) did something the uncrashed run
   * never does. Both count: "repeated but harmless" is exactly what we want a test to prove, not assume.
   */
  duplicated: Array<JournalEntry & { kind: 'sameKey' | 'newKey' }>;
  /** Reference operations the crashed run never applied (a step skipped after recovery). */
  missing: JournalEntry[];
}

export function compareJournals(reference: JournalEntry[], crashed: JournalEntry[]): JournalComparison {
  const remaining = new Map<string, JournalEntry[]>();
  for (const e of reference) {
    const k = journalKey(e);
    const list = remaining.get(k) ?? [];
    list.push(e);
    remaining.set(k, list);
  }
  const refKeys = new Set(remaining.keys());
  const duplicated: JournalComparison['duplicated'] = [];
  for (const e of crashed) {
    const list = remaining.get(journalKey(e));
    if (list && list.length > 0) list.shift();
    else duplicated.push({ ...e, kind: refKeys.has(journalKey(e)) ? 'sameKey' : 'newKey' });
  }
  const missing = [...remaining.values()].flat().sort((a, b) => a.seq - b.seq);
  return { duplicated, missing };
}

export function describeEntry(e: Pick<JournalEntry, 'via' | 'op' | 'guest' | 'detail'>): string {
  return `${e.via} ${e.op}${e.guest !== undefined ? ` [${e.guest}]` : ''}: ${e.detail}`;
}
