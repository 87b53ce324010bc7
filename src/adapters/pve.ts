/**
 * The Proxmox VE API client: proxmox-api's engine (auth, parameter encoding, envelopes) over a per-client
 * TLS-pinned undici dispatcher, with typed errors and task (UPID) waiting, which the library does not do.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { ProxmoxEngine } from 'proxmox-api';
import type { Agent, Dispatcher } from 'undici';
import {
  AdapterError,
  PveTaskFailedError,
  PveTaskTimeoutError,
  PveConfigError,
  classifyPveError,
} from './errors';
import { PveTls, createPveDispatcher, transportError } from './pve-tls';

export { normalizeFingerprint } from './pve-tls';

export interface PveTarget {
  host: string;
  port: number;
  tokenId: string;
  tokenSecret: string;
  tls: PveTls;
}

export type PveAuth = 'token' | { username: 'root@pam'; password: string };

export type PveParamValue = string | number | boolean | Array<string | number> | null | undefined;
export type PveParams = Record<string, PveParamValue>;

export interface TaskStatus {
  status: 'running' | 'stopped';
  exitstatus?: string;
  type?: string;
  id?: string;
  node?: string;
  upid?: string;
}

export interface WaitTaskOptions {
  /** Defaults to the node named inside the UPID. */
  node?: string;
  pollMs?: number;
  timeoutMs?: number;
  /** Called after every poll: activities heartbeat from here. */
  onPoll?: (status: TaskStatus, elapsedMs: number) => void;
  signal?: AbortSignal;
}

export interface TaskResult {
  exitstatus: string;
  warnings: number;
}

export interface PveClient {
  get(path: string, params?: PveParams): Promise<unknown>;
  post(path: string, params?: PveParams): Promise<unknown>;
  put(path: string, params?: PveParams): Promise<unknown>;
  del(path: string, params?: PveParams): Promise<unknown>;
  /** Poll a task until it stops; success iff `OK` or `WARNINGS: n`, else PveTaskFailedError with the log tail. */
  waitTask(upid: string, opts?: WaitTaskOptions): Promise<TaskResult>;
  /** Close pooled TLS connections. */
  close(): Promise<void>;
}

export interface PveClientOptions {
  queryTimeoutMs?: number;
  authTimeoutMs?: number;
}

