// What every bench item shares: one Temporal dev server on loopback, a client and a worker connection.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { startDevServer, type DevServer } from '../temporal/dev-server';

export interface BenchContext {
  server: DevServer;
  address: string;
  client: Client;
  nc: NativeConnection;
  log(line: string): void;
  close(): Promise<void>;
}

export async function startBenchContext(log: (line: string) => void): Promise<BenchContext> {
  const server = await startDevServer({ log });
  const connection = await Connection.connect({ address: server.address });
  const nc = await NativeConnection.connect({ address: server.address });
  return {
    server,
    address: server.address,
    client: new Client({ connection }),
    nc,
    log,
    close: async () => {
      await connection.close();
      await nc.close();
      await server.stop();
    },
  };
}

let seq = 0;
/** A task queue name no other item (or earlier run) uses, so no stale poller or task can steal work. */
export function freshQueue(prefix: string): string {
  return `bench-${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
}
