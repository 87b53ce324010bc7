// `pve-vllm worker`: polls the task queue; on SIGINT/SIGTERM stops polling and lets in-flight activities drain.
import { Runtime } from '@temporalio/worker';
import { connectWorker, createDeployWorker } from '../worker';
import { TemporalFlags, connectionOptions, unreachable } from './connection';
import { EXIT_OK } from './exit';
import type { Io } from './run-commands';

export async function workerCommand(f: TemporalFlags & { maxConcurrentActivities: number }, io: Io): Promise<number> {
  const opts = connectionOptions(f); // bad TLS flags are bad input: refused before anything is set up
  // The SDK's runtime turns SIGINT/SIGTERM into a graceful worker shutdown (shutdownGraceTime below).
  Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });
  const connection = await connectWorker({ address: opts.address, tls: opts.tls, apiKey: f.apiKey }).catch((err: unknown) => {
    throw unreachable(f.address, err);
  });
  const { worker, deps } = await createDeployWorker({
    connection,
    namespace: f.namespace,
    taskQueue: f.taskQueue,
    maxConcurrentActivityTaskExecutions: f.maxConcurrentActivities,
    shutdownGraceTime: '60s',
  });
  io.err.write(`pve-vllm worker: ${f.address}, namespace ${f.namespace}, task queue ${f.taskQueue}\n`);
  try {
    await worker.run();
  } finally {
    await deps.ssh.close();
    await connection.close();
  }
  io.err.write('pve-vllm worker stopped\n');
  return EXIT_OK;
}
