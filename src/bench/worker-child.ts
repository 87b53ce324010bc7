// A deploy worker in its own process, for the bench's concurrency (its peak RSS alone) and recovery (SIGKILL)
// items: `node lib/bench/worker-child.js <address> <taskQueue> <bundlePath>`. Prints `ready` once polling.
// Nothing secret is in argv: the deploy config's secrets are { file } references read inside activities.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { connectWorker, createDeployWorker } from '../worker';

async function main(): Promise<void> {
  const [address, taskQueue, codePath] = process.argv.slice(2);
  if (!address || !taskQueue || !codePath) throw new Error('usage: worker-child.js <address> <taskQueue> <bundlePath>');
  Runtime.install({
    logger: new DefaultLogger('ERROR', ({ message }) => process.stderr.write(`[child worker] ${message}\n`)),
    shutdownSignals: ['SIGTERM', 'SIGINT'],
  });
  const connection = await connectWorker({ address });
  const { worker, deps } = await createDeployWorker({
    connection,
    namespace: 'default',
    taskQueue,
    workflowBundle: { codePath },
    shutdownGraceTime: '2s',
  });
  const running = worker.run();
  process.stdout.write('ready\n');
  await running;
  await deps.ssh.close();
  await connection.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`worker-child: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
