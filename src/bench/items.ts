// The bench items in the order they run. Each starts and stops what it needs and returns a Section.
import type { BenchContext } from './context';
import { benchStepOverhead } from './step-overhead';
import type { Section, Target } from './stats';

export interface BenchOptions {
  runs: number;
  /** N of the per-step item */
  steps: number;
  /** K values of the concurrency item */
  concurrency: number[];
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
];
