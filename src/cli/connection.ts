// Temporal connection settings with the Temporal CLI's flag names, env vars and defaults.
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { ConnectionOptions } from '@temporalio/client';
import { UsageError } from './exit';

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

// The flags' own checks, before anything connects. They apply to the env vars' values too, where an empty value
// means unset (the default), as it does for the Temporal CLI.
const DEFAULT_ADDRESS = 'localhost:7233';
export function parseAddress(v: string): string {
  if (v === '') return DEFAULT_ADDRESS;
  // What the SDK takes: a host (DNS name, IPv4, or [IPv6]) and an optional port.
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:/\s[\]]+)(:(\d{1,5}))?$/.exec(v);
  const port = m?.[3] === undefined ? 7233 : Number(m[3]);
  if (!m || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`--address: got ${JSON.stringify(v)}; allowed: host or host:port with a port from 1 to 65535 (e.g. localhost:7233, [::1]:7233)`);
  }
  return v;
}
export function parseName(flag: string, fallback: string) {
  return (v: string): string => {
    if (v === '') return fallback;
    if (!/^[^\s\x00-\x1f]{1,255}$/.test(v)) throw new InvalidArgumentError(`${flag}: got ${JSON.stringify(v)}; allowed: 1 to 255 characters, no spaces or control characters`);
    return v;
  };
}
export function parseWebUrl(v: string): string | undefined {
  if (v === '') return undefined; // derived from --address
  let ok = false;
  try {
    ok = ['http:', 'https:'].includes(new URL(v).protocol);
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidArgumentError(`--ui-url: got ${JSON.stringify(v)}; allowed: an http:// or https:// URL (e.g. http://localhost:8233)`);
  return v;
}

/** Adds --address, --namespace, --api-key, --tls* and --task-queue, each with its TEMPORAL_* env var. */
export function withTemporalFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--address <host:port>', 'Temporal frontend address').env('TEMPORAL_ADDRESS').default(DEFAULT_ADDRESS).argParser(parseAddress))
    .addOption(new Option('-n, --namespace <name>', 'Temporal namespace').env('TEMPORAL_NAMESPACE').default('default').argParser(parseName('--namespace', 'default')))
    .addOption(new Option('--api-key <key>', 'API key (prefer the env var: argv is visible to other users)').env('TEMPORAL_API_KEY'))
    .addOption(new Option('--tls', 'connect with TLS').env('TEMPORAL_TLS'))
    .addOption(new Option('--tls-cert-path <file>', 'client certificate for mTLS').env('TEMPORAL_TLS_CLIENT_CERT_PATH'))
    .addOption(new Option('--tls-key-path <file>', 'client key for mTLS').env('TEMPORAL_TLS_CLIENT_KEY_PATH'))
    .addOption(new Option('--tls-ca-path <file>', 'CA certificate of the server').env('TEMPORAL_TLS_SERVER_CA_CERT_PATH'))
    .addOption(new Option('--tls-server-name <name>', 'override the TLS server name').env('TEMPORAL_TLS_SERVER_NAME'))
    .addOption(new Option('--task-queue <name>', 'task queue of the pve-vllm worker').env('PVE_VLLM_TASK_QUEUE').default(DEFAULT_TASK_QUEUE).argParser(parseName('--task-queue', DEFAULT_TASK_QUEUE)))
    .addOption(new Option('--ui-url <url>', 'Temporal Web UI base URL, for links').env('TEMPORAL_UI_URL').argParser(parseWebUrl));
}

/** The connection the flags describe; a TLS file that cannot be read, or half an mTLS pair, is bad input. */
export function connectionOptions(f: TemporalFlags): ConnectionOptions {
  if (Boolean(f.tlsCertPath) !== Boolean(f.tlsKeyPath)) {
    const [given, missing] = f.tlsCertPath ? ['--tls-cert-path', '--tls-key-path'] : ['--tls-key-path', '--tls-cert-path'];
    throw new UsageError(`${given}: got ${JSON.stringify(f.tlsCertPath ?? f.tlsKeyPath)} without ${missing}; allowed: both (mTLS: a client certificate and its key) or neither`);
  }
  const mtls = f.tlsCertPath && f.tlsKeyPath;
  const tls =
    f.tls || mtls || f.tlsCaPath || f.apiKey
      ? {
          serverNameOverride: f.tlsServerName,
          serverRootCACertificate: f.tlsCaPath ? pemFile('--tls-ca-path', f.tlsCaPath) : undefined,
          clientCertPair: mtls ? { crt: pemFile('--tls-cert-path', f.tlsCertPath as string), key: pemFile('--tls-key-path', f.tlsKeyPath as string) } : undefined,
        }
      : undefined;
  return { address: f.address, tls, apiKey: f.apiKey };
}

/** A connection that failed, said as where we looked and what to do. */
export function unreachable(address: string, err: unknown): Error {
  const why = err instanceof Error ? err.message : String(err);
  return new Error(`cannot reach Temporal at ${address} (${why}): start a server (\`temporal server start-dev\`, or docker-compose.temporal.yml) or point --address / TEMPORAL_ADDRESS at one`, { cause: err });
}

function pemFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new UsageError(`${flag}: got ${JSON.stringify(path)}; allowed: a readable PEM file — ${why}`);
  }
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
