// The bench's bookkeeping: repeated measurements reduced to median/min/max, ratios between figures of the same
// run, targets, and the machine they ran on. Pure apart from reading the machine's facts.
import { cpus, loadavg, totalmem } from 'node:os';

export interface Figure {
  median: number;
  min: number;
  max: number;
  unit: string;
  runs: number;
  /** the individual samples, so a reader can see the spread rather than trust the summary */
  samples: number[];
  note?: string;
}

export interface Target {
  figure: string;
  /** `<=` or `>=` against `limit` */
  op: '<=' | '>=' | '==';
  limit: number;
  unit: string;
  /** undefined when the figure could not be measured */
  met?: boolean;
  actual?: number;
}

export interface Machine {
  cores: number;
  memoryGiB: number;
  node: string;
  cpuModel: string;
  /** 1-minute load average when the bench started: the 2 cores may be shared with other work */
  loadAverage1m: number;
}

export interface BenchResults {
  machine: Machine;
  figures: Record<string, Figure>;
  ratios: Record<string, Figure>;
  targets: Record<string, Target>;
  notes: string[];
  command: string;
  when: string;
  /** 1-minute load average when the bench ended */
  loadAverageAtEnd?: number;
}

export function machineFacts(): Machine {
  const list = cpus();
  return {
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    cpuModel: (list[0]?.model ?? 'unknown').trim(),
    loadAverage1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function summarize(samples: number[], unit: string, note?: string): Figure {
  return {
    median: median(samples),
    min: samples.length ? Math.min(...samples) : Number.NaN,
    max: samples.length ? Math.max(...samples) : Number.NaN,
    unit,
    runs: samples.length,
    samples,
    ...(note ? { note } : {}),
  };
}

/**
 * Ratio of two figures measured in the same runs, pairwise: run i of `a` over run i of `b`. Pairing keeps a
 * machine-wide slow moment (the 2 cores are shared) from landing on only one side of the ratio.
 */
export function pairedRatio(a: number[], b: number[], note?: string): Figure {
  const n = Math.min(a.length, b.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) r.push((a[i] as number) / (b[i] as number));
  return summarize(r, 'x', note);
}

/** Runs `fn` `runs` times in a row and returns each run's value (fn measures what it wants). */
export async function repeat(runs: number, fn: (i: number) => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) out.push(await fn(i));
  return out;
}

export function checkTarget(t: Omit<Target, 'met' | 'actual'>, fig: Figure | undefined): Target {
  if (!fig || !Number.isFinite(fig.median)) return { ...t };
  const v = fig.median;
  const met = t.op === '<=' ? v <= t.limit : t.op === '>=' ? v >= t.limit : v === t.limit;
  return { ...t, actual: v, met };
}

/** Milliseconds since `start` (from performance.now()), to 0.01 ms. */
export function msSince(start: number): number {
  return Math.round((performance.now() - start) * 100) / 100;
}

/** What one bench item hands back: its figures, ratios between them, targets and plain-text notes. */
export interface Section {
  figures: Record<string, Figure>;
  ratios: Record<string, Figure>;
  targets: Target[];
  notes: string[];
}

export function emptySection(): Section {
  return { figures: {}, ratios: {}, targets: [], notes: [] };
}
