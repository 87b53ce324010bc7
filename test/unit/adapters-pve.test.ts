/**
 * The PVE client against a tiny local HTTPS server that answers like pveproxy (status line = first line of
 * the message, JSON envelope with the exact content type): TLS pinning, CA mode, error classes, task waiting.
 */
import { createServer, Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { createPveClient, PveClient, PveTarget } from '../../src/adapters/pve';

const TOKEN_ID = 'root@pam!pve-vllm';
const TOKEN_SECRET = '12345678-1234-4234-9234-1234567890ab';
const ROOT_PASSWORD = 'hunter2-root';
const UPID_OK = 'UPID:pve:000C5D17:016CF676:66C64704:vzstart:117:root@pam!pve-vllm:';
const UPID_WARN = 'UPID:pve:000C5D18:016CF676:66C64705:vzcreate:117:root@pam!pve-vllm:';
const UPID_FAIL = 'UPID:pve:000C5D19:016CF676:66C64706:vzstart:117:root@pam!pve-vllm:';
const UPID_SLOW = 'UPID:pve:000C5D1A:016CF676:66C64707:vzstop:117:root@pam!pve-vllm:';

interface Seen {
  method: string;
  path: string;
  auth?: string;
  cookie?: string;
  body: string;
}

let server: Server;
let port: number;
let leafFingerprint: string;
let caFile: string;
let wrongCaFile: string;
const seen: Seen[] = [];
let tlsHandshakes = 0;
const polls = new Map<string, number>();

function reply(res: ServerResponse, status: number, body: unknown, reason?: string): void {
  const text = JSON.stringify(body);
  // pveproxy: reason phrase = first line of the message; exact content type (proxmox-api insists on it).
  res.writeHead(status, reason ?? (status === 200 ? 'OK' : 'Error'), {
    'Content-Type': 'application/json;charset=UTF-8',
    'Content-Length': Buffer.byteLength(text),
    Server: 'pve-api-daemon/3.0',
  });
  res.end(text);
}

function fail(res: ServerResponse, status: number, message: string, errors?: Record<string, string>): void {
  reply(res, status, { data: null, message: `${message}\n`, ...(errors ? { errors } : {}) }, message.split('\n')[0]);
}

function taskStatus(upid: string): Record<string, unknown> {
  const n = (polls.get(upid) ?? 0) + 1;
  polls.set(upid, n);
  const base = { upid, node: 'pve', type: 'vzstart', id: '117', user: 'root@pam', tokenid: 'pve-vllm' };
  if (upid === UPID_SLOW || n < 3) return { ...base, status: 'running' };
  const exitstatus = upid === UPID_OK ? 'OK' : upid === UPID_WARN ? 'WARNINGS: 2' : "startup for container '117' failed";
  return { ...base, status: 'stopped', exitstatus };
}

function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
  const url = new URL(req.url ?? '/', 'https://x');
  const path = decodeURIComponent(url.pathname);
  seen.push({ method: req.method ?? '', path, auth: req.headers.authorization, cookie: req.headers.cookie, body });
  const authed =
    req.headers.authorization === `PVEAPIToken=${TOKEN_ID}=${TOKEN_SECRET}` || req.headers.cookie === 'PVEAuthCookie=PVE:root@pam:TICKET';
  if (path === '/api2/json/access/ticket' && req.method === 'POST') {
    const form = new URLSearchParams(body);
    if (form.get('username') === 'root@pam' && form.get('password') === ROOT_PASSWORD) {
      reply(res, 200, { data: { ticket: 'PVE:root@pam:TICKET', CSRFPreventionToken: 'CSRF', username: 'root@pam' } });
    } else {
      res.writeHead(401, 'authentication failure');
      res.end();
    }
    return;
  }
  if (!authed) {
    res.writeHead(401, 'No ticket');
    res.end();
    return;
  }
  const m = /^\/api2\/json\/nodes\/pve\/tasks\/([^/]+)\/(status|log)$/.exec(path);
  if (m && req.method === 'GET') {
    if (m[2] === 'status') return reply(res, 200, { data: taskStatus(m[1]) });
    const lines = ['starting container 117', 'lxc-start: 117: ../src/lxc/start.c: some failure', "TASK ERROR: startup for container '117' failed"];
    return reply(res, 200, { data: lines.map((t, i) => ({ n: i + 1, t })), total: lines.length });
  }
  switch (`${req.method} ${path}`) {
    case 'GET /api2/json/version':
      return reply(res, 200, { data: { version: '8.2.4', release: '8.2', repoid: 'faa83925c9641325' } });
    case 'PUT /api2/json/nodes/pve/lxc/117/config':
      return fail(res, 400, 'Parameter verification failed.', { cores: 'value must have a minimum value of 1', memory: 'type check (\'integer\') failed - got \'lots\'' });
    case 'POST /api2/json/nodes/pve/lxc/117/mount':
      return fail(res, 403, 'Permission check failed (user != root@pam)');
    case 'GET /api2/json/nodes/pve/lxc/999/config':
      return fail(res, 500, "Configuration file 'nodes/pve/lxc/999.conf' does not exist");
    case 'GET /api2/json/nodes/pve/busy':
      return fail(res, 500, 'got timeout');
    case 'GET /api2/json/nodes/pve/hang':
      return; // never answers: the client's query timeout must end the request
    case 'POST /api2/json/nodes/pve/lxc':
      // the connection dies after the request arrived: the client must not send it again
      req.socket.destroy();
      return;
    case 'POST /api2/json/nodes/pve/lxc/117/status/start':
      return reply(res, 200, { data: UPID_OK });
    default:
      return fail(res, 501, `Method '${req.method} ${path.replace('/api2/json', '')}' not implemented`);
  }
}

