// The concurrency item's labs, on a thread of their own. On real hardware every host has its own CPUs; here the
// K labs share the machine's cores with the worker and the server, and they should not also pay for the bench's
// own client. The Temporal client runs each call inside an AsyncLocalStorage, and once one is enabled Node 20
// runs a promise hook on every promise of that thread; the labs (a shell interpreter and SSH servers, async to
// the bone) paid ~7% more CPU for sharing the bench's thread (measured at K=50). Async hooks are per thread.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { DeployConfig } from '../config/schema';
import { startBenchLab, stopAll, type BenchLab } from './lab-deploy';

type Request = { op: 'start'; count: number; timeScale: number } | { op: 'stop' };
type Reply = { op: 'started'; configs: DeployConfig[] } | { op: 'stopped' } | { op: 'error'; message: string };

export interface LabThread {
  /** one config per lab, in order */
  configs: DeployConfig[];
  stop(): Promise<void>;
}

/** Starts `count` labs on a new thread; resolves once all of them listen. */
export async function startLabThread(count: number, timeScale: number): Promise<LabThread> {
  const worker = new Worker(__filename, { workerData: { role: 'labs' } });
  const replies: Reply[] = [];
  const waiters: Array<(r: Reply) => void> = [];
  let failure: Error | undefined;
  worker.on('message', (r: Reply) => {
    const w = waiters.shift();
    if (w) w(r);
    else replies.push(r);
  });
  worker.on('error', (e) => {
    failure = e;
    for (const w of waiters.splice(0)) w({ op: 'error', message: e.message });
  });
  const ask = (req: Request): Promise<Reply> => {
    if (failure) return Promise.reject(failure);
    worker.postMessage(req);
    const ready = replies.shift();
    return ready ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
  };
  const started = await ask({ op: 'start', count, timeScale });
  if (started.op !== 'started') {
    await worker.terminate();
    throw new Error(`the lab thread could not start its labs: ${started.op === 'error' ? started.message : started.op}`);
  }
  return {
    configs: started.configs,
    stop: async () => {
      await ask({ op: 'stop' }).catch(() => undefined);
      await worker.terminate();
    },
  };
}

function serveLabs(): void {
  const port = parentPort;
  if (!port) return;
  let labs: BenchLab[] = [];
  port.on('message', (req: Request) => {
    void (async (): Promise<Reply> => {
      if (req.op === 'stop') {
        await stopAll(labs);
        labs = [];
        return { op: 'stopped' };
      }
      for (let i = 0; i < req.count; i++) labs.push(await startBenchLab(req.timeScale));
      return { op: 'started', configs: labs.map((l) => l.config) };
    })().then(
      (reply) => port.postMessage(reply),
      (err: unknown) => port.postMessage({ op: 'error', message: err instanceof Error ? err.message : String(err) } satisfies Reply),
    );
  });
}

if (!isMainThread && (workerData as { role?: string } | undefined)?.role === 'labs') serveLabs();
