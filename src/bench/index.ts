// `npm run bench`: starts what it needs (dev server, sshd, labs) on loopback, measures, prints one table,
// writes bench-results.json and a closing paragraph. Separate from `npm test`: no figure here fails a build.
//
//   node lib/bench/index.js [--only steps,deploy,concurrency,recovery] [--runs 5] [--steps 50]
//                           [--concurrency 1,10,50] [--time-scale 0.25] [--out bench-results.json]
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startBenchContext } from './context';
import { BENCH_ITEMS, type BenchOptions } from './items';
import { labStartRetries } from './lab-deploy';
import { mergeSections, renderTable, summaryParagraph } from './report';
import { machineFacts, type BenchResults } from './stats';

function parseArgs(argv: string[]): BenchOptions & { only?: string[]; out: string } {
  const opts: BenchOptions & { only?: string[]; out: string } = {
    runs: 5,
    steps: 50,
    concurrency: [1, 10, 50],
    timeScale: 0.25,
    out: 'bench-results.json',
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    i++;
    if (flag === '--only') opts.only = value.split(',');
    else if (flag === '--runs') opts.runs = positive(flag, value);
    else if (flag === '--steps') opts.steps = positive(flag, value);
    else if (flag === '--concurrency') opts.concurrency = value.split(',').map((v) => positive(flag, v));
    else if (flag === '--out') opts.out = value;
    else if (flag === '--time-scale') {
      opts.timeScale = Number(value);
      if (!(opts.timeScale > 0 && opts.timeScale <= 10)) throw new Error(`--time-scale: expected a number in (0, 10], got ${value}`);
    }
    else throw new Error(`unknown flag ${flag}`);
  }
  if (opts.runs < 5) process.stderr.write(`note: --runs ${opts.runs} is below the 5 runs a published figure needs\n`);
  if (opts.steps < 2) throw new Error('--steps must be at least 2 (the one-step run is subtracted)');
  return opts;
}

function positive(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got ${v}`);
  return n;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  Runtime.install({ logger: new DefaultLogger('WARN', ({ level, message }) => log(`[worker ${level}] ${message}`)) });
  const results: BenchResults = {
    machine: machineFacts(),
    figures: {},
    ratios: {},
    targets: {},
    notes: [],
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    when: new Date().toISOString(),
  };
  const selected = BENCH_ITEMS.filter((item) => !opts.only || opts.only.includes(item.name));
  if (selected.length === 0) throw new Error(`--only names none of: ${BENCH_ITEMS.map((i) => i.name).join(', ')}`);
  let crashed = 0;
  // A lab server that fails to listen (a port taken between probe and listen) throws outside any await: keep the
  // figures measured so far rather than lose the whole run with the process.
  process.once('uncaughtException', (err) => {
    log(`bench: uncaught ${err.stack ?? err.message}`);
    results.notes.push(`The run was cut short by an uncaught error (${err.message.split('\n')[0]}); figures after it are missing.`);
    finish(results, opts.out);
    process.exit(1);
  });
  const ctx = await startBenchContext(log);
  log(`dev server ${ctx.address} (${ctx.server.cli.source})`);
  try {
    for (const item of selected) {
      const started = Date.now();
      log(`== ${item.name}: ${item.title}`);
      try {
        mergeSections(results, await item.run(ctx, opts));
      } catch (err) {
        crashed++;
        const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
        log(`${item.name} failed: ${msg}`);
        results.notes.push(`${item.name} could not be measured: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}.`);
        for (const t of item.targets) results.targets[t.figure] ??= { ...t };
      }
      log(`   (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await ctx.close();
  }
  finish(results, opts.out);
  return crashed > 0 ? 1 : 0;
}

function finish(results: BenchResults, path: string): void {
  results.loadAverageAtEnd = machineFacts().loadAverage1m;
  if (labStartRetries > 0) results.notes.push(`${labStartRetries} lab start-up(s) failed (lab key generation) and were tried again; no deploy was affected.`);
  if (results.machine.loadAverage1m > 1 || results.loadAverageAtEnd > 1) {
    results.notes.push(`The machine was busy with other work (load average ${results.machine.loadAverage1m} at start, ${results.loadAverageAtEnd} at end, on ${results.machine.cores} cores): timings are pessimistic.`);
  }
  const out = resolve(path);
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${renderTable(results)}\n\n${summaryParagraph(results)}\n\nwritten: ${out}\n`);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
