// The bench items in the order they run. Each starts and stops what it needs and returns a Section.
import { benchConcurrency } from './concurrency';
import type { BenchContext } from './context';
import { benchDeployProfile } from './deploy-profile';
import { benchRecovery } from './recovery';
import { benchStepOverhead } from './step-overhead';
import type { Section, Target } from './stats';

export interface BenchOptions {
  runs: number;
  /** N of the per-step item */
  steps: number;
  /** K values of the concurrency item */
  concurrency: number[];
  /** the labs' time profile: 1 = the lab's demo pace, smaller is faster */
  timeScale: number;
}

export interface BenchItem {
  name: string;
  title: string;
  /** listed as unmeasured when the item crashes, so a missing figure is visible, not silently absent */
  targets: Array<Omit<Target, 'met' | 'actual'>>;
  run(ctx: BenchContext, opts: BenchOptions): Promise<Section>;
}

export const BENCH_ITEMS: BenchItem[] = [
  {
    name: 'steps',
    title: 'per-step overhead against Ansible',
    targets: [
      { figure: 'ours: per-step overhead', op: '<=', limit: 50, unit: 'ms' },
      { figure: 'per-step overhead ours / ansible', op: '<=', limit: 0.2, unit: 'x' },
    ],
    run: (ctx, o) => benchStepOverhead(ctx, { runs: o.runs, n: o.steps }),
  },
  {
    name: 'deploy',
    title: 'SSH connection reuse and the critical path, from the same demo deploys',
    targets: [
      { figure: 'reuse: handshakes / distinct SSH logins', op: '<=', limit: 1, unit: 'x' },
      { figure: 'critical path: wall / critical path', op: '<=', limit: 1.05, unit: 'x' },
      { figure: 'deploy: failures', op: '<=', limit: 0, unit: 'failures' },
      { figure: 'reuse: failures of deploys with one SSH drop', op: '<=', limit: 0, unit: 'failures' },
    ],
    run: (ctx, o) => benchDeployProfile(ctx, { runs: o.runs, timeScale: o.timeScale }),
  },
  {
    name: 'concurrency',
    title: 'K concurrent deploys on one worker',
    targets: [
      { figure: 'concurrency: wall(50) / wall(1)', op: '<=', limit: 1.5, unit: 'x' },
      { figure: 'concurrency: worker peak RSS, K=50', op: '<=', limit: 300, unit: 'MB' },
    ],
    run: (ctx, o) => benchConcurrency(ctx, { runs: o.runs, ks: o.concurrency, timeScale: o.timeScale }),
  },
  {
    name: 'recovery',
    title: 'worker SIGKILLed mid-pull, time to the next progress on a new worker',
    targets: [{ figure: 'recovery: new worker start -> next progress', op: '<=', limit: 10_000, unit: 'ms' }],
    run: (ctx, o) => benchRecovery(ctx, { runs: o.runs, timeScale: o.timeScale }),
  },
];