const TOKEN_ID = /^[^@\s]+@[^!\s]+![A-Za-z][A-Za-z0-9._-]*$/;
const TOKEN_SECRET = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// UPID:$node:$pid:$pstart:$starttime:$type:$id:$user:
const UPID = /^UPID:([a-zA-Z0-9][a-zA-Z0-9.-]*):[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:[^:]+:[^:]*:[^:]+:$/;

export function parseUpid(upid: string): { node: string } {
  const m = UPID.exec(upid);
  if (!m) throw new PveConfigError(`not a Proxmox task id (UPID): ${JSON.stringify(upid)}`);
  return { node: m[1] };
}

interface RequestContext {
  transportError?: AdapterError;
}

// One store for every client: each enabled AsyncLocalStorage adds work to every promise the process creates, so
// a store per client (a worker serving 50 hosts holds 100 clients) made every await in the worker pay 100 times.
const requestContext = new AsyncLocalStorage<RequestContext>();

export function createPveClient(target: PveTarget, auth: PveAuth, options: PveClientOptions = {}): PveClient {
  const label = `${target.host}:${target.port}`;
  if (target.host.includes(':') && !target.host.startsWith('[')) {
    // proxmox-api builds `${host}:${port}`: a host with a port (or a bare IPv6) would give a broken URL.
    throw new PveConfigError(`proxmox host must be a bare host name or address, got ${JSON.stringify(target.host)}`);
  }
  const dispatcher: Agent = createPveDispatcher(label, target.tls);

  // proxmox-api retries every method once after a network error, POST included, and leaves its query timer
  // running when fetch throws. A POST whose answer was lost may already have run on PVE, so a transport error
  // is final here: it is kept aside and fetch answers with a placeholder 599 (no retry, timer cleared), then
  // `request` throws the real, typed error. The activity-level retry (which reads state first) decides the rest.
  const pinnedFetch = async (url: string | URL, init?: FetchInit): Promise<FetchAnswer> => {
    const ctx = requestContext.getStore();
    if (!ctx) throw new PveConfigError('PVE request outside of PveClient.request');
    if (!ctx.transportError) {
      try {
        return await send(dispatcher, new URL(url), init ?? {});
      } catch (err) {
        ctx.transportError = transportError(err, label);
      }
    }
    return answer(599, 'transport error', {}, Buffer.alloc(0));
  };

  const common = {
    host: target.host,
    port: target.port,
    schema: 'https' as const,
    queryTimeout: options.queryTimeoutMs ?? 60_000,
    authTimeout: options.authTimeoutMs ?? 10_000,
    // proxmox-api types its fetch as undici's; it reads only what FetchAnswer has.
    fetch: pinnedFetch as unknown as ConstructorParameters<typeof ProxmoxEngine>[0]['fetch'],
  };
  let engine: ProxmoxEngine;
  if (auth === 'token') {
    // Checked here because proxmox-api would console.error and throw a less helpful message.
    if (!TOKEN_ID.test(target.tokenId)) throw new PveConfigError(`proxmox.api.tokenId must look like USER@REALM!TOKENID, got ${JSON.stringify(target.tokenId)}`);
    if (!TOKEN_SECRET.test(target.tokenSecret)) throw new PveConfigError('the PVE token secret must be a lower-case UUID (the value shown once when the token was created)');
    engine = new ProxmoxEngine({ ...common, tokenID: target.tokenId, tokenSecret: target.tokenSecret });
  } else {
    if (!auth.password) throw new PveConfigError('the root@pam password is empty');
    engine = new ProxmoxEngine({ ...common, username: auth.username, password: auth.password });
  }

  async function request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, params?: PveParams): Promise<unknown> {
    if (!path.startsWith('/') || path.startsWith('/api2/')) {
      throw new PveConfigError(`PVE path must start with / and be relative to /api2/json, got ${JSON.stringify(path)}`);
    }
    const ctx: RequestContext = {};
    const full = `/api2/json${path}`;
    try {
      // The engine deletes null/undefined keys in place: hand it a copy.
      return await requestContext.run(ctx, () => engine.doRequest(method, full, full, params ? { ...params } : undefined));
    } catch (err) {
      if (ctx.transportError) throw ctx.transportError;
      throw classifyPveError(err, label);
    }
  }

  const client: PveClient = {
    get: (path, params) => request('GET', path, params),
    post: (path, params) => request('POST', path, params),
    put: (path, params) => request('PUT', path, params),
    del: (path, params) => request('DELETE', path, params),
    waitTask: (upid, opts) => waitTask(client, upid, opts),
    close: () => dispatcher.close(),
  };
  return client;
}

/** What proxmox-api passes to fetch. */
interface FetchInit {
  method?: string;
  body?: string | null;
  headers?: Record<string, string>;
  signal?: AbortSignal | null;
}

