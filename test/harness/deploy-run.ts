// Runs one deploy against a fresh (or saved) lab on the shared dev server, with a real worker and real adapters.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { createActivityDeps, ActivityDeps } from '../../src/activities/deps';
import { connectWorker } from '../../src/worker';
import { loadConfig } from '../../src/config/load';
import type { DeployConfig } from '../../src/config/schema';
import { finalProgress } from '../../src/cli/report';
import { startDeploy } from '../../src/cli/run-commands';
import type { DeployProgress } from '../../src/workflows/messages';
import { startLab, type Lab } from '../../src/lab';
import type { FaultName } from '../../src/lab/state';
import { sharedServerAddress, workflowBundlePath } from './temporal';

export interface RunOptions {
  faults?: FaultName[];
  /** answers given through the Update as soon as asked; a missing one is left pending */
  decide?: { openwebui?: string; frontend?: string };
  labState?: string;
  timeScale?: number;
  /** called with the handle once started (cancel tests) */
  during?: (handle: WorkflowHandle, lab: Lab) => Promise<void>;
  configEdit?: (cfg: DeployConfig) => DeployConfig;
  /** another Temporal server than the shared one (the UI test runs its own, with the Web UI) */
  address?: string;
}

export interface RunResult {
  progress: DeployProgress;
  lab: Lab;
  workflowId: string;
  deps: ActivityDeps;
}

let seq = 0;

export async function withClient<T>(fn: (client: Client, nc: NativeConnection) => Promise<T>, address = sharedServerAddress()): Promise<T> {
  const connection = await Connection.connect({ address });
  const nc = await connectWorker({ address });
  try {
    return await fn(new Client({ connection }), nc);
  } finally {
    await connection.close();
    await nc.close();
  }
}

export async function labConfig(lab: Lab, edit?: (c: DeployConfig) => DeployConfig): Promise<DeployConfig> {
  const dir = mkdtempSync(join(tmpdir(), 'pve-vllm-test-'));
  const path = join(dir, 'lab.yaml');
  await lab.writeConfig(path);
  const loaded = loadConfig(path);
  if (!loaded.ok) throw new Error(`lab config invalid: ${JSON.stringify(loaded.problems)}`);
  const cfg = { ...loaded.config, configDir: loaded.configDir } as DeployConfig;
  return edit ? edit(cfg) : cfg;
}

/** Starts a lab, a worker and a deploy; answers decisions; returns the final progress. The lab is left running. */
export async function runDeploy(opts: RunOptions = {}): Promise<RunResult> {
  const lab = await startLab({ faults: opts.faults ?? [], statePath: opts.labState, timeScale: opts.timeScale ?? 0.05 });
  // A run that throws never hands the lab to the test: stop it here, or its servers keep jest from exiting.
  const stopping = (err: unknown): never | Promise<never> => lab.stop().then(() => { throw err; });
  const config = await labConfig(lab, opts.configEdit).catch(stopping);
  return withClient(async (client, nc) => {
    const deps = createActivityDeps();
    const taskQueue = `deploy-test-${process.pid}-${++seq}`;
    const worker = await Worker.create({
      connection: nc,
      taskQueue,
      workflowBundle: { codePath: workflowBundlePath() },
      activities: createActivities(deps),
    });
    const workflowId = `test-deploy-${process.pid}-${Date.now()}-${seq}`;
    try {
      const progress = await worker.runUntil(async () => {
        const handle = await startDeploy(client, { taskQueue }, config, workflowId, 'test');
        const answering = answerDecisions(handle, opts.decide ?? {});
        try {
          if (opts.during) await opts.during(handle, lab);
          return await finalProgress(handle);
        } finally {
          await answering.stop();
        }
      });
      return { progress, lab, workflowId, deps };
    } finally {
      await deps.ssh.close();
    }
  }, opts.address).catch(stopping);
}

function answerDecisions(handle: WorkflowHandle, decide: { openwebui?: string; frontend?: string }): { stop(): Promise<void> } {
  let stopped = false;
  const done = new Set<string>();
  // The loop is awaited before the connection closes, so no call outlives it.
  const loop = (async () => {
    while (!stopped) {
      try {
        const p = await handle.query<DeployProgress>('progress');
        for (const d of p.pending) {
          const choice = decide[d.decision];
          if (choice === undefined || done.has(d.decision)) continue;
          done.add(d.decision);
          await handle.executeUpdate(d.decision === 'openwebui' ? 'decideOpenwebui' : 'decideFrontend', { args: [{ choice, by: 'test' }] });
        }
        if (p.status !== 'running') return;
      } catch {
        /* not started yet, or closed */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** Runs `teardown` against a lab that a deploy left (same lab, a fresh worker); returns its final progress. */
export async function runTeardown(lab: Lab, configEdit?: (cfg: DeployConfig) => DeployConfig): Promise<DeployProgress> {
  const config = await labConfig(lab, configEdit);
  return withClient(async (client, nc) => {
    const deps = createActivityDeps();
    const taskQueue = `teardown-test-${process.pid}-${++seq}`;
    const worker = await Worker.create({ connection: nc, taskQueue, workflowBundle: { codePath: workflowBundlePath() }, activities: createActivities(deps) });
    const progress = await worker.runUntil(async () => {
      const handle = await client.workflow.start('teardown', { taskQueue, workflowId: `test-teardown-${process.pid}-${Date.now()}-${seq}`, args: [{ config, requestedBy: 'test' }] });
      return finalProgress(handle);
    });
    await deps.ssh.close();
    return progress;
  });
}
