// The undo stack: every change registers its undo right next to it; undos run in reverse order, on failure
// and on cancellation, each in a non-cancellable scope so a cancelled run still puts the host back.
import { CancellationScope, log } from '@temporalio/workflow';
import type { CompensationRecord } from './messages';

interface Undo {
  record: CompensationRecord;
  run: () => Promise<string | void>;
}

export class Saga {
  private readonly undos: Undo[] = [];

  constructor(private readonly records: CompensationRecord[]) {}

  /** Register the undo of a change that has just been made (or is about to be: `drop` it if none was made). */
  add(name: string, run: () => Promise<string | void>): { drop(): void } {
    const record: CompensationRecord = { name, outcome: 'pending' };
    const undo = { record, run };
    this.records.push(record);
    this.undos.push(undo);
    return {
      drop: () => {
        remove(this.undos, undo);
        remove(this.records, record);
      },
    };
  }

  /** Forget undos that must not run any more (the run succeeded). */
  commit(): void {
    for (const u of this.undos) u.record.outcome = 'skipped';
    this.undos.length = 0;
  }

  /** Run every registered undo, newest first. Never throws: each outcome is recorded. */
  async compensate(): Promise<{ ran: number; allDone: boolean }> {
    let allDone = true;
    let ran = 0;
    await CancellationScope.nonCancellable(async () => {
      while (this.undos.length > 0) {
        const undo = this.undos.pop() as Undo;
        ran += 1;
        try {
          const detail = await undo.run();
          undo.record.outcome = 'done';
          if (detail) undo.record.detail = detail;
        } catch (err) {
          allDone = false;
          undo.record.outcome = 'failed';
          undo.record.detail = failureText(err);
          log.error('compensation failed', { name: undo.record.name, error: undo.record.detail });
        }
      }
    });
    return { ran, allDone };
  }
}

function remove<T>(list: T[], item: T): void {
  const at = list.indexOf(item);
  if (at >= 0) list.splice(at, 1);
}

/** An activity failure's own message is "Activity task failed": the reason is in its cause. */
export function failureText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 4; e = (e as { cause?: unknown }).cause) {
    if (e.message && e.message !== 'Activity task failed') parts.push(e.message);
  }
  return parts.join(': ') || String(err);
}
