// Item 6: SIGKILL the worker process in the middle of the image pull, start a new one, and time how long the
// workflow takes to move again: to the pull's restart on the new worker and to the next completed activity.
import type { WorkflowHandle } from '@temporalio/client';
import { spawnWorker, type ChildWorker } from './child';
import { freshQueue, type BenchContext } from './context';
import { completionsAfter, lastAttempt, timestampMs } from './history';
import { startBenchDeploy, startBenchLab } from './lab-deploy';
import { checkTarget, emptySection, summarize, type Section } from './stats';

export interface RecoveryOptions {
  runs: number;
  timeScale: number;
}

const PULL = 'ensureImagePulled';
const STARTED = 2; // temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED

interface Recovery {
  /** new worker spawned -> polling */
  workerStartMs: number;
  /** new worker spawned -> the pull running again */
  restartMs: number;
  /** new worker spawned -> next activity completed (the workflow's next progress) */
  progressMs: number;
  next: string;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function pendingPull(handle: WorkflowHandle): Promise<{ attempt: number; lastStarted: number } | undefined> {
  const d = await handle.describe();
  const p = d.raw.pendingActivities?.find((a) => a.activityType?.name === PULL && Number(a.state) === STARTED);
  return p ? { attempt: p.attempt ?? 1, lastStarted: timestampMs(p.lastStartedTime) } : undefined;
}

async function once(ctx: BenchContext, timeScale: number): Promise<Recovery> {
  const bench = await startBenchLab(timeScale);
  const taskQueue = freshQueue('recovery');
  const workers: ChildWorker[] = [];
  let handle: WorkflowHandle | undefined;
  try {
    workers.push(await spawnWorker(ctx, taskQueue));
    handle = await startBenchDeploy(ctx, taskQueue, `${taskQueue}-wf`, bench.config);
    const h = handle;
    await until('the image pull to start', 300_000, () => pendingPull(h));
    await workers[0]?.kill('SIGKILL');
    const fresh = await spawnWorker(ctx, taskQueue);
    workers.push(fresh);
    // The retry can be over in a few tens of ms (the lab finished the pull the killed worker had asked for, so
    // `docker image inspect` finds the image): look for it among the pending activities and, once it closed,
    // in the history, where its started event carries the attempt.
    const restarted = await until('the pull to run again', 120_000, async () => {
      const p = await pendingPull(h);
      if (p && p.attempt > 1 && p.lastStarted >= fresh.spawnedAt) return p.lastStarted;
      const done = lastAttempt(await h.fetchHistory(), PULL);
      return done && done.attempt > 1 && done.startedAt >= fresh.spawnedAt ? done.startedAt : undefined;
    });
    const next = await until('the next completed activity', 120_000, async () => completionsAfter(await h.fetchHistory(), fresh.spawnedAt)[0]);
    return {
      workerStartMs: fresh.readyAt - fresh.spawnedAt,
      restartMs: restarted - fresh.spawnedAt,
      progressMs: next.at - fresh.spawnedAt,
      next: next.type,
    };
  } finally {
    // The rest of the deploy is not measured: end it rather than wait for it.
    await handle?.terminate('bench: recovery measured').catch(() => undefined);
    for (const w of workers) await w.kill('SIGTERM');
    await bench.stop();
  }
}

export async function benchRecovery(ctx: BenchContext, opts: RecoveryOptions): Promise<Section> {
  const out = emptySection();
  const rs: Recovery[] = [];
  for (let i = 0; i < opts.runs; i++) {
    const r = await once(ctx, opts.timeScale);
    rs.push(r);
    ctx.log(`  recovery ${i + 1}/${opts.runs}: worker up in ${(r.workerStartMs / 1000).toFixed(1)} s, pull restarted after ` +
      `${(r.restartMs / 1000).toFixed(1)} s, ${r.next} completed after ${(r.progressMs / 1000).toFixed(1)} s`);
  }
  out.figures['recovery: new worker process start -> polling'] = summarize(rs.map((r) => r.workerStartMs), 'ms');
  out.figures['recovery: new worker start -> pull running again'] = summarize(rs.map((r) => r.restartMs), 'ms', 'bounded by the 5 s heartbeat timeout + 1 s retry interval');
  out.figures['recovery: new worker start -> next progress'] = summarize(rs.map((r) => r.progressMs), 'ms', 'next activity completed event in the history');
  out.targets.push(checkTarget({ figure: 'recovery: new worker start -> next progress', op: '<=', limit: 10_000, unit: 'ms' }, out.figures['recovery: new worker start -> next progress']));
  return out;
}
