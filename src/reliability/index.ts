// `npm run reliability`: the crash matrix, faults, the secret scan and hostile input against the lab on a
// dev server of our own (127.0.0.1 only), then ONE summary table. Exit 1 when anything was mishandled.
//   node lib/reliability/index.js [--quick] [--no-demo] [--boundaries 1,5,9]
import { crashRun, killPoints, labelOf, referenceRun, type CrashResult, type Reference } from './crash';
import { FAULT_SCENARIOS, faultRun, type FaultResult } from './faults';
import { hostileCheck } from './hostile';
import { compareJournals, describeEntry } from './journal';
import { stateDifferences } from './host-check';
import { secretsCheck } from './secrets';
import { openEnv, type Env, type Scenario } from './session';
import { renderTable } from './table';
import { exitCodeOf, summaryTable, type Summary } from './summary';

/**
 * The scenario every boundary is killed at. OpenWebUI as the frontend: with ComfyUI the lab's run does not
 * complete yet (see the faults pass), and a crash matrix needs a reference run that completes.
 */
export const MAIN: Scenario = { name: 'crash-keep-openwebui', decide: { openwebui: 'keep', frontend: 'openwebui' }, expect: 'completed' };
/** Mid-activity kills need activities long enough to be caught running: the lab at a slower pace. */
export const SLOW: Scenario = { ...MAIN, name: 'crash-keep-openwebui-slow', timeScale: 0.3 };
/**
 * A fault that makes the run compensate: kills inside steps whose undo must still run afterwards (the undo
 * is registered from the step's result, which a retry after the crash must still report) and inside undos.
 * At the fast pace: at 0.3 the lab's crash-looping vLLM (restart: unless-stopped) is never seen exited.
 */
export const OOM: Scenario = { name: 'crash-vllm-oom', decide: { openwebui: 'keep', frontend: 'comfyui' }, faults: ['vllm-oom'], expect: 'compensated' };

// Kills once the step's PVE task or command has landed in the lab (its effect done, its completion unreported).
export const SLOW_KILLS = [
  { activity: 'ensureVllmContainer', afterOp: 'ct.create' },
  { activity: 'ensureGpuReleasedFromVm', afterOp: 'vm.shutdown' },
  { activity: 'ensureImagePulled', delayMs: 300 },
  { activity: 'verifyVllmServing', afterOp: 'docker compose up' },
];
export const OOM_KILLS = [
  { activity: 'ensureVllmContainer', afterOp: 'ct.create' },
  { activity: 'ensureGpuReleasedFromVm', afterOp: 'vm.shutdown' },
  { activity: 'verifyVllmServing' },
  { activity: 'returnGpuToVm', afterOp: 'pci.driver_override' },
  { activity: 'destroyContainer', afterOp: 'ct.stop' },
];

export function crashTable(results: CrashResult[]): string {
  return renderTable(
    ['scenario', 'kill point', 'killed at', 'completed', 'duplicated side effects', 'missing', 'host lost', 'recovery'],
    results.map((r) => [
      r.scenario,
      r.label,
      r.killed ? r.killedAt : '(not reached)',
      r.completed ? `yes (${r.status})` : `NO (${r.status})`,
      r.duplicated,
      r.missing,
      r.hostLost.length,
      r.recoveryMs !== undefined ? `${(r.recoveryMs / 1000).toFixed(1)} s` : r.closedBeforeRestart ? 'had ended' : '—',
    ]),
  );
}

interface Options {
  quick: boolean;
  demo: boolean;
  boundaries?: number[];
}

function parseArgs(argv: string[]): Options {
  const i = argv.indexOf('--boundaries');
  return {
    quick: argv.includes('--quick'),
    demo: !argv.includes('--no-demo'),
    boundaries: i >= 0 ? (argv[i + 1] ?? '').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0) : undefined,
  };
}

const say = (s: string) => process.stdout.write(`${s}\n`);

