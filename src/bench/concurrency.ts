// Item 4: K deploys at once on one worker process, each against its own lab. Wall time from the first start to
// the last result, the worker process's peak RSS (VmHWM: the worker alone, not the labs) and failures.
import { cpus } from 'node:os';
import { spawnWorker } from './child';
import { cpuSeconds, devServerPid } from './cpu';
import { freshQueue, type BenchContext } from './context';
import { runToEnd, startBenchDeploy } from './lab-deploy';
import { startLabThread } from './lab-thread';
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
  /** CPU seconds used during the round (start of the first deploy to the last result), by process */
  cpu: { worker: number; hosts: number; server: number };
}

/** CPU seconds so far of the worker, this process (the simulated hosts and the client) and the dev server. */
function cpuNow(workerPid: number, serverPid: number | undefined): Round['cpu'] {
  return { worker: cpuSeconds(workerPid) ?? Number.NaN, hosts: cpuSeconds('self') ?? Number.NaN, server: serverPid ? (cpuSeconds(serverPid) ?? Number.NaN) : Number.NaN };
}

async function round(ctx: BenchContext, k: number, timeScale: number): Promise<Round> {
  const taskQueue = freshQueue(`k${k}`);
  // Labs start before the clock does: their start-up is not the orchestrator's cost.
  const labs = await startLabThread(k, timeScale);
  try {
    const worker = await spawnWorker(ctx, taskQueue);
    const serverPid = devServerPid(ctx.address);
    try {
      const cpu0 = cpuNow(worker.pid, serverPid);
      const started = performance.now();
      const outcomes = await Promise.all(
        labs.configs.map(async (config, i) => runToEnd(await startBenchDeploy(ctx, taskQueue, `${taskQueue}-${i}`, config), started)),
      );
      const wallMs = performance.now() - started;
      const cpu1 = cpuNow(worker.pid, serverPid);
      const cpu = { worker: cpu1.worker - cpu0.worker, hosts: cpu1.hosts - cpu0.hosts, server: cpu1.server - cpu0.server };
      const failed = outcomes.filter((o) => o.progress.status !== 'completed');
      return { wallMs, peakRssMB: worker.peakRssMB(), failures: failed.length, firstError: failed[0]?.progress.error, cpu };
    } finally {
      await worker.kill('SIGTERM');
    }
  } finally {
    await labs.stop();
  }
}

export async function benchConcurrency(ctx: BenchContext, opts: ConcurrencyOptions): Promise<Section> {
  const out = emptySection();
  const ks = [...new Set([1, ...opts.ks])].sort((a, b) => a - b);
  // Each run takes every K in turn, so that a ratio pairs rounds a minute apart, not a block of K = 1 rounds
  // with a block of K = 50 rounds several minutes later: the machine's speed drifts (see the README). The order
  // alternates, so that K = 1 does not always follow the previous run's K = 50 (and its leftovers).
  const roundsOf = new Map<number, Round[]>(ks.map((k) => [k, []]));
  for (let i = 0; i < opts.runs; i++) {
    for (const k of i % 2 === 0 ? ks : [...ks].reverse()) {
      const r = await round(ctx, k, opts.timeScale);
      roundsOf.get(k)?.push(r);
      ctx.log(`  K=${k} run ${i + 1}/${opts.runs}: wall ${(r.wallMs / 1000).toFixed(1)} s, worker peak RSS ${r.peakRssMB.toFixed(0)} MB, ` +
        `${r.failures} failures${r.firstError ? ` (${r.firstError.split('\n')[0]})` : ''}; CPU s: worker ${r.cpu.worker.toFixed(1)}, ` +
        `hosts ${r.cpu.hosts.toFixed(1)}, server ${r.cpu.server.toFixed(1)}`);
    }
  }
  const wall = new Map<number, number[]>();
  /** per round: seconds the cores needed for the round's CPU (all three processes), had they never idled */
  const cpuFloorMs = new Map<number, number[]>();
  let worstRss = 0;
  for (const k of ks) {
    const rounds = roundsOf.get(k) ?? [];
    wall.set(k, rounds.map((r) => r.wallMs));
    cpuFloorMs.set(k, rounds.map((r) => ((r.cpu.worker + r.cpu.hosts + r.cpu.server) * 1000) / cpus().length));
    worstRss = Math.max(worstRss, ...rounds.map((r) => r.peakRssMB));
    out.figures[`concurrency: wall, K=${k}`] = summarize(rounds.map((r) => r.wallMs), 'ms', `${k} deploys, one worker, lab timeScale ${opts.timeScale}`);
    out.figures[`concurrency: worker peak RSS, K=${k}`] = summarize(rounds.map((r) => r.peakRssMB), 'MB');
    out.figures[`concurrency: failures, K=${k}`] = summarize(rounds.map((r) => r.failures), 'failures');
    // Where the time went: per deploy, by process, and the round's CPU demand against what the cores could give.
    const perDeploy = (f: (r: Round) => number) => rounds.map((r) => f(r) / k);
    out.figures[`concurrency: worker CPU per deploy, K=${k}`] = summarize(perDeploy((r) => r.cpu.worker * 1000), 'ms', 'the orchestrator: activities, SSH and API clients, workflow thread');
    out.figures[`concurrency: simulated hosts' CPU per deploy, K=${k}`] = summarize(perDeploy((r) => r.cpu.hosts * 1000), 'ms', 'the labs (their own thread) and the bench client, same process');
    out.figures[`concurrency: Temporal server CPU per deploy, K=${k}`] = summarize(perDeploy((r) => r.cpu.server * 1000), 'ms', 'the dev server');
    out.figures[`concurrency: CPU busy / (cores x wall), K=${k}`] = summarize(
      rounds.map((r) => (r.cpu.worker + r.cpu.hosts + r.cpu.server) / (cpus().length * (r.wallMs / 1000))), 'x', 'near 1: the round was CPU-bound');
    out.targets.push(checkTarget({ figure: `concurrency: failures, K=${k}`, op: '<=', limit: 0, unit: 'failures' }, out.figures[`concurrency: failures, K=${k}`]));
  }
  const one = wall.get(1) ?? [];
  for (const k of ks) {
    if (k === 1) continue;
    out.ratios[`concurrency: wall(${k}) / wall(1)`] = pairedRatio(wall.get(k) ?? [], one);
    // The bound this machine sets: the round's CPU spread over every core with none idle, against wall(1). The
    // simulated hosts' share is in it, though on real hardware each host has CPUs of its own.
    out.ratios[`concurrency: CPU floor(${k}) / wall(1)`] = pairedRatio(cpuFloorMs.get(k) ?? [], one, 'worker + hosts + server CPU / cores');
  }
  const kMax = ks[ks.length - 1] as number;
  if (kMax > 1) out.targets.push(checkTarget({ figure: `concurrency: wall(${kMax}) / wall(1)`, op: '<=', limit: 1.5, unit: 'x' }, out.ratios[`concurrency: wall(${kMax}) / wall(1)`]));
  out.targets.push(checkTarget({ figure: `concurrency: worker peak RSS, K=${kMax}`, op: '<=', limit: 300, unit: 'MB' }, out.figures[`concurrency: worker peak RSS, K=${kMax}`]));
  out.notes.push(`Concurrency: the worker runs in its own process (peak RSS is VmHWM of that process; worst seen ${worstRss.toFixed(0)} MB); the labs run in the bench process, on a thread of their own.`);
  return out;
}
