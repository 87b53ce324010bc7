// One table for every figure, ratio and target of the run; the JSON file; the closing paragraph.
import type { BenchResults, Figure, Section, Target } from './stats';

export function mergeSections(into: BenchResults, s: Section): void {
  Object.assign(into.figures, s.figures);
  Object.assign(into.ratios, s.ratios);
  for (const t of s.targets) into.targets[t.figure] = t;
  into.notes.push(...s.notes);
}

function num(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'x') return v.toFixed(3);
  if (unit === 'count' || unit === 'handshakes' || unit === 'failures' || unit === 'activities') return String(Math.round(v));
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function targetText(t: Target | undefined): string {
  if (!t) return '';
  const verdict = t.met === undefined ? 'n/a' : t.met ? 'met' : 'MISSED';
  return `${t.op} ${num(t.limit, t.unit)} ${t.unit === 'x' ? '' : t.unit} ${verdict}`.replace(/\s+/g, ' ');
}

export function renderTable(r: BenchResults): string {
  const rows: string[][] = [['figure', 'median', 'min', 'max', 'unit', 'runs', 'target']];
  const add = (name: string, f: Figure): void => {
    rows.push([name, num(f.median, f.unit), num(f.min, f.unit), num(f.max, f.unit), f.unit, String(f.runs), targetText(r.targets[name])]);
  };
  for (const [name, f] of Object.entries(r.figures)) add(name, f);
  for (const [name, f] of Object.entries(r.ratios)) add(name, f);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length)));
  const line = (row: string[]): string =>
    row.map((cell, c) => (c === 0 || c === 4 || c === 6 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  const m = r.machine;
  return [
    `pve-vllm bench, ${r.when}: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, ` +
      `load average ${m.loadAverage1m} at start, ${r.loadAverageAtEnd} at end`,
    line(rows[0]!),
    sep,
    ...rows.slice(1).map(line),
  ].join('\n');
}

/** The one-paragraph summary printed at the end: what held, what did not, what was not measured. */
export function summaryParagraph(r: BenchResults): string {
  const all = Object.values(r.targets);
  const met = all.filter((t) => t.met === true);
  const missed = all.filter((t) => t.met === false);
  const unmeasured = all.filter((t) => t.met === undefined);
  const say = (t: Target): string => `${t.figure} ${num(t.actual ?? Number.NaN, t.unit)}${t.unit === 'x' ? 'x' : ` ${t.unit}`} (target ${t.op} ${num(t.limit, t.unit)})`;
  const parts = [
    `On ${r.machine.cores} cores and ${r.machine.memoryGiB} GiB (${r.machine.cpuModel}), ${met.length} of ${all.length} targets were met`,
  ];
  if (met.length) parts.push(`met: ${met.map(say).join('; ')}`);
  if (missed.length) parts.push(`missed: ${missed.map(say).join('; ')}`);
  if (unmeasured.length) parts.push(`not measured in this run: ${unmeasured.map((t) => t.figure).join('; ')}`);
  return `${parts.join('. ')}.${r.notes.length ? ` Notes: ${r.notes.join(' ')}` : ''}`;
}
