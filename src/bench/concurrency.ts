// Item 4: K deploys at once on one worker process, each against its own lab. Wall time from the first start to
// the last result, the worker process's peak RSS (VmHWM: the worker alone, not the labs) and failures.
import { spawnWorker } from './child';
import { freshQueue, type BenchContext } from './context';
import { runToEnd, startBenchDeploy, startBenchLab, stopAll, type BenchLab } from './lab-deploy';
import { checkTarget, emptySection, pairedRatio, summarize, type Section } from './stats';

export interface ConcurrencyOptions {
  runs: number;
  ks: number[];
  timeScale: number;
}

interface Round {
  wallMs: number;
  peakRssMB: number;
  failures: number;
  firstError?: string;
}

async function round(ctx: BenchContext, k: number, timeScale: number): Promise<Round> {
  const labs: BenchLab[] = [];
  const taskQueue = freshQueue(`k${k}`);
  try {
    // Labs start before the clock does: their start-up is not the orchestrator's cost.
    for (let i = 0; i < k; i++) labs.push(await startBenchLab(timeScale));
    const worker = await spawnWorker(ctx, taskQueue);
    try {
      const started = performance.now();
      const outcomes = await Promise.all(
        labs.map(async (l, i) => runToEnd(await startBenchDeploy(ctx, taskQueue, `${taskQueue}-${i}`, l.config), started)),
      );
      const wallMs = performance.now() - started;
      const failed = outcomes.filter((o) => o.progress.status !== 'completed');
      return { wallMs, peakRssMB: worker.peakRssMB(), failures: failed.length, firstError: failed[0]?.progress.error };
    } finally {
      await worker.kill('SIGTERM');
    }
  } finally {
    await stopAll(labs);
  }
}

export async function benchConcurrency(ctx: BenchContext, opts: ConcurrencyOptions): Promise<Section> {
  const out = emptySection();
  const ks = [...new Set([1, ...opts.ks])].sort((a, b) => a - b);
  const wall = new Map<number, number[]>();
  let worstRss = 0;
  for (const k of ks) {
    const rounds: Round[] = [];
    for (let i = 0; i < opts.runs; i++) {
      const r = await round(ctx, k, opts.timeScale);
      rounds.push(r);
      ctx.log(`  K=${k} run ${i + 1}/${opts.runs}: wall ${(r.wallMs / 1000).toFixed(1)} s, worker peak RSS ${r.peakRssMB.toFixed(0)} MB, ` +
        `${r.failures} failures${r.firstError ? ` (${r.firstError.split('\n')[0]})` : ''}`);
    }
    wall.set(k, rounds.map((r) => r.wallMs));
    worstRss = Math.max(worstRss, ...rounds.map((r) => r.peakRssMB));
    out.figures[`concurrency: wall, K=${k}`] = summarize(rounds.map((r) => r.wallMs), 'ms', `${k} deploys, one worker, lab timeScale ${opts.timeScale}`);
    out.figures[`concurrency: worker peak RSS, K=${k}`] = summarize(rounds.map((r) => r.peakRssMB), 'MB');
    out.figures[`concurrency: failures, K=${k}`] = summarize(rounds.map((r) => r.failures), 'failures');
    out.targets.push(checkTarget({ figure: `concurrency: failures, K=${k}`, op: '<=', limit: 0, unit: 'failures' }, out.figures[`concurrency: failures, K=${k}`]));
  }
  const one = wall.get(1) ?? [];
  for (const k of ks) {
    if (k === 1) continue;
    out.ratios[`concurrency: wall(${k}) / wall(1)`] = pairedRatio(wall.get(k) ?? [], one);
  }
  const kMax = ks[ks.length - 1] as number;
  if (kMax > 1) out.targets.push(checkTarget({ figure: `concurrency: wall(${kMax}) / wall(1)`, op: '<=', limit: 1.5, unit: 'x' }, out.ratios[`concurrency: wall(${kMax}) / wall(1)`]));
  out.targets.push(checkTarget({ figure: `concurrency: worker peak RSS, K=${kMax}`, op: '<=', limit: 300, unit: 'MB' }, out.figures[`concurrency: worker peak RSS, K=${kMax}`]));
  out.notes.push(`Concurrency: the worker runs in its own process (peak RSS is VmHWM of that process; worst seen ${worstRss.toFixed(0)} MB); the labs run in the bench process.`);
  return out;
}
