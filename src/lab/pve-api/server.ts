/**
 * The lab's PVE API: HTTPS on 127.0.0.1 speaking pveproxy's protocol (`/api2/json`, `{"data": …}` envelope,
 * `application/json;charset=UTF-8`, reason phrase = first line of the error, 401s delayed 3 s), both auth
 * schemes of the `proxmox-api` client, schema validation of every request, and the `pve-500` fault.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LabHost } from '../host';
import { Authenticator, type Caller } from './auth';
import { ApiError, dieError, paramError, toApiError } from './errors';
import { accessRoutes } from './handlers/access';
import { lxcRoutes } from './handlers/lxc';
import { nodeRoutes } from './handlers/node';
import { qemuRoutes } from './handlers/qemu';
import { Router, requirePrivilege, type Ctx } from './routes';
import subsetJson from './schema-subset.json';
import type { SchemaSubset } from './schema-types';
import { TaskRunner } from './tasks';
import { ensureCertificate } from './tls';
import { validateParams, type Params } from './validate';

const SCHEMA = subsetJson as unknown as SchemaSubset;
const BASE = '/api2/json';
const MAX_BODY = 512 * 1024;

export interface PveApiOptions {
  /** Armed faults; defaults to the host's own set (only `pve-500` is read here). */
  faults?: Set<string>;
}

export interface PveApi {
  port: number;
  certFingerprint: string;
  certPem: string;
  stop(): Promise<void>;
}

/**
 * Start the API on 127.0.0.1 (ephemeral port). Credentials are the host state's: `access.tokens` (token id and
 * secret) and `access.rootPassword` (root@pam ticket login), so tokens created through the API work at once.
 */
export async function startPveApi(host: LabHost, opts: PveApiOptions = {}): Promise<PveApi> {
  const cert = await ensureCertificate(host.state);
  const auth = new Authenticator(host.state);
  const tasks = new TaskRunner(host);
  const router = new Router([...accessRoutes, ...nodeRoutes, ...lxcRoutes, ...qemuRoutes]);
  const faults: Set<string> = opts.faults ?? (host.faults as Set<string>);

  const server: Server = createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
    handle(req, res).catch((err: unknown) => send(res, toApiError(err)));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const body = await readBody(req);
    if (!url.pathname.startsWith(`${BASE}/`)) {
      send(res, new ApiError(501, 'no such uri'), true);
      return;
    }
    const rel = url.pathname.slice(BASE.length).replace(/\/+$/, '') || '/';
    if (body.length > 0 && method !== 'POST' && method !== 'PUT') {
      send(res, new ApiError(501, `Unexpected content for method '${method}'`), true);
      return;
    }
    let caller: Caller | undefined;
    const isLogin = rel === '/access/ticket' && (method === 'POST' || method === 'GET');
    if (!isLogin) {
      try {
        caller = auth.authenticate(method, req.headers);
      } catch (err) {
        await host.delay(3000); // pveproxy delays every failed authentication by 3 s
        throw err;
      }
    }
    const params = { ...parseParams(url.searchParams), ...parseBody(req.headers['content-type'], body) };
    delete params._dc;
    if (isLogin) {
      const loginSchema = SCHEMA['/access/ticket']?.[method];
      if (!loginSchema) throw new ApiError(501, `Method '${method} ${rel}' not implemented`);
      const loginErrors = validateParams(loginSchema.parameters, params);
      if (loginErrors) throw paramError(loginErrors);
      try {
        send(res, { data: auth.login(String(params.username), String(params.password), params.realm as string | undefined) });
      } catch (err) {
        await host.delay(3000);
        throw err;
      }
      return;
    }
    const matched = router.match(method, rel);
    const schema = matched ? SCHEMA[matched.route.path]?.[method] : undefined;
    if (!matched || !schema) throw new ApiError(501, `Method '${method} ${rel}' not implemented`);
    Object.assign(params, matched.pathParams);
    const errors = validateParams(schema.parameters, params);
    if (errors) throw paramError(errors);
    const ctx: Ctx = { host, caller: caller as Caller, params, tasks, auth, attribs: {} };
    requirePrivilege(ctx, matched.route);
    if (method !== 'GET' && faults.delete('pve-500')) {
      // Injected once: a transient pmxcfs failure, answered before anything is changed.
      throw dieError('cluster not ready - no quorum?');
    }
    const data = await matched.route.handler(ctx);
    send(res, { data: data === undefined ? null : typed(data, schema?.returnTypes), ...ctx.attribs });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    certFingerprint: cert.fingerprint,
    certPem: cert.certPem,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await tasks.drain();
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, 'Request Entity Too Large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Repeated keys become arrays (PVE's array parameters); everything else stays a string. */
function parseParams(sp: URLSearchParams): Params {
  const out: Params = {};
  for (const [k, v] of sp) {
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else out[k] = Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function parseBody(contentType: string | undefined, body: string): Params {
  if (body === '') return {};
  if (contentType?.startsWith('application/json')) {
    let obj: unknown;
    try {
      obj = JSON.parse(body);
    } catch {
      throw new ApiError(400, 'failed to parse JSON body');
    }
    const out: Params = {};
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
      for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
        if (v === null || v === undefined) continue;
        const one = (x: unknown): string => (x === true ? '1' : x === false ? '0' : typeof x === 'object' ? JSON.stringify(x) : String(x));
        out[k] = Array.isArray(v) ? v.map(one) : one(v);
      }
    }
    return out;
  }
  return parseParams(new URLSearchParams(body));
}

