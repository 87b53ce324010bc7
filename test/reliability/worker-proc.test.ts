// The worker process the crash matrix kills: it starts, polls (says so), and dies on SIGKILL at once.
import { startWorkerProc } from '../../src/reliability/proc';
import { sharedServerAddress, workflowBundlePath } from '../harness/temporal';

jest.setTimeout(120_000);

it('starts polling, then dies on SIGKILL without a graceful shutdown', async () => {
  const w = startWorkerProc({ address: sharedServerAddress(), taskQueue: `worker-proc-test-${process.pid}`, bundlePath: workflowBundlePath() });
  const readyAt = await w.ready;
  expect(readyAt).toBeGreaterThanOrEqual(w.startedAt);
  await w.kill();
  expect(await w.exited).toBeNull(); // killed by a signal: no exit code
  expect(w.output()).toMatch(/worker-ready pid=\d+/);
  expect(w.output()).not.toMatch(/worker-proc failed/);
});

it('refuses a non-loopback Temporal address', async () => {
  const w = startWorkerProc({ address: '10.0.50.10:7233', taskQueue: 'never', bundlePath: workflowBundlePath() });
  await expect(w.ready).rejects.toThrow(/loopback addresses only/);
  expect(await w.exited).toBe(1);
});