beforeAll(async () => {
  const ca = await generate([{ name: 'commonName', value: 'Proxmox Virtual Environment' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [{ name: 'basicConstraints', cA: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true }],
  });
  const leaf = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca: { key: ca.private, cert: ca.cert },
  });
  const otherCa = await generate([{ name: 'commonName', value: 'Someone else' }], { keyType: 'ec', algorithm: 'sha256' });
  const dir = mkdtempSync(join(tmpdir(), 'pve-vllm-tls-'));
  caFile = join(dir, 'pve-root-ca.pem');
  wrongCaFile = join(dir, 'other-ca.pem');
  writeFileSync(caFile, ca.cert);
  writeFileSync(wrongCaFile, otherCa.cert);
  server = createServer({ key: leaf.private, cert: leaf.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString()));
  });
  server.on('connection', () => tlsHandshakes++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  leafFingerprint = new (await import('node:crypto')).X509Certificate(leaf.cert).fingerprint256;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const clients: PveClient[] = [];
function client(tls: PveTarget['tls'], auth: Parameters<typeof createPveClient>[1] = 'token'): PveClient {
  const c = createPveClient({ host: '127.0.0.1', port, tokenId: TOKEN_ID, tokenSecret: TOKEN_SECRET, tls }, auth);
  clients.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function caught(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

describe('TLS', () => {
  it('accepts the pinned certificate, in any case and with or without colons', async () => {
    await expect(client({ fingerprint: leafFingerprint }).get('/version')).resolves.toMatchObject({ version: '8.2.4' });
    await expect(client({ fingerprint: leafFingerprint.toLowerCase() }).get('/version')).resolves.toBeTruthy();
    await expect(client({ fingerprint: leafFingerprint.replace(/:/g, '') }).get('/version')).resolves.toBeTruthy();
    expect(seen.at(-1)?.auth).toBe(`PVEAPIToken=${TOKEN_ID}=${TOKEN_SECRET}`);
  });

  it('refuses a wrong pin before sending a single request byte, saying expected vs got and the remedy', async () => {
    const wrong = 'AB:'.repeat(31) + 'AB';
    const requestsBefore = seen.length;
    const handshakesBefore = tlsHandshakes;
    const err = await caught(client({ fingerprint: wrong }).post('/nodes/pve/lxc/117/status/start'));
    expect(err.name).toBe('TlsPinMismatchError');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(`expected ${wrong}`);
    expect(err.message).toContain(`got ${leafFingerprint}`);
    expect(err.message).toMatch(/openssl x509 -noout -fingerprint -sha256/);
    expect(err.message).not.toContain(TOKEN_SECRET);
    expect(tlsHandshakes).toBeGreaterThan(handshakesBefore); // it did connect…
    expect(seen.length).toBe(requestsBefore); // …but no HTTP request (and no token) ever reached the server
  });

  it('refuses a malformed pin up front', () => {
    expect(() => client({ fingerprint: 'SHA256:abc' })).toThrow(/not a SHA-256 fingerprint/);
  });

  it('verifies against a CA file', async () => {
    await expect(client({ caFile }).get('/version')).resolves.toMatchObject({ version: '8.2.4' });
  });

  it('refuses a certificate the CA file did not sign', async () => {
    const err = await caught(client({ caFile: wrongCaFile }).get('/version'));
    expect(err.name).toBe('TlsVerificationError');
    expect(err.message).toMatch(/caFile|fingerprint/);
  });

  it('refuses the self-signed PVE certificate with neither pin nor CA (no silent trust)', async () => {
    const err = await caught(client({}).get('/version'));
    expect(err.name).toBe('TlsVerificationError');
  });

  it('never switches verification off process-wide', () => {
    expect(process.env.NODE_TLS_REJECT_UNAUTHORIZED).toBeUndefined();
  });
});

describe('requests and errors', () => {
  it('logs in as root@pam with a password when asked, and sends the ticket', async () => {
    const c = client({ fingerprint: leafFingerprint }, { username: 'root@pam', password: ROOT_PASSWORD });
    await expect(c.get('/version')).resolves.toBeTruthy();
    expect(seen.at(-1)?.cookie).toBe('PVEAuthCookie=PVE:root@pam:TICKET');
  });

  it('maps a bad root password to PveAuthError', async () => {
    const err = await caught(client({ fingerprint: leafFingerprint }, { username: 'root@pam', password: 'nope' }).get('/version'));
    expect(err.name).toBe('PveAuthError');
    expect(err.message).toMatch(/authentication failure/);
    expect(err.message).not.toContain('nope');
  });

  it('maps 400 to PveValidationError with the per-parameter errors', async () => {
    const err = await caught(client({ fingerprint: leafFingerprint }).put('/nodes/pve/lxc/117/config', { cores: 0, memory: 'lots' }));
    expect(err.name).toBe('PveValidationError');
    expect(err.retryable).toBe(false);
    expect(err.paramErrors).toEqual({ cores: 'value must have a minimum value of 1', memory: "type check ('integer') failed - got 'lots'" });
    expect(err.message).toMatch(/PUT \/nodes\/pve\/lxc\/117\/config.*Parameter verification failed.*cores: value must/);
    expect(seen.at(-1)?.body).toBe('cores=0&memory=lots');
  });

  it('maps 403 to PvePermissionError naming root@pam as the remedy', async () => {
    const err = await caught(client({ fingerprint: leafFingerprint }).post('/nodes/pve/lxc/117/mount'));
    expect(err.name).toBe('PvePermissionError');
    expect(err.message).toContain('Permission check failed (user != root@pam)');
    expect(err.message).toMatch(/proxmox\.root\.password|over SSH/);
  });

  it('maps 500 "does not exist" to PveNotFoundError and other 500s to retryable PveServerError', async () => {
    const c = client({ fingerprint: leafFingerprint });
    expect((await caught(c.get('/nodes/pve/lxc/999/config'))).name).toBe('PveNotFoundError');
    const busy = await caught(c.get('/nodes/pve/busy'));
    expect(busy.name).toBe('PveServerError');
    expect(busy.retryable).toBe(true);
    expect((await caught(c.get('/nodes/pve/nothing-here'))).name).toBe('PveNotFoundError');
  });

  it('does not send a POST twice when the connection dies (proxmox-api would retry it)', async () => {
    const before = seen.filter((s) => s.path === '/api2/json/nodes/pve/lxc').length;
    const err = await caught(client({ fingerprint: leafFingerprint }).post('/nodes/pve/lxc', { vmid: 117 }));
    expect(err.name).toBe('PveConnectionError');
    expect(err.retryable).toBe(true);
    expect(seen.filter((s) => s.path === '/api2/json/nodes/pve/lxc').length).toBe(before + 1);
  });

  it('ends a request that gets no answer after its query timeout, as a retryable connection error', async () => {
    const c = createPveClient({ host: '127.0.0.1', port, tokenId: TOKEN_ID, tokenSecret: TOKEN_SECRET, tls: { fingerprint: leafFingerprint } }, 'token', { queryTimeoutMs: 150 });
    clients.push(c);
    const t0 = Date.now();
    const err = await caught(c.get('/nodes/pve/hang'));
    expect(err.name).toBe('PveConnectionError');
    expect(err.message).toMatch(/timed out/);
    expect(err.retryable).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    // the client is still usable afterwards
    await expect(c.get('/version')).resolves.toMatchObject({ version: '8.2.4' });
  });

  it('reads the reason phrase and the JSON body of a response whole', async () => {
    await expect(client({ fingerprint: leafFingerprint }).get('/version')).resolves.toEqual({ version: '8.2.4', release: '8.2', repoid: 'faa83925c9641325' });
    const err = await caught(client({ fingerprint: leafFingerprint }).get('/nodes/pve/lxc/999/config'));
    expect(err.message).toContain("Configuration file 'nodes/pve/lxc/999.conf' does not exist");
  });

  it('rejects paths that would escape /api2/json', async () => {
    await expect(client({ fingerprint: leafFingerprint }).get('/api2/json/version')).rejects.toThrow(/relative to \/api2\/json/);
  });
});

describe('waitTask', () => {
  it('polls until stopped and returns OK', async () => {
    const c = client({ fingerprint: leafFingerprint });
    const upid = (await c.post('/nodes/pve/lxc/117/status/start')) as string;
    const seenPolls: string[] = [];
    const res = await c.waitTask(upid, { pollMs: 10, onPoll: (s) => seenPolls.push(s.status) });
    expect(res).toEqual({ exitstatus: 'OK', warnings: 0 });
    expect(seenPolls).toEqual(['running', 'running', 'stopped']);
  });

  it('counts WARNINGS: 2 as success with 2 warnings', async () => {
    await expect(client({ fingerprint: leafFingerprint }).waitTask(UPID_WARN, { pollMs: 10 })).resolves.toEqual({
      exitstatus: 'WARNINGS: 2',
      warnings: 2,
    });
  });

  it('fails with PveTaskFailedError carrying the exit status and the log tail', async () => {
    const err = await caught(client({ fingerprint: leafFingerprint }).waitTask(UPID_FAIL, { pollMs: 10 }));
    expect(err.name).toBe('PveTaskFailedError');
    expect(err.exitstatus).toBe("startup for container '117' failed");
    expect(err.message).toContain("TASK ERROR: startup for container '117' failed");
    expect(err.logTail).toHaveLength(3);
    expect(seen.some((s) => s.path === `/api2/json/nodes/pve/tasks/${UPID_FAIL}/log`)).toBe(true);
  });

  it('gives up after timeoutMs with a retryable PveTaskTimeoutError', async () => {
    const err = await caught(client({ fingerprint: leafFingerprint }).waitTask(UPID_SLOW, { pollMs: 20, timeoutMs: 150 }));
    expect(err.name).toBe('PveTaskTimeoutError');
    expect(err.retryable).toBe(true);
  });

  it('stops polling when cancelled', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('activity cancelled')), 50);
    await expect(client({ fingerprint: leafFingerprint }).waitTask(UPID_SLOW, { pollMs: 20, signal: ac.signal })).rejects.toThrow(
      'activity cancelled',
    );
  });

  it('refuses something that is not a UPID', async () => {
    await expect(client({ fingerprint: leafFingerprint }).waitTask('pve:117')).rejects.toThrow(/not a Proxmox task id/);
  });
});
