// Composition root: Temporal connection -> adapters -> createActivities(deps) -> Worker.
import { NativeConnection, Worker, bundleWorkflowCode, type NativeConnectionOptions, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from './activities';
import { createActivityDeps, type ActivityDeps } from './activities/deps';
import { ACTIVITY_SLOTS } from './limits';

export interface WorkerSetup {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  /** a bundle made once (tests, demo); otherwise bundled from src/workflows at start */
  workflowBundle?: WorkflowBundleWithSourceMap | { codePath: string };
  deps?: ActivityDeps;
  maxConcurrentActivityTaskExecutions?: number;
  /** how long in-flight activities may drain after SIGINT/SIGTERM */
  shutdownGraceTime?: string;
}

/**
 * Node flags the pve-vllm worker runs with (bin/pve-vllm's shebang; the bench spawns its worker with them too).
 * V8 otherwise lets garbage grow toward a limit sized from the machine's memory: at 50 concurrent deploys the
 * worker's heap peaked at ~270 MB of which ~90 MB was live; capped, the peak RSS fell from ~530 to ~360 MB with
 * no loss of throughput (`npm run bench -- --only concurrency`). (Tighter caps once seemed to make GC eat the CPU:
 * it was the sticky cache shrinking with the heap limit, see WORKFLOW_CACHE_SIZE; they now save little.) The young
 * generation is capped too (12 MB semi-spaces, default 16): the workflow thread's isolate has one of its own,
 * so that is ~20 MB less; at 8 MB the extra scavenges cost ~3 s of a 22 s round.
 */
export const WORKER_NODE_FLAGS = ['--max-old-space-size=256', '--max-semi-space-size=12'];

/**
 * Environment of the worker process, set before it starts (the shebang's `env -S`, the bench's spawn). glibc
 * gives each thread that allocates its own malloc arena (up to 8 per core); the Rust core, libuv and V8 run a
 * dozen threads, and the arenas' slack was ~15 MB of peak RSS at 50 deploys.
 */
export const WORKER_ENV: Record<string, string> = { MALLOC_ARENA_MAX: '2' };

/**
 * Running deploys kept in the worker's sticky cache. The SDK derives its default from the V8 heap limit (60 at
 * our 256 MB cap, 23 at 192 MB, 10 below ~215 MB), and a deploy that falls out of the cache is replayed from its
 * whole history at its next workflow task: at 50 concurrent deploys a 192 MB cap doubled the worker's CPU that
 * way (it looked like GC). A cached deploy costs ~0.25 MB in the workflow thread.
 */
export const WORKFLOW_CACHE_SIZE = 200;

/**
 * How long the server holds a deploy's next workflow task for the worker that ran its last one (its sticky queue)
 * before offering it to any worker. The SDK's 10 s was the whole recovery time when a worker died between two
 * steps (`npm run reliability`: 10.2 s, against ~6 s when it died inside a step, where the 5 s heartbeat timeout
 * decides). At 5 s, with WORKFLOW_TASK_TIMEOUT for a worker that dies holding the task, every kill point
 * recovers in 4.5-6.9 s. A live worker starts its tasks far sooner (50 concurrent deploys on 2 cores: p99
 * 0.40 s, max 0.43 s), and a task that does go to another worker is replayed there, not lost.
 */
export const STICKY_QUEUE_TIMEOUT = '5s';

/**
 * The worker's connection to Temporal. The SDK gzips every request and asks for gzipped answers by default; a
 * worker talks to a server on its LAN (or loopback) in messages of a few KB, so that was CPU on both ends for
 * nothing: ~5 % of the dev server's CPU at 50 concurrent deploys. Pass `grpcCompression` to turn it back on.
 */
export function connectWorker(opts: NativeConnectionOptions): Promise<NativeConnection> {
  return NativeConnection.connect({ grpcCompression: { codec: 'none' }, ...opts });
}

export async function createDeployWorker(s: WorkerSetup): Promise<{ worker: Worker; deps: ActivityDeps }> {
  const deps = s.deps ?? createActivityDeps();
  const worker = await Worker.create({
    connection: s.connection,
    namespace: s.namespace,
    taskQueue: s.taskQueue,
    ...(s.workflowBundle ? { workflowBundle: s.workflowBundle } : { workflowsPath: require.resolve('./workflows') }),
    activities: createActivities(deps),
    maxConcurrentActivityTaskExecutions: s.maxConcurrentActivityTaskExecutions ?? ACTIVITY_SLOTS,
    maxCachedWorkflows: WORKFLOW_CACHE_SIZE,
    stickyQueueScheduleToStartTimeout: STICKY_QUEUE_TIMEOUT,
    shutdownGraceTime: (s.shutdownGraceTime ?? '30s') as `${number}s`,
  });
  return { worker, deps };
}

export async function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: require.resolve('./workflows'), logger: quietLogger });
}

const noop = (): void => undefined;
export const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: (m: string) => process.stderr.write(`${m}\n`), log: noop };