/** The part of a fetch Response that proxmox-api reads. PVE's reason phrase carries its error text. */
interface FetchAnswer {
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  body: Buffer;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

function answer(status: number, statusText: string, headers: Record<string, string>, body: Buffer): FetchAnswer {
  return {
    status,
    statusText,
    headers: { get: (name) => headers[name.toLowerCase()] ?? null },
    body,
    text: async () => body.toString('utf8'),
    json: async () => JSON.parse(body.toString('utf8')) as unknown,
  };
}

/**
 * One request through undici's dispatcher, the answer read whole. undici's fetch did the same work through
 * WHATWG streams, Headers and Response objects: at 50 deploys at once that was the worker's largest CPU cost
 * while the containers were being created (~1 ms per request, about three times this).
 */
function send(dispatcher: Dispatcher, url: URL, init: FetchInit): Promise<FetchAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let status = 0;
    let statusText = '';
    const headers: Record<string, string> = {};
    const signal = init.signal ?? undefined;
    let onAbort: (() => void) | undefined;
    const done = (): void => {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    };
    // undici sets Content-Length from the body itself (proxmox-api counts characters, not bytes).
    const sent = Object.fromEntries(Object.entries(init.headers ?? {}).filter(([k]) => k.toLowerCase() !== 'content-length'));
    dispatcher.dispatch(
      { origin: url.origin, path: `${url.pathname}${url.search}`, method: (init.method ?? 'GET') as Dispatcher.HttpMethod, headers: sent, body: init.body ?? undefined },
      {
        onConnect(abort) {
          if (!signal) return;
          if (signal.aborted) abort(abortError());
          else signal.addEventListener('abort', (onAbort = () => abort(abortError())), { once: true });
        },
        onHeaders(statusCode, raw, _resume, statusMessage) {
          status = statusCode;
          statusText = statusMessage;
          for (let i = 0; i + 1 < raw.length; i += 2) headers[String(raw[i]).toLowerCase()] = String(raw[i + 1]);
          return true;
        },
        onData(chunk) {
          chunks.push(chunk);
          return true;
        },
        onComplete() {
          done();
          resolve(answer(status, statusText, headers, Buffer.concat(chunks)));
        },
        onError(err) {
          done();
          reject(err);
        },
      },
    );
  });
}

/** proxmox-api aborts a request after its query timeout; transportError() reports an AbortError as a timeout. */
function abortError(): Error {
  const err = new Error('the request was aborted');
  err.name = 'AbortError';
  return err;
}

const TRANSIENT_POLL_ERRORS = 3;
const LOG_TAIL_LINES = 20;

async function waitTask(client: PveClient, upid: string, opts: WaitTaskOptions = {}): Promise<TaskResult> {
  const node = opts.node ?? parseUpid(upid).node;
  const pollMs = opts.pollMs ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  const started = Date.now();
  const statusPath = `/nodes/${node}/tasks/${upid}/status`;
  let transient = 0;
  for (;;) {
    opts.signal?.throwIfAborted();
    let status: TaskStatus | undefined;
    try {
      status = (await client.get(statusPath)) as TaskStatus;
      transient = 0;
    } catch (err) {
      // A blip while polling must not fail a task that is doing fine on the host.
      if (!(err instanceof AdapterError) || !err.retryable || ++transient > TRANSIENT_POLL_ERRORS) throw err;
    }
    if (status) {
      opts.onPoll?.(status, Date.now() - started);
      if (status.status === 'stopped') {
        const exitstatus = status.exitstatus ?? 'unknown';
        if (exitstatus === 'OK') return { exitstatus, warnings: 0 };
        const warn = /^WARNINGS: (\d+)$/.exec(exitstatus);
        if (warn) return { exitstatus, warnings: Number(warn[1]) };
        throw new PveTaskFailedError(upid, exitstatus, await logTail(client, node, upid));
      }
    }
    const left = timeoutMs - (Date.now() - started);
    if (left <= 0) throw new PveTaskTimeoutError(upid, timeoutMs);
    await sleep(Math.min(pollMs, left), opts.signal);
  }
}

async function logTail(client: PveClient, node: string, upid: string): Promise<string[]> {
  try {
    const lines = (await client.get(`/nodes/${node}/tasks/${upid}/log`, { start: 0, limit: 100_000 })) as Array<{ n: number; t: string }>;
    return lines.slice(-LOG_TAIL_LINES).map((l) => (l.t.length > 300 ? `${l.t.slice(0, 300)}…` : l.t));
  } catch (err) {
    // The failure itself matters more than its log: report that the log could not be read.
    return [`(task log unavailable: ${(err as Error).message})`];
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    function onAbort(): void {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