async function crashMatrix(env: Env, o: Options, sum: Summary): Promise<CrashResult[]> {
  const results: CrashResult[] = [];
  const refs = new Map<string, Reference>();
  for (const s of [MAIN, OOM, SLOW]) {
    const ref = await referenceRun(env, s);
    sum.runs += 1;
    if (s.faults?.length) sum.faultsInjected += 1;
    if (!ref.outcome.ok) sum.runsNotAsExpected += 1;
    refs.set(s.name, ref);
    say(`reference ${s.name}: ${ref.status}, ${ref.completed.length} activities, ${ref.journal.length} journal entries`);
  }
  // Control: a second uncrashed run must match the reference exactly, or the comparison itself is unsound.
  const main = refs.get(MAIN.name) as Reference;
  const control = await referenceRun(env, MAIN);
  sum.runs += 1;
  const cmp = compareJournals(main.journal, control.journal);
  const diffs = stateDifferences(main.final, control.final);
  say(`control ${MAIN.name}: ${cmp.duplicated.length} extra / ${cmp.missing.length} missing journal entries, ${diffs.length} state differences vs the reference`);
  for (const e of [...cmp.duplicated, ...cmp.missing]) say(`  control mismatch: ${describeEntry(e)}`);
  for (const d of diffs) say(`  control state difference: ${d}`);

  const quickBoundaries = (k: number) => [1, Math.ceil(k / 3), Math.ceil((2 * k) / 3), k];
  const points = [
    ...killPoints(MAIN, main, { boundaries: o.boundaries ?? (o.quick ? quickBoundaries(main.completed.length) : undefined) }),
    ...killPoints(SLOW, refs.get(SLOW.name) as Reference, { boundaries: [], during: o.quick ? SLOW_KILLS.slice(1, 3) : SLOW_KILLS }),
    ...killPoints(OOM, refs.get(OOM.name) as Reference, { boundaries: [], during: o.quick ? OOM_KILLS.slice(0, 2) : OOM_KILLS }),
  ];
  for (const p of points) {
    const ref = refs.get(p.scenario.name) as Reference;
    const r = await crashRun(env, p, ref);
    results.push(r);
    sum.runs += 1;
    if (r.killed) sum.killPoints += 1;
    if (p.scenario.faults?.length) sum.faultsInjected += 1;
    sum.duplicatedSideEffects += r.duplicated;
    sum.hostStatesLost += r.hostLost.length;
    if (!r.completed || !r.killed) sum.runsNotAsExpected += 1;
    say(`${labelOf(p, ref)} [${p.scenario.name}]: ${r.status}, killed ${r.killed ? r.killedAt : 'never (point not reached)'}, duplicated ${r.duplicated}, recovery ${r.recoveryMs ?? '—'} ms`);
    for (const n of r.notes) say(`  ${n}`);
    for (const h of r.hostLost) say(`  host state lost: ${h}`);
  }
  return results;
}

async function faultPass(env: Env, sum: Summary): Promise<FaultResult[]> {
  const out: FaultResult[] = [];
  for (const s of FAULT_SCENARIOS) {
    const r = await faultRun(env, s);
    out.push(r);
    sum.runs += 1;
    sum.faultsInjected += 1;
    sum.hostStatesLost += r.hostLost.length;
    if (!r.ok) sum.runsNotAsExpected += 1;
    say(`${s.name}: ${r.status} (expected ${s.expect})${r.error ? ` — ${r.error.slice(0, 200)}` : ''}`);
    for (const h of r.hostLost) say(`  host state lost: ${h}`);
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  const started = Date.now();
  const env = await openEnv({ log: (l) => process.stderr.write(`[temporal] ${l}\n`) });
  const sum: Summary = { runs: 0, killPoints: 0, faultsInjected: 0, badInputsTried: 0, badInputsMishandled: 0, secretsFound: 0, duplicatedSideEffects: 0, hostStatesLost: 0, runsNotAsExpected: 0 };
  try {
    say(`Temporal dev server ${env.address}; work dir ${env.workDir}\n\n== crash matrix`);
    const crashes = await crashMatrix(env, o, sum);
    say(`\n${crashTable(crashes)}`);

    say('\n== faults');
    await faultPass(env, sum);

    say('\n== secrets');
    const sec = await secretsCheck(env, { demo: o.demo });
    sum.runs += sec.runs;
    sum.faultsInjected += sec.statuses.filter((s) => s.includes('oom')).length;
    sum.secretsFound = sec.findings.length;
    for (const s of sec.statuses) say(`  run ${s}`);
    say(`  scanned ${sec.places.length} places`);
    for (const g of sec.gaps) say(`  NOT SCANNED: ${g}`);
    for (const f of sec.findings) say(`  FOUND ${f.secret} (${f.form}) in ${f.where}: ${f.context}`);

    say('\n== hostile input');
    const h = await hostileCheck(env, {});
    sum.runs += h.deployed.length + 1;
    sum.badInputsTried = h.tried;
    sum.badInputsMishandled = h.problems.length;
    say(`  ${h.tried} tried, ${h.rejected} refused (validation naming the field, or the decision update validator)`);
    say(`  accepted by validation and deployed: ${h.deployed.map((d) => `${d.field}=${JSON.stringify(d.value)} -> ${d.status}`).join('; ') || 'none'}`);
    say(`  decisions: ${h.decisionsTried} invalid tried, ${h.decisionsRefused} refused by the update validator, run kept waiting: ${h.decisionProblems.length === 0 ? 'yes' : 'NO'}`);
    for (const p of h.problems) say(`  PROBLEM ${p}`);
  } finally {
    await env.close();
  }
  say(`\n== summary (${((Date.now() - started) / 60_000).toFixed(1)} min)\n${summaryTable(sum)}`);
  const code = exitCodeOf(sum);
  say(code === 0 ? '\nreliability: OK' : '\nreliability: FAILED (a count after "bad inputs tried" is not 0)');
  return code;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`reliability: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(2);
    },
  );
}
