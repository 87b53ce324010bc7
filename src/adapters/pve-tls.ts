/**
 * TLS for the Proxmox API, per client and never process-wide: either the leaf certificate is pinned by its
 * SHA-256 fingerprint, or it is verified normally against a CA file (or the system CAs).
 *
 * Pinning happens in the undici connector, after the TLS handshake and before the socket is handed to the
 * HTTP client: a wrong certificate gets no request bytes at all, so no token, ticket or password is sent to it.
 * Session resumption is off, so every connection presents (and is checked against) a full certificate.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { Agent, buildConnector } from 'undici';
import { AdapterError, PveConnectionError, TlsPinMismatchError, TlsVerificationError } from './errors';

export interface PveTls {
  /** SHA-256 of the leaf certificate, colon hex as `openssl x509 -fingerprint -sha256` prints it (any case). */
  fingerprint?: string;
  /** PEM CA bundle to verify against (e.g. a copy of /etc/pve/pve-root-ca.pem). */
  caFile?: string;
}

/** `ab:CD:…` or `abcd…` → `AB:CD:…`; throws on anything that is not 32 bytes of hex. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.trim().replace(/^sha256\s*(fingerprint)?\s*=\s*/i, '').replace(/:/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new TlsVerificationError('config', `proxmox.api.tls.fingerprint is not a SHA-256 fingerprint: ${JSON.stringify(fp)}`);
  }
  return hex.match(/../g)!.join(':');
}

/**
 * One TLS context per client, made once: without it every connection built its own (and with it a copy of the
 * system CA store), ~0.6 ms of CPU each. A context holds no sessions, so every handshake is still a full one.
 */
export function createPveDispatcher(label: string, tls: PveTls): Agent {
  if (tls.fingerprint) {
    const expected = normalizeFingerprint(tls.fingerprint);
    // rejectUnauthorized:false only skips the chain check (PVE's cert is self-signed by its own cluster CA);
    // the exact leaf is then required below, which is stricter than chain + hostname verification.
    const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0, secureContext: createSecureContext() });
    return new Agent({
      connect: (opts, callback) => {
        base(opts, (err, socket) => {
          if (err) {
            callback(err, null);
            return;
          }
          const cert = (socket as TLSSocket).getPeerCertificate?.();
          const got = cert && cert.fingerprint256 ? cert.fingerprint256.toUpperCase() : '(no certificate)';
          if (got !== expected) {
            socket.destroy();
            callback(new TlsPinMismatchError(label, expected, got), null);
            return;
          }
          callback(null, socket);
        });
      },
    });
  }
  if (tls.caFile) {
    let ca: Buffer;
    try {
      ca = readFileSync(tls.caFile);
    } catch (e) {
      throw new TlsVerificationError(label, `cannot read caFile ${tls.caFile}: ${(e as Error).message}`);
    }
    return new Agent({ connect: { secureContext: createSecureContext({ ca }), rejectUnauthorized: true } });
  }
  return new Agent({ connect: { secureContext: createSecureContext(), rejectUnauthorized: true } });
}

const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/** What undici's `fetch failed` really was: walk the cause chain to the typed or coded error underneath. */
export function transportError(err: unknown, label: string): AdapterError {
  const chain: unknown[] = [];
  for (let e: unknown = err; e && chain.length < 8; e = (e as { cause?: unknown }).cause) chain.push(e);
  for (const e of chain) if (e instanceof AdapterError) return e;
  for (const e of chain) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TLS_VERIFY_CODES.has(code)) {
      return new TlsVerificationError(label, `${code}: ${(e as Error).message}`);
    }
  }
  const root = chain[chain.length - 1] as (Error & { code?: string }) | undefined;
  if (chain.some((e) => (e as Error).name === 'AbortError')) {
    return new PveConnectionError(label, 'request timed out', { cause: err });
  }
  const detail = root ? [root.code, root.message].filter(Boolean).join(': ') : String(err);
  return new PveConnectionError(label, detail, { cause: err });
}