/** Reason phrases must be a single printable line; PVE answers 400 if the message had CR/LF in its first line. */
function reasonOf(message: string): string {
  const first = message.split('\n')[0] ?? '';
  return first.replace(/[^\x20-\x7e]/g, '?') || 'Error';
}

function baseHeaders(): Record<string, string> {
  const date = new Date().toUTCString();
  return { Date: date, Expires: date, 'Cache-Control': 'max-age=0', Pragma: 'no-cache', Server: 'pve-api-daemon/3.0' };
}

/** Send a success envelope, or an error the way pveproxy formats it (`bare`: auth errors carry no body). */
/** A returned object's keys as PVE's JSON prints them: integers and numbers as numbers, booleans as 1/0. */
function typed(data: unknown, types: Record<string, string> | undefined): unknown {
  if (!types || typeof data !== 'object' || data === null || Array.isArray(data)) return data;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    const t = types[k];
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    out[k] = t && Number.isFinite(n) ? (t === 'boolean' ? (n ? 1 : 0) : n) : v;
  }
  return out;
}

function send(res: ServerResponse, payload: ApiError | { data: unknown }, bareOverride = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers = baseHeaders();
  if (payload instanceof ApiError) {
    headers.Connection = 'close';
    if (payload.bare || bareOverride) {
      const text = payload.status === 501 ? payload.message : '';
      res.writeHead(payload.status, reasonOf(payload.message), { ...headers, 'Content-Length': String(Buffer.byteLength(text)) });
      res.end(text);
      return;
    }
    const body: Record<string, unknown> = { data: null, message: payload.message };
    if (payload.errors) body.errors = payload.errors;
    const json = JSON.stringify(body);
    res.writeHead(payload.status, reasonOf(payload.message), {
      ...headers, 'Content-Type': 'application/json;charset=UTF-8', 'Content-Length': String(Buffer.byteLength(json)),
    });
    res.end(json);
    return;
  }
  const json = JSON.stringify(payload);
  res.writeHead(200, 'OK', {
    ...headers, Connection: 'Keep-Alive', 'Content-Type': 'application/json;charset=UTF-8', 'Content-Length': String(Buffer.byteLength(json)),
  });
  res.end(json);
}
