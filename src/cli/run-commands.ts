// deploy, status, decide, cancel, history: each a small function returning an exit code.
import { Client, Connection, WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { choiceProblem } from '../config/decisions';
import { loadConfig, formatProblems } from '../config/load';
import type { DeployConfig } from '../config/schema';
import { preflightModel } from '../workflows/preflight';
import type { DecisionRecord, DeployInput, DeployProgress } from '../workflows/messages';
import { connectionOptions, TemporalFlags, unreachable, workflowUiUrl } from './connection';
import { EXIT_BAD_INPUT, EXIT_OK, EXIT_FAILED } from './exit';
import { exitCodeOf, finalProgress, renderProgress, renderReport, toReport, watch, FinalReport } from './report';
import { WORKFLOW_TASK_TIMEOUT } from '../limits';

/** The run's Temporal UI link (the UI needs the run id). */
export async function uiUrlOf(f: TemporalFlags, handle: { workflowId: string; describe(): Promise<{ runId: string }> }): Promise<string> {
  try {
    return workflowUiUrl(f, handle.workflowId, (await handle.describe()).runId);
  } catch {
    return workflowUiUrl(f, handle.workflowId);
  }
}

export interface Io {
  out: NodeJS.WriteStream;
  err: NodeJS.WritableStream;
}

export async function temporalClient(f: TemporalFlags): Promise<Client> {
  const opts = connectionOptions(f);
  let connection: Connection;
  try {
    connection = await Connection.connect(opts);
  } catch (err) {
    throw unreachable(f.address, err);
  }
  return new Client({ connection, namespace: f.namespace });
}

export interface DeployFlags extends TemporalFlags {
  config: string;
  model?: string;
  maxModelLen?: number;
  watch?: boolean;
  json?: boolean;
  workflowId?: string;
}

/** Validates the config (exit 2, nothing started, on any problem), then starts the run. */
export function prepareDeploy(f: Pick<DeployFlags, 'config' | 'model' | 'maxModelLen'>, io: Io): { config: DeployConfig & { configDir: string } } | number {
  const loaded = loadConfig(f.config, { model: f.model, maxModelLen: f.maxModelLen });
  if (!loaded.ok) {
    io.err.write(`${formatProblems(loaded.problems)}\n`);
    return EXIT_BAD_INPUT;
  }
  const pre = preflightModel(loaded.config);
  for (const note of loaded.notes) io.err.write(`note: ${note}\n`);
  if (!pre.ok) {
    io.err.write(`model ${loaded.config.model.id} does not fit (${pre.fit.verdict}):\n${pre.lines.map((l) => `  ${l}`).join('\n')}\n`);
    return EXIT_BAD_INPUT;
  }
  return { config: { ...loaded.config, configDir: loaded.configDir } };
}

/**
 * One deploy per Proxmox node at a time: the id names the node, so Temporal refuses a second start while one
 * runs (two deploys would fight over the GPU, VM 151 and apt). Finished runs stay listed under the same id.
 */
export function newWorkflowId(cfg: DeployConfig): string {
  return `pve-vllm-${cfg.proxmox.node}`;
}

/** Starts the deploy, or explains which run already holds the node. */
export async function startOrExplain(client: Client, f: TemporalFlags, config: DeployConfig, workflowId: string, io: Io) {
  try {
    return await startDeploy(client, f, config, workflowId);
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    io.err.write(
      `a deploy on node ${config.proxmox.node} is already running (workflow ${workflowId}): one deploy per node at a time.\n` +
        `follow it: pve-vllm status ${workflowId}   stop it (undoes its changes): pve-vllm cancel ${workflowId}\n`,
    );
    return EXIT_FAILED;
  }
}

/** Starts a deploy, the one way every caller does (CLI, demo, bench, reliability, tests): timeouts and UI summary. */
export async function startDeploy(client: Client, f: Pick<TemporalFlags, 'taskQueue'>, config: DeployConfig, workflowId: string, requestedBy = process.env.USER ?? 'cli') {
  const input: DeployInput = { config, requestedBy };
  return client.workflow.start('deploy', {
    taskQueue: f.taskQueue,
    workflowId,
    args: [input],
    workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
    staticSummary: `Deploy vLLM (${config.model.id}) on ${config.proxmox.node}, CT ${config.guests.vllm.id}`,
    staticDetails: `GPU ${config.gpu.pciAddress} from VM ${config.guests.vm.id}; image ${config.vllm.image}`,
  });
}

export async function deployCommand(f: DeployFlags, io: Io): Promise<number> {
  const prepared = prepareDeploy(f, io);
  if (typeof prepared === 'number') return prepared;
  const client = await temporalClient(f);
  const workflowId = f.workflowId ?? newWorkflowId(prepared.config);
  const handle = await startOrExplain(client, f, prepared.config, workflowId, io);
  if (typeof handle === 'number') return handle;
  const uiUrl = workflowUiUrl(f, workflowId, handle.firstExecutionRunId);
  if (!f.json) io.out.write(`started ${workflowId}\nTemporal UI: ${uiUrl}\n`);
  if (!f.watch && !f.json) {
    io.out.write(`follow it with: pve-vllm status ${workflowId}\n(a pve-vllm worker must be running on task queue ${f.taskQueue})\n`);
    return EXIT_OK;
  }
  if (f.watch && !f.json) await watch(handle, io.out);
  const report = toReport(workflowId, await finalProgress(handle), uiUrl);
  printReport(report, f.json === true, io);
  return exitCodeOf(report.status);
}

export async function startTeardown(client: Client, f: Pick<TemporalFlags, 'taskQueue'>, config: DeployConfig, workflowId: string, requestedBy = process.env.USER ?? 'cli') {
  return client.workflow.start('teardown', {
    taskQueue: f.taskQueue,
    workflowId,
    args: [{ config, requestedBy } satisfies DeployInput],
    workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
    staticSummary: `Tear down the vLLM deploy on ${config.proxmox.node}: GPU ${config.gpu.pciAddress} back to VM ${config.guests.vm.id}`,
  });
}

/**
 * `pve-vllm teardown`: a completed deploy taken back, from what its first run kept on the host. Same workflow id
 * as the deploy, so Temporal refuses it while a deploy of the node runs (and a deploy while it runs).
 */
export async function teardownCommand(f: TemporalFlags & { config: string; watch?: boolean; json?: boolean; workflowId?: string }, io: Io): Promise<number> {
  const loaded = loadConfig(f.config);
  if (!loaded.ok) {
    io.err.write(`${formatProblems(loaded.problems)}\n`);
    return EXIT_BAD_INPUT;
  }
  const config = loaded.config;
  const client = await temporalClient(f);
  const workflowId = f.workflowId ?? newWorkflowId(config);
  let handle;
  try {
    handle = await startTeardown(client, f, config, workflowId);
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    io.err.write(`a run on node ${config.proxmox.node} is in progress (workflow ${workflowId}); let it end or cancel it first: pve-vllm cancel ${workflowId}\n`);
    return EXIT_FAILED;
  }
  const uiUrl = workflowUiUrl(f, workflowId, handle.firstExecutionRunId);
  if (!f.json) io.out.write(`started teardown ${workflowId}\nTemporal UI: ${uiUrl}\n`);
  if (f.watch && !f.json) await watch(handle, io.out);
  const p = await finalProgress(handle);
  if (f.json) io.out.write(`${JSON.stringify({ workflowId, uiUrl, ...p }, null, 2)}\n`);
  else io.out.write(`${renderProgress(p).join('\n')}\n`);
  return p.status === 'completed' ? EXIT_OK : EXIT_FAILED;
}

export function printReport(report: FinalReport, json: boolean, io: Io): void {
  io.out.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report).join('\n')}\n`);
}

export async function statusCommand(id: string, f: TemporalFlags & { json?: boolean }, io: Io): Promise<number> {
  const client = await temporalClient(f);
  const handle = client.workflow.getHandle(id);
  const p = await queryOrExplain(handle.query<DeployProgress>('progress'), id, io);
  if (typeof p === 'number') return p;
  const uiUrl = await uiUrlOf(f, handle);
  if (f.json) io.out.write(`${JSON.stringify({ workflowId: id, uiUrl, ...p }, null, 2)}\n`);
  else io.out.write(`${id}\n${renderProgress(p).join('\n')}\nTemporal UI: ${uiUrl}\n`);
  return EXIT_OK;
}

export async function decideCommand(id: string, decision: string, choice: string, f: TemporalFlags & { by?: string }, io: Io): Promise<number> {
  const name = decision === 'openwebui' ? 'decideOpenwebui' : decision === 'frontend' ? 'decideFrontend' : undefined;
  if (!name) {
    io.err.write(`decision: got ${JSON.stringify(decision)}; allowed: openwebui, frontend\n`);
    return EXIT_BAD_INPUT;
  }
  const wrongChoice = choiceProblem(decision as 'openwebui' | 'frontend', choice);
  if (wrongChoice) {
    io.err.write(`${wrongChoice}\n`);
    return EXIT_BAD_INPUT;
  }
  const client = await temporalClient(f);
  const handle = client.workflow.getHandle(id);
  try {
    const rec = await handle.executeUpdate<DecisionRecord, [{ choice: string; by: string }]>(name, {
      args: [{ choice, by: f.by ?? process.env.USER ?? 'cli' }],
    });
    io.out.write(`${id}: ${rec.decision}=${rec.choice} recorded (by ${rec.by} at ${rec.at})\nTemporal UI: ${await uiUrlOf(f, handle)}\n`);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      io.err.write(`${decision}: ${choice} was rejected: ${(err.cause as Error | undefined)?.message ?? err.message}\n`);
      return EXIT_BAD_INPUT;
    }
    if (err instanceof WorkflowNotFoundError) {
      io.err.write(`workflow ${id} not found in namespace ${f.namespace}\n`);
      return EXIT_BAD_INPUT;
    }
    throw err;
  }
}

export async function cancelCommand(id: string, f: TemporalFlags & { json?: boolean; wait?: boolean }, io: Io): Promise<number> {
  const client = await temporalClient(f);
  const handle = client.workflow.getHandle(id);
  try {
    // A run that has ended has nothing in flight to stop and nothing left to undo: say so, change nothing.
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') {
      io.err.write(
        `workflow ${id}: got a run that has already ended (${status.name.toLowerCase()}); allowed: a running deploy. Nothing was changed.\n` +
          (status.name === 'COMPLETED' ? 'A completed deploy keeps its changes; `pve-vllm teardown --config <its config>` takes them back.\n' : ''),
      );
      return EXIT_BAD_INPUT;
    }
    await handle.cancel();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      io.err.write(`workflow ${id} not found in namespace ${f.namespace}\n`);
      return EXIT_BAD_INPUT;
    }
    throw err;
  }
  if (!f.json) io.out.write(`cancellation requested for ${id}; the steps in flight finish, then its changes are undone\n`);
  if (f.wait === false) return EXIT_OK;
  const report = toReport(id, await finalProgress(handle), await uiUrlOf(f, handle));
  printReport(report, f.json === true, io);
  // Cancelled, but an undo failed: the host is not as it was, and a script must see that.
  const undone = report.compensations.every((c) => c.outcome !== 'failed');
  return (report.status === 'cancelled' || report.status === 'completed') && undone ? EXIT_OK : EXIT_FAILED;
}

export async function historyCommand(id: string, f: TemporalFlags & { json?: boolean }, io: Io): Promise<number> {
  const client = await temporalClient(f);
  const handle = client.workflow.getHandle(id);
  const p = await queryOrExplain(handle.query<DeployProgress>('progress'), id, io);
  if (typeof p === 'number') return p;
  if (f.json) {
    io.out.write(`${JSON.stringify({ workflowId: id, steps: p.steps, checkpoints: p.checkpoints, decisions: p.decisions, compensations: p.compensations }, null, 2)}\n`);
    return EXIT_OK;
  }
  const t0 = p.steps[0] ? Date.parse(p.steps[0].startedAt) : 0;
  const events = [
    ...p.steps.map((s) => ({ at: s.startedAt, line: `step ${s.step}. ${s.name}: ${s.status}${s.endedAt ? ` (${((Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 1000).toFixed(1)} s)` : ''}${s.detail ? ` — ${s.detail}` : ''}` })),
    ...p.checkpoints.filter((c) => c.at).map((c) => ({ at: c.at as string, line: `checkpoint ${c.n} ${c.name} passed: ${c.evidence}` })),
    ...p.decisions.map((d) => ({ at: d.at, line: `decision ${d.decision}=${d.choice} by ${d.by} via ${d.via}` })),
    ...p.rejected.map((r) => ({ at: r.at, line: `rejected ${r.decision} via ${r.via}: ${r.reason}` })),
  ].sort((a, b) => a.at.localeCompare(b.at));
  io.out.write(`${id} (${p.status})\n`);
  for (const e of events) io.out.write(`  +${((Date.parse(e.at) - t0) / 1000).toFixed(1).padStart(6)} s  ${e.line}\n`);
  for (const c of p.compensations.filter((x) => x.outcome !== 'skipped')) io.out.write(`  undo ${c.outcome}: ${c.name}${c.detail ? ` (${c.detail})` : ''}\n`);
  io.out.write(`Temporal UI: ${await uiUrlOf(f, handle)}\n`);
  return EXIT_OK;
}

async function queryOrExplain<T>(q: Promise<T>, id: string, io: Io): Promise<T | number> {
  try {
    return await q;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      io.err.write(`workflow ${id} not found\n`);
      return EXIT_BAD_INPUT;
    }
    throw err;
  }
}
