// What every bench item shares: one Temporal dev server on loopback, a client and a worker connection.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { bundleWorkflows, connectWorker } from '../worker';

export interface BenchContext {
  server: DevServer;
  address: string;
  client: Client;
  nc: NativeConnection;
  log(line: string): void;
  /** the deploy workflow's bundle, made once for every item that runs deploys */
  deployBundle(): Promise<WorkflowBundleWithSourceMap>;
  /** the same bundle written to a file, for worker processes of our own */
  deployBundlePath(): Promise<string>;
  close(): Promise<void>;
}

export async function startBenchContext(log: (line: string) => void): Promise<BenchContext> {
  const server = await startDevServer({ log: (l) => log(`[temporal] ${l}`) });
  const connection = await Connection.connect({ address: server.address });
  const nc = await connectWorker({ address: server.address });
  let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
  const deployBundle = (): Promise<WorkflowBundleWithSourceMap> => (bundle ??= bundleWorkflows());
  const dir = mkdtempSync(join(tmpdir(), 'pve-vllm-bench-'));
  let bundlePath: Promise<string> | undefined;
  return {
    deployBundle,
    deployBundlePath: () =>
      (bundlePath ??= deployBundle().then((b) => {
        const path = join(dir, 'deploy-bundle.js');
        writeFileSync(path, b.code);
        return path;
      })),
    server,
    address: server.address,
    client: new Client({ connection }),
    nc,
    log,
    close: async () => {
      await connection.close();
      await nc.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let seq = 0;
/** A task queue name no other item (or earlier run) uses, so no stale poller or task can steal work. */
export function freshQueue(prefix: string): string {
  return `bench-${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
}
