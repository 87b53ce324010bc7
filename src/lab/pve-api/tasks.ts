/**
 * Worker tasks (PVE's fork_worker): an async API call answers with the UPID at once, the work runs on the
 * lab's scaled clock, and `/tasks/{upid}/status` goes `running` → `stopped` with `OK`, `WARNINGS: n` or the
 * error text; the log ends with `TASK OK` / `TASK WARNINGS: n` / `TASK ERROR: …` (LabHost.finishTask).
 */
import { LabError, type LabHost } from '../host';
import type { TaskRecord } from '../state';
import type { Caller } from './auth';

export interface TaskContext {
  /** One line of worker output into the task log. */
  log(line: string): void;
  /** A `warn` inside the worker: logged as `WARN: …` and counted into `WARNINGS: n`. */
  warn(line: string): void;
  /** Spend a realistic duration (ms at timeScale 1), scaled by the lab clock. */
  delay(realisticMs: number): Promise<void>;
}

export type TaskWork = (ctx: TaskContext) => Promise<void>;

export class TaskRunner {
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly host: LabHost) {}

  /** Start a worker; returns its UPID immediately, as the API answers before the work is done. */
  start(type: string, id: string, caller: Caller, work: TaskWork): string {
    const task = this.host.newTask(type, id, caller.authid);
    const run = this.execute(task, work).finally(() => this.inflight.delete(run));
    this.inflight.add(run);
    return task.upid;
  }

  private async execute(task: TaskRecord, work: TaskWork): Promise<void> {
    let warnings = 0;
    const ctx: TaskContext = {
      log: (line) => this.host.taskLog(task, line),
      warn: (line) => {
        warnings += 1;
        this.host.taskLog(task, `WARN: ${line}`);
      },
      delay: (ms) => this.host.delay(ms),
    };
    try {
      await work(ctx);
      this.host.finishTask(task, warnings > 0 ? `WARNINGS: ${warnings}` : 'OK');
    } catch (err) {
      const text = (err instanceof LabError || err instanceof Error ? err.message : String(err)).replace(/\n+$/, '');
      // Output printed before the worker died goes to the log; the die text (last line) is the exit status.
      const lines = text.split('\n');
      const last = lines.pop() ?? '';
      for (const line of lines) this.host.taskLog(task, line);
      this.host.finishTask(task, last);
    }
  }

  /** Wait for all running workers (the lab stops only after its tasks reached a final state). */
  async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }
}

/** Task status as GET /nodes/{node}/tasks/{upid}/status returns it (a token's name goes to `tokenid`). */
export function taskStatus(task: TaskRecord): Record<string, unknown> {
  const bang = task.user.indexOf('!');
  const out: Record<string, unknown> = {
    upid: task.upid, node: task.node, pid: task.pid, pstart: task.pstart, starttime: task.starttime,
    type: task.type, id: task.id, user: bang >= 0 ? task.user.slice(0, bang) : task.user, status: task.status,
  };
  if (bang >= 0) out.tokenid = task.user.slice(bang + 1);
  if (task.status === 'stopped') out.exitstatus = task.exitstatus;
  return out;
}

/** dump_logfile: `[{n, t}]` from `start`, at most `limit` lines (0 = all), `no content` for an empty log. */
export function taskLogLines(task: TaskRecord, start: number, limit: number): { lines: Array<{ n: number; t: string }>; total: number } {
  const all = task.log;
  if (all.length === 0) return { lines: [{ n: 1, t: 'no content' }], total: 1 };
  const slice = all.slice(start, limit === 0 ? undefined : start + limit);
  return { lines: slice.map((t, i) => ({ n: start + i + 1, t })), total: all.length };
}
