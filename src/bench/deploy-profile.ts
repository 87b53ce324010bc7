// Items 3 and 5, from the same deploys: SSH connection reuse (handshakes the lab saw against the activities that
// used SSH) and the critical path (wall time against the longest path through the step dependency graph).
import { createActivityDeps } from '../activities/deps';
import { createDeployWorker } from '../worker';
import { freshQueue, type BenchContext } from './context';
import { STEP_DEPENDENCIES } from '../workflows/graph';
import { activitySpans, graphCriticalPath, scheduledActivityTypes, unionMs, workflowWall } from './history';
import { CountingSshPool, runToEnd, startBenchDeploy, startBenchLab } from './lab-deploy';
import { checkTarget, emptySection, pairedRatio, summarize, type Section } from './stats';

export interface DeployProfileOptions {
  runs: number;
  timeScale: number;
}

interface OneDeploy {
  status: string;
  error?: string;
  labHandshakes: number;
  poolHandshakes: number;
  sshActivities: number;
  sshTargets: number;
  scheduled: number;
  wallMs: number;
  sumMs: number;
  chainMs: number;
  unionMs: number;
  chain: string[];
}

async function oneDeploy(ctx: BenchContext, timeScale: number, faults: Array<'ssh-drop'>): Promise<OneDeploy> {
  const bench = await startBenchLab(timeScale, faults);
  const pool = new CountingSshPool({ idleTimeoutMs: 60_000 });
  try {
    const taskQueue = freshQueue('deploy');
    const { worker } = await createDeployWorker({
      connection: ctx.nc,
      namespace: 'default',
      taskQueue,
      workflowBundle: await ctx.deployBundle(),
      deps: createActivityDeps({ ssh: pool }),
    });
    const workflowId = `${taskQueue}-wf`;
    const outcome = await worker.runUntil(async () => {
      const started = performance.now();
      const handle = await startBenchDeploy(ctx, taskQueue, workflowId, bench.config);
      return runToEnd(handle, started);
    });
    const history = await ctx.client.workflow.getHandle(workflowId).fetchHistory();
    const spans = activitySpans(history).map((s) => ({ ...s, start: s.scheduled, end: s.closed }));
    const critical = graphCriticalPath(spans, STEP_DEPENDENCIES);
    const usage = pool.usage(workflowId);
    return {
      status: outcome.progress.status,
      error: outcome.progress.error,
      labHandshakes: bench.lab.handshakes(),
      poolHandshakes: pool.handshakes,
      sshActivities: usage.activities,
      sshTargets: usage.targets,
      scheduled: scheduledActivityTypes(history).length,
      wallMs: workflowWall(history)?.ms ?? outcome.wallMs,
      sumMs: spans.reduce((a, s) => a + (s.end - s.start), 0),
      chainMs: critical.ms,
      unionMs: unionMs(spans),
      chain: critical.path.map((s) => s.type),
    };
  } finally {
    await pool.close();
    await bench.stop();
  }
}

