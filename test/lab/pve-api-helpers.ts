// Shared setup for the lab PVE API tests: a design-state host, the API on 127.0.0.1, and clients that pin
// the API's certificate (undici Agent with the cert as the only CA plus a SHA-256 fingerprint check).
import { request } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import proxmoxApi from 'proxmox-api';
import { Agent, fetch as undiciFetch, type RequestInit } from 'undici';
import { LabHost } from '../../src/lab/host';
import { startPveApi, type PveApi } from '../../src/lab/pve-api/server';
import { designState } from '../../src/lab/state';

export interface Harness {
  host: LabHost;
  api: PveApi;
  tokenId: string;
  tokenSecret: string;
  rootPassword: string;
  agent: Agent;
}

export async function startHarness(timeScale = 0.002): Promise<Harness> {
  const state = designState({ sshHostKeyPem: '', rootPrivateKeyPem: '', rootPublicKey: '', vllmApiKey: 'test-key' });
  const host = new LabHost(state, timeScale);
  const api = await startPveApi(host);
  const token = state.access.tokens[0];
  if (!token) throw new Error('seed has no token');
  const agent = new Agent({
    connect: {
      ca: api.certPem,
      checkServerIdentity: (_name: string, cert: PeerCertificate) =>
        cert.fingerprint256 === api.certFingerprint ? undefined : new Error(`certificate fingerprint mismatch: ${cert.fingerprint256}`),
    },
  });
  return { host, api, tokenId: `${token.userid}!${token.tokenid}`, tokenSecret: token.secret, rootPassword: state.access.rootPassword, agent };
}

export async function stopHarness(h: Harness): Promise<void> {
  await h.api.stop();
  await h.agent.close();
}

function pinnedFetch(h: Harness) {
  return (url: string | URL, init?: RequestInit) => undiciFetch(url, { ...init, dispatcher: h.agent });
}

export function tokenClient(h: Harness) {
  return proxmoxApi({ host: '127.0.0.1', port: h.api.port, tokenID: h.tokenId, tokenSecret: h.tokenSecret, fetch: pinnedFetch(h) });
}

export function rootClient(h: Harness) {
  return proxmoxApi({ host: '127.0.0.1', port: h.api.port, username: 'root@pam', password: h.rootPassword, fetch: pinnedFetch(h) });
}

export interface RawResponse {
  status: number;
  reason: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: unknown;
}

/** A raw HTTPS request (to see status lines, headers and bodies exactly as sent). */
export function raw(h: Harness, method: string, path: string, opts: { headers?: Record<string, string>; form?: Record<string, string> } = {}): Promise<RawResponse> {
  const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    headers['Content-Length'] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1', port: h.api.port, method, path: `/api2/json${path}`, headers, ca: h.api.certPem,
        checkServerIdentity: (_n, cert) => (cert.fingerprint256 === h.api.certFingerprint ? undefined : new Error('fingerprint mismatch')),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', headers: res.headers, body: text, json });
        });
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export function tokenHeader(h: Harness): Record<string, string> {
  return { Authorization: `PVEAPIToken=${h.tokenId}=${h.tokenSecret}` };
}

/** Poll a task until it stops, as a client would. */
export async function waitTask(h: Harness, upid: string): Promise<{ exitstatus: string; log: string[] }> {
  const px = tokenClient(h);
  for (let i = 0; i < 2000; i++) {
    const st = (await px.nodes.$('pve').tasks.$(upid).status.$get()) as { status: string; exitstatus?: string };
    if (st.status === 'stopped') {
      const log = (await px.nodes.$('pve').tasks.$(upid).log.$get({ limit: 0 })) as Array<{ n: number; t: string }>;
      return { exitstatus: st.exitstatus ?? '', log: log.map((l) => l.t) };
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`task ${upid} did not finish`);
}
