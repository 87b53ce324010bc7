// Temporal connection settings with the Temporal CLI's flag names, env vars and defaults.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { ConnectionOptions } from '@temporalio/client';

export const DEFAULT_TASK_QUEUE = 'pve-vllm';

export interface TemporalFlags {
  address: string;
  namespace: string;
  apiKey?: string;
  tls?: boolean;
  tlsCertPath?: string;
  tlsKeyPath?: string;
  tlsCaPath?: string;
  tlsServerName?: string;
  taskQueue: string;
  uiUrl?: string;
}

/** Adds --address, --namespace, --api-key, --tls* and --task-queue, each with its TEMPORAL_* env var. */
export function withTemporalFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--address <host:port>', 'Temporal frontend address').env('TEMPORAL_ADDRESS').default('localhost:7233'))
    .addOption(new Option('-n, --namespace <name>', 'Temporal namespace').env('TEMPORAL_NAMESPACE').default('default'))
    .addOption(new Option('--api-key <key>', 'API key (prefer the env var: argv is visible to other users)').env('TEMPORAL_API_KEY'))
    .addOption(new Option('--tls', 'connect with TLS').env('TEMPORAL_TLS'))
    .addOption(new Option('--tls-cert-path <file>', 'client certificate for mTLS').env('TEMPORAL_TLS_CLIENT_CERT_PATH'))
    .addOption(new Option('--tls-key-path <file>', 'client key for mTLS').env('TEMPORAL_TLS_CLIENT_KEY_PATH'))
    .addOption(new Option('--tls-ca-path <file>', 'CA certificate of the server').env('TEMPORAL_TLS_SERVER_CA_CERT_PATH'))
    .addOption(new Option('--tls-server-name <name>', 'override the TLS server name').env('TEMPORAL_TLS_SERVER_NAME'))
    .addOption(new Option('--task-queue <name>', 'task queue of the pve-vllm worker').env('PVE_VLLM_TASK_QUEUE').default(DEFAULT_TASK_QUEUE))
    .addOption(new Option('--ui-url <url>', 'Temporal Web UI base URL, for links').env('TEMPORAL_UI_URL'));
}

export function connectionOptions(f: TemporalFlags): ConnectionOptions {
  const mtls = f.tlsCertPath && f.tlsKeyPath;
  const tls =
    f.tls || mtls || f.tlsCaPath || f.apiKey
      ? {
          serverNameOverride: f.tlsServerName,
          serverRootCACertificate: f.tlsCaPath ? readFileSync(f.tlsCaPath) : undefined,
          clientCertPair: mtls ? { crt: readFileSync(f.tlsCertPath as string), key: readFileSync(f.tlsKeyPath as string) } : undefined,
        }
      : undefined;
  return { address: f.address, tls, apiKey: f.apiKey };
}

/** Where the Web UI shows a workflow. The dev server's UI is on its port + 1000. */
export function workflowUiUrl(f: Pick<TemporalFlags, 'address' | 'namespace' | 'uiUrl'>, workflowId: string, runId?: string): string {
  let base = f.uiUrl;
  if (!base) {
    const m = /^(.*):(\d+)$/.exec(f.address);
    base = m ? `http://${m[1]}:${Number(m[2]) + 1000}` : 'http://localhost:8233';
  }
  // The UI (2.x) needs the run id to open a workflow; without one, link to the list filtered to this id.
  const ns = `${base.replace(/\/$/, '')}/namespaces/${encodeURIComponent(f.namespace)}`;
  return runId
    ? `${ns}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`
    : `${ns}/workflows?query=${encodeURIComponent(`WorkflowId="${workflowId}"`)}`;
}