export async function benchDeployProfile(ctx: BenchContext, opts: DeployProfileOptions): Promise<Section> {
  const out = emptySection();
  const runs: OneDeploy[] = [];
  for (let i = 0; i < opts.runs; i++) {
    const r = await oneDeploy(ctx, opts.timeScale, []);
    runs.push(r);
    ctx.log(`  deploy ${i + 1}/${opts.runs}: ${r.status} in ${(r.wallMs / 1000).toFixed(1)} s; lab handshakes ${r.labHandshakes} ` +
      `for ${r.sshActivities} SSH-using activities (${r.sshTargets} targets); critical path ${(r.chainMs / 1000).toFixed(1)} s` +
      (r.error ? `; error: ${r.error.split('\n')[0]}` : ''));
  }
  const failures = runs.filter((r) => r.status !== 'completed');
  // A failed deploy stops early: its timings would flatter the critical path, so completed runs are the basis.
  const completed = runs.filter((r) => r.status === 'completed');
  const basis = completed.length ? completed : runs;
  const pick = (f: (r: OneDeploy) => number): number[] => basis.map(f);
  if (!completed.length) out.notes.push('No deploy completed: the reuse and critical-path figures below come from failed runs.');
  out.figures['deploy: failures'] = summarize([failures.length], 'failures', `${runs.length} demo deploys (openwebui=keep, frontend=openwebui, pre-answered)`);
  // Item 3: connection reuse.
  out.figures['reuse: SSH handshakes seen by the lab per deploy'] = summarize(pick((r) => r.labHandshakes), 'handshakes');
  out.figures['reuse: SSH-using activities per deploy'] = summarize(pick((r) => r.sshActivities), 'activities');
  out.figures['reuse: distinct SSH logins (user@host) per deploy'] = summarize(pick((r) => r.sshTargets), 'count', 'root for the host, the admin user for checkpoint 1');
  out.figures['reuse: activities scheduled per deploy (history)'] = summarize(pick((r) => r.scheduled), 'activities');
  out.ratios['reuse: handshakes / SSH-using activities'] = pairedRatio(pick((r) => r.labHandshakes), pick((r) => r.sshActivities));
  out.ratios['reuse: handshakes / distinct SSH logins'] = pairedRatio(pick((r) => r.labHandshakes), pick((r) => r.sshTargets));
  out.targets.push(checkTarget({ figure: 'reuse: handshakes / distinct SSH logins', op: '<=', limit: 1, unit: 'x' }, out.ratios['reuse: handshakes / distinct SSH logins']));
  // Item 5: critical path.
  out.figures['critical path: deploy wall time'] = summarize(pick((r) => r.wallMs), 'ms', `lab timeScale ${opts.timeScale}`);
  out.figures['critical path: sum of step times'] = summarize(pick((r) => r.sumMs), 'ms', 'activity scheduled -> closed, summed');
  out.figures['critical path: longest path through the step dependency graph'] = summarize(pick((r) => r.chainMs), 'ms', 'src/workflows/graph.ts, measured step times');
  out.figures['critical path: time with a step in flight'] = summarize(pick((r) => r.unionMs), 'ms', 'union of the step intervals');
  out.ratios['critical path: wall / critical path'] = pairedRatio(pick((r) => r.wallMs), pick((r) => r.chainMs));
  out.ratios['critical path: sum of steps / wall'] = pairedRatio(pick((r) => r.sumMs), pick((r) => r.wallMs), '> 1 means steps overlapped');
  out.targets.push(checkTarget({ figure: 'critical path: wall / critical path', op: '<=', limit: 1.05, unit: 'x' }, out.ratios['critical path: wall / critical path']));
  const longest = runs[0]?.chain ?? [];
  out.notes.push(`Critical path (first deploy): ${longest.join(' -> ')}.`);
  if (failures.length) out.notes.push(`Failed deploys: ${failures.map((f) => `${f.status}: ${(f.error ?? '').split('\n')[0]}`).join('; ')}.`);

  // Reconnecting after a drop: the lab cuts one SSH connection mid-deploy; the retry must open a new one.
  const dropped: OneDeploy[] = [];
  for (let i = 0; i < opts.runs; i++) dropped.push(await oneDeploy(ctx, opts.timeScale, ['ssh-drop']));
  out.figures['reuse: handshakes per deploy with one SSH drop'] = summarize(dropped.map((r) => r.labHandshakes), 'handshakes', 'one more than without the drop: reconnected');
  out.figures['reuse: failures of deploys with one SSH drop'] = summarize([dropped.filter((r) => r.status !== 'completed').length], 'failures', `count over ${dropped.length} deploys`);
  out.targets.push(checkTarget({ figure: 'deploy: failures', op: '<=', limit: 0, unit: 'failures' }, out.figures['deploy: failures']));
  out.targets.push(checkTarget({ figure: 'reuse: failures of deploys with one SSH drop', op: '<=', limit: 0, unit: 'failures' }, out.figures['reuse: failures of deploys with one SSH drop']));
  return out;
}
