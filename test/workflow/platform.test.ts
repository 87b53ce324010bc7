// The platform: a worker on the shared dev server picks up a workflow started from the client.
import { Client, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { createActivityDeps } from '../../src/activities/deps';
import { validateConfig } from '../../src/config/load';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { sharedServerAddress, workflowBundlePath } from '../harness/temporal';
import { createDeployWorker, WORKFLOW_CACHE_SIZE } from '../../src/worker';

describe('platform', () => {
  let connection: NativeConnection;
  beforeAll(async () => {
    connection = await NativeConnection.connect({ address: sharedServerAddress() });
  });
  afterAll(async () => connection?.close());

  it('runs the deploy workflow on a worker and fails its preflight for a model that cannot fit, before touching any host', async () => {
    const raw = parse(readFileSync(join(__dirname, '..', '..', 'examples', 'seed-lab.yaml'), 'utf8')) as { model: Record<string, unknown> };
    raw.model = { id: 'mistralai/Mixtral-8x7B-Instruct-v0.1', maxModelLen: 32768 };
    const v = validateConfig(raw);
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const deps = createActivityDeps();
    const taskQueue = `platform-${Date.now()}`;
    const worker = await Worker.create({
      connection,
      taskQueue,
      workflowBundle: { codePath: workflowBundlePath() },
      activities: createActivities(deps),
    });
    const client = new Client({ connection: await (await import('@temporalio/client')).Connection.connect({ address: sharedServerAddress() }) });
    await worker.runUntil(async () => {
      const handle = await client.workflow.start('deploy', { taskQueue, workflowId: `platform-${Date.now()}`, args: [{ config: v.config }] });
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const failure = (err as WorkflowFailedError).cause as { type?: string; cause?: { type?: string; message: string } };
      expect(failure.type).toBe('DeployFailed');
      expect(failure.cause?.type).toBe('ModelDoesNotFit');
      expect(failure.cause?.message).toMatch(/Mixtral/);
      const p = await handle.query<{ steps: unknown[]; mutations: number }>('progress');
      expect(p.steps).toEqual([]);
      expect(p.mutations).toBe(0);
    });
    await client.connection.close();
    await deps.ssh.close();
  });
  it('keeps a fixed number of running deploys in the worker cache, not the SDK default that follows the heap limit', async () => {
    const { worker, deps } = await createDeployWorker({ connection, namespace: 'default', taskQueue: `platform-cache-${Date.now()}`, workflowBundle: { codePath: workflowBundlePath() } });
    try {
      expect(worker.options.maxCachedWorkflows).toBe(WORKFLOW_CACHE_SIZE);
      expect(WORKFLOW_CACHE_SIZE).toBeGreaterThanOrEqual(50);
    } finally {
      await worker.runUntil(async () => undefined);
      await deps.ssh.close();
    }
  });
});
