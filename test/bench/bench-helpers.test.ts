// The bench's arithmetic (no timing here: benchmarks are not tests).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { activitySpans, completionsAfter, graphCriticalPath, lastAttempt, longestChain, scheduledActivityTypes, unionMs, workflowWall, type ActivitySpan } from '../../src/bench/history';
import { STEP_DEPENDENCIES } from '../../src/workflows/graph';
import { median, pairedRatio, summarize, checkTarget } from '../../src/bench/stats';
import { renderTable, summaryParagraph } from '../../src/bench/report';

describe('bench statistics', () => {
  it('takes the median of odd and even counts', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('summarizes min/max/runs and pairs ratios run by run', () => {
    expect(summarize([3, 1, 2], 'ms')).toMatchObject({ median: 2, min: 1, max: 3, runs: 3, unit: 'ms' });
    expect(pairedRatio([10, 20, 30], [100, 100, 100]).samples).toEqual([0.1, 0.2, 0.3]);
  });

  it('checks targets against the median, and leaves unmeasured ones undecided', () => {
    const t = { figure: 'f', op: '<=' as const, limit: 50, unit: 'ms' };
    expect(checkTarget(t, summarize([40, 60, 45], 'ms')).met).toBe(true);
    expect(checkTarget(t, summarize([60, 70, 45], 'ms')).met).toBe(false);
    expect(checkTarget(t, undefined).met).toBeUndefined();
  });
});

describe('history arithmetic', () => {
  it('unions overlapping intervals', () => {
    expect(unionMs([{ start: 0, end: 10 }, { start: 5, end: 15 }, { start: 20, end: 25 }])).toBe(20);
    expect(unionMs([])).toBe(0);
  });

  it('finds the heaviest chain of intervals in sequence', () => {
    const a = { start: 0, end: 10, n: 'a' };
    const b = { start: 2, end: 30, n: 'b' }; // overlaps a and c: a chain of its own
    const c = { start: 10, end: 20, n: 'c' };
    const d = { start: 31, end: 40, n: 'd' };
    const r = longestChain([a, b, c, d]);
    expect(r.ms).toBe(28 + 9);
    expect(r.chain.map((x) => x.n)).toEqual(['b', 'd']);
    expect(longestChain([a, c, d]).chain.map((x) => x.n)).toEqual(['a', 'c', 'd']);
  });
});

describe('critical path through the step dependency graph', () => {
  const span = (type: string, scheduled: number, closed: number): ActivitySpan => ({ eventId: scheduled, type, scheduled, closed, outcome: 'completed' });
  const graph = { a: [], b: ['a'], c: ['a'], d: ['b', 'c'] };

  it('is the longest path, whatever the deploy actually overlapped', () => {
    // run one after another: b and c did not overlap, but the graph says they could have
    const sequential = [span('a', 0, 10), span('b', 10, 40), span('c', 40, 45), span('d', 45, 50)];
    const r = graphCriticalPath(sequential, graph);
    expect(r.ms).toBe(10 + 30 + 5);
    expect(r.path.map((s) => s.type)).toEqual(['a', 'b', 'd']);
  });

  it('counts an activity the graph does not name (an undo) after everything that closed before it', () => {
    const r = graphCriticalPath([span('a', 0, 10), span('b', 10, 40), span('c', 10, 15), span('undo', 41, 51)], graph);
    expect(r.ms).toBe(10 + 30 + 10);
  });

  it('names every forward activity the recorded deploys scheduled', () => {
    const dir = join(__dirname, '..', 'replay', 'histories');
    const undos = ['removeAdminUser', 'revertAdminUser', 'destroyContainer', 'restoreContainerConfig', 'returnGpuToVm', 'stopVllmService', 'restoreFrontend', 'removeGpuBootUnit'];
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
      // Saved as JSON (event types by name); the bench reads them from the server (by number).
      const types = scheduledActivityTypes(historyFromJSON(JSON.parse(readFileSync(join(dir, f), 'utf8'))));
      expect(types.length).toBeGreaterThan(5);
      expect({ f, missing: types.filter((t) => !(t in STEP_DEPENDENCIES) && !undos.includes(t)) }).toEqual({ f, missing: [] });
      for (const deps of Object.values(STEP_DEPENDENCIES)) for (const d of deps) expect(d in STEP_DEPENDENCIES).toBe(true);
    }
  });
});

