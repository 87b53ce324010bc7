// A deploy worker in its own process, so the crash matrix can SIGKILL it like a power cut would:
//   node lib/reliability/worker-proc.js --address 127.0.0.1:PORT --task-queue Q --bundle /path/to/bundle.js
// It is the production composition (createDeployWorker with real adapters); secrets come from the { file }
// references of the config inside the workflow input, never from argv. Prints `worker-ready` once polling.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { connectWorker, createDeployWorker } from '../worker';

export const READY_LINE = 'worker-ready';

function arg(argv: string[], name: string): string {
  const i = argv.indexOf(name);
  const v = i >= 0 ? argv[i + 1] : undefined;
  if (!v) throw new Error(`worker-proc: missing ${name}`);
  return v;
}

async function main(argv: string[]): Promise<void> {
  const address = arg(argv, '--address');
  const taskQueue = arg(argv, '--task-queue');
  const bundle = arg(argv, '--bundle');
  if (!/^(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(address)) throw new Error(`worker-proc: loopback addresses only, got ${address}`);
  // INFO with metadata: the secret scan reads these logs, so they should say as much as a real worker's would.
  Runtime.install({
    logger: new DefaultLogger('INFO', ({ level, message, meta }) => process.stderr.write(`[worker ${level}] ${message}${meta ? ` ${JSON.stringify(meta)}` : ''}\n`)),
  });
  const connection = await connectWorker({ address });
  const { worker, deps } = await createDeployWorker({ connection, namespace: 'default', taskQueue, workflowBundle: { codePath: bundle }, shutdownGraceTime: '5s' });
  const running = worker.run();
  process.stdout.write(`${READY_LINE} pid=${process.pid}\n`);
  try {
    await running;
  } finally {
    await deps.ssh.close();
    await connection.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`worker-proc failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
