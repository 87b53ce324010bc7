// Following a run: progress from the workflow's query, the final report, and how both are printed.
import { WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import type { DeployProgress, DeployStatus } from '../workflows/messages';

export interface FinalReport {
  workflowId: string;
  status: Exclude<DeployStatus, 'running'>;
  checkpoints: DeployProgress['checkpoints'];
  decisions: DeployProgress['decisions'];
  compensations: Array<{ name: string; outcome: string; detail?: string }>;
  endpoint: string | null;
  uiUrl: string;
  mutations: number;
  changes: string[];
  error?: string;
  sizing?: string[];
  steps?: Array<{ step: number; name: string; status: string; seconds?: number }>;
  lab?: { guests: Record<string, { status: string; gpu: boolean }> };
}

/** Waits for the run to close and returns its last progress, whatever the outcome. */
export async function finalProgress(handle: WorkflowHandle): Promise<DeployProgress> {
  try {
    return (await handle.result()) as DeployProgress;
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const details = (err.cause as { details?: unknown[] } | undefined)?.details;
      const p = details?.[0] as DeployProgress | undefined;
      if (p && typeof p === 'object' && 'checkpoints' in p) return p;
    }
    // Cancelled or terminated: the query still answers from the replayed state. A query that reaches the worker
    // while it evicts the run it just closed can be dropped with it ("leftover buffered tasks when evicting run")
    // and time out; asked again, it is answered by a fresh replay.
    for (let attempt = 1; ; attempt++) {
      try {
        return await handle.query<DeployProgress>('progress');
      } catch (queryErr) {
        if (attempt >= 3 || !/DEADLINE_EXCEEDED|query timed out/i.test(`${(queryErr as Error).message} ${String((queryErr as { cause?: unknown }).cause ?? '')}`)) throw queryErr;
      }
    }
  }
}

export function toReport(workflowId: string, p: DeployProgress, uiUrl: string): FinalReport {
  return {
    workflowId,
    status: p.status === 'running' ? 'failed' : p.status,
    checkpoints: p.checkpoints,
    decisions: p.decisions,
    compensations: p.compensations.filter((c) => c.outcome !== 'skipped').map(({ name, outcome, detail }) => ({ name, outcome, ...(detail ? { detail } : {}) })),
    endpoint: p.endpoint ?? null,
    uiUrl,
    mutations: p.mutations,
    changes: p.changes ?? [],
    ...(p.error ? { error: p.error } : {}),
    ...(p.sizing ? { sizing: p.sizing } : {}),
    steps: p.steps.map((s) => ({
      step: s.step,
      name: s.name,
      status: s.status,
      ...(s.endedAt ? { seconds: Math.round((Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 100) / 10 } : {}),
    })),
  };
}

export function exitCodeOf(status: FinalReport['status']): number {
  return status === 'completed' ? 0 : 1;
}

export function renderProgress(p: DeployProgress): string[] {
  const lines: string[] = [`status: ${p.status}   step: ${p.currentStep}`];
  for (const s of p.steps) lines.push(`  ${mark(s.status)} ${s.step}. ${s.name}${s.detail ? ` — ${s.detail}` : ''}`);
  if (p.activity) lines.push(`     ${p.activity}`);
  if (p.checkpoints.length) lines.push('checkpoints:');
  for (const c of p.checkpoints) lines.push(`  ${c.passed ? '✔' : '·'} ${c.n}. ${c.name}${c.evidence ? `: ${c.evidence}` : ''}`);
  for (const d of p.pending) {
    lines.push(`decision needed: ${d.decision} — options ${d.options.join(' | ')}${d.recommendation ? ` (recommended: ${d.recommendation})` : ''}`);
    for (const r of d.reasons) lines.push(`    ${r}`);
    lines.push(`    answer: ${d.how}`);
  }
  for (const r of p.rejected) lines.push(`rejected ${r.decision} via ${r.via} at ${r.at}: ${r.reason}`);
  const comp = p.compensations.filter((c) => c.outcome !== 'skipped');
  if (comp.length) {
    lines.push('compensations:');
    for (const c of comp) lines.push(`  ${c.outcome.padEnd(7)} ${c.name}${c.detail ? `: ${c.detail}` : ''}`);
  }
  if (p.endpoint) lines.push(`endpoint: ${p.endpoint}`);
  if (p.error) lines.push(`error: ${p.error}`);
  lines.push(`changes to the host: ${p.mutations}`);
  return lines;
}

export function renderReport(r: FinalReport): string[] {
  const lines = [`${r.workflowId}: ${r.status}`];
  for (const c of r.checkpoints) lines.push(`  ${c.passed ? '✔' : '✘'} checkpoint ${c.n} ${c.name}${c.evidence ? `: ${c.evidence}` : ''}`);
  for (const d of r.decisions) lines.push(`  decision ${d.decision}=${d.choice} by ${d.by} via ${d.via}`);
  for (const c of r.compensations) lines.push(`  undo ${c.outcome}: ${c.name}${c.detail ? ` (${c.detail})` : ''}`);
  if (r.endpoint) lines.push(`  vLLM endpoint: ${r.endpoint}`);
  if (r.error) lines.push(`  error: ${r.error}`);
  lines.push(`  changes to the host: ${r.mutations}`);
  lines.push(`  Temporal UI: ${r.uiUrl}`);
  return lines;
}

function mark(status: string): string {
  return status === 'done' ? '✔' : status === 'failed' ? '✘' : status === 'running' ? '…' : '·';
}

/** Follows a run until it closes: redraws in a TTY, prints changed lines otherwise. */
export async function watch(handle: WorkflowHandle, out: NodeJS.WriteStream, onProgress?: (p: DeployProgress) => Promise<void>): Promise<void> {
  const tty = out.isTTY === true;
  let last: string[] = [];
  let closed = false;
  const done = handle.result().then(
    () => undefined,
    () => undefined,
  ).finally(() => (closed = true));
  while (!closed) {
    let p: DeployProgress | undefined;
    try {
      p = await handle.query<DeployProgress>('progress');
      p.activity = await pendingActivityDetail(handle);
    } catch {
      p = undefined; // not started yet, or between tasks
    }
    if (p) {
      if (onProgress) await onProgress(p);
      const lines = renderProgress(p);
      if (tty) {
        if (last.length) out.write(`\x1b[${last.length}F\x1b[J`);
        out.write(`${lines.join('\n')}\n`);
      } else {
        for (const l of lines) if (!last.includes(l) && !/^\s+[✔·]|^checkpoints:|^changes to/.test(l)) out.write(`${l}\n`);
      }
      last = lines;
    }
    await Promise.race([done, new Promise((r) => setTimeout(r, tty ? 300 : 700))]);
  }
}

/** The running activity's latest heartbeat (e.g. the image pull's progress), as the Temporal UI shows it. */
async function pendingActivityDetail(handle: WorkflowHandle): Promise<string | undefined> {
  const d = await handle.describe();
  const pending = d.raw.pendingActivities ?? [];
  for (const a of pending) {
    const payload = a.heartbeatDetails?.payloads?.[0]?.data;
    if (payload) {
      try {
        const v = JSON.parse(Buffer.from(payload).toString('utf8')) as unknown;
        if (typeof v === 'string') return v;
      } catch {
        /* not JSON */
      }
    }
  }
  return undefined;
}