describe('bench report', () => {
  it('prints one table with figures, ratios and target verdicts, and a summary', () => {
    const r = {
      machine: { cores: 2, memoryGiB: 24, node: 'v20', cpuModel: 'cpu', loadAverage1m: 0.5 },
      figures: { 'ours: per-step overhead': summarize([10, 12, 11], 'ms') },
      ratios: { 'ours / ansible': summarize([0.05], 'x') },
      targets: {
        'ours: per-step overhead': checkTarget({ figure: 'ours: per-step overhead', op: '<=', limit: 50, unit: 'ms' }, summarize([10, 12, 11], 'ms')),
        'never measured': { figure: 'never measured', op: '<=' as const, limit: 1, unit: 'x' },
      },
      notes: ['n1.'],
      command: 'npm run bench',
      when: '2026-01-01T00:00:00Z',
      loadAverageAtEnd: 0.4,
    };
    const table = renderTable(r);
    expect(table).toMatch(/ours: per-step overhead\s+11\.0\s+10\.0\s+12\.0\s+ms\s+3\s+<= 50\.0 ms met/);
    expect(table).toMatch(/ours \/ ansible\s+0\.050/);
    const summary = summaryParagraph(r);
    expect(summary).toContain('1 of 2 targets were met');
    expect(summary).toContain('not measured in this run: never measured');
  });
});

describe('history reading', () => {
  const ts = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
  // Hand-made: seconds as plain numbers (the server sends Longs; timestampMs takes both).
  const history = {
    events: [
      { eventId: 1, eventType: 1, eventTime: ts(1000) },
      { eventId: 5, eventType: 10, eventTime: ts(1100), activityTaskScheduledEventAttributes: { activityType: { name: 'inspectHost' } } },
      { eventId: 6, eventType: 11, eventTime: ts(1150), activityTaskStartedEventAttributes: { scheduledEventId: 5 } },
      { eventId: 7, eventType: 12, eventTime: ts(1400), activityTaskCompletedEventAttributes: { scheduledEventId: 5 } },
      { eventId: 11, eventType: 10, eventTime: ts(1500), activityTaskScheduledEventAttributes: { activityType: { name: 'ensureImagePulled' } } },
      { eventId: 12, eventType: 14, eventTime: ts(2500), activityTaskTimedOutEventAttributes: { scheduledEventId: 11 } },
      { eventId: 20, eventType: 2, eventTime: ts(2600) },
    ],
  } as unknown as Parameters<typeof activitySpans>[0];

  it('pairs scheduled and closing events into spans, with outcomes', () => {
    expect(activitySpans(history)).toEqual([
      { eventId: 5, type: 'inspectHost', scheduled: 1100, started: 1150, closed: 1400, outcome: 'completed' },
      { eventId: 11, type: 'ensureImagePulled', scheduled: 1500, started: undefined, closed: 2500, outcome: 'timed-out' },
    ]);
    expect(scheduledActivityTypes(history)).toEqual(['inspectHost', 'ensureImagePulled']);
  });

  it("reads the attempt and start of an activity's last attempt once it closed", () => {
    expect(lastAttempt(history, 'inspectHost')).toEqual({ attempt: 1, startedAt: 1150 });
    expect(lastAttempt(history, 'ensureImagePulled')).toBeUndefined(); // never started
    expect(lastAttempt(history, 'verifyVllmServing')).toBeUndefined(); // never scheduled
    const retried = {
      events: [
        { eventId: 5, eventType: 10, eventTime: ts(1100), activityTaskScheduledEventAttributes: { activityType: { name: 'ensureImagePulled' } } },
        { eventId: 6, eventType: 11, eventTime: ts(7100), activityTaskStartedEventAttributes: { scheduledEventId: 5, attempt: 2 } },
        { eventId: 7, eventType: 12, eventTime: ts(7150), activityTaskCompletedEventAttributes: { scheduledEventId: 5 } },
      ],
    } as unknown as Parameters<typeof activitySpans>[0];
    expect(lastAttempt(retried, 'ensureImagePulled')).toEqual({ attempt: 2, startedAt: 7100 });
  });

  it('measures the run from start to close, and finds completions after a moment', () => {
    expect(workflowWall(history)).toEqual({ start: 1000, end: 2600, ms: 1600 });
    expect(completionsAfter(history, 1200)).toEqual([{ at: 1400, type: 'inspectHost' }]);
    expect(completionsAfter(history, 1500)).toEqual([]);
  });
});
