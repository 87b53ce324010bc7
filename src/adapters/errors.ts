/**
 * Typed errors of the adapters, and the one place where raw proxmox-api errors are classified.
 *
 * Temporal turns a thrown Error into an ApplicationFailure whose `type` is `err.name`, and the retry policy
 * matches `nonRetryableErrorTypes` against that string. So every class sets `this.name` explicitly (it must
 * survive bundling and the workflow sandbox, where `instanceof` does not), and `retryable` mirrors the list.
 */

export abstract class AdapterError extends Error {
  abstract readonly retryable: boolean;
}

// ---------- SSH ----------

export class HostKeyMismatchError extends AdapterError {
  readonly retryable = false;
  constructor(readonly target: string, readonly expected: string, readonly got: string) {
    super(
      `SSH host key of ${target} does not match the pinned fingerprint: expected ${expected}, got ${got}. ` +
        'Either the host was reinstalled or someone is in the middle. If you know the key changed on purpose, ' +
        'read it on the host with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` and update proxmox.ssh.hostKey ' +
        'in the config.',
    );
    this.name = 'HostKeyMismatchError';
  }
}

export class SshAuthError extends AdapterError {
  readonly retryable = false;
  constructor(readonly target: string, detail: string) {
    super(
      `SSH authentication to ${target} failed (${detail}). Check that the public key of the configured private ` +
        "key is in the user's ~/.ssh/authorized_keys on the host and that the user name is right.",
    );
    this.name = 'SshAuthError';
  }
}

export class SshConnectionError extends AdapterError {
  readonly retryable = true;
  constructor(readonly target: string, detail: string, options?: { cause?: unknown }) {
    super(`SSH connection to ${target} failed or dropped: ${detail}`, options);
    this.name = 'SshConnectionError';
  }
}

export class SshTimeoutError extends AdapterError {
  readonly retryable = true;
  constructor(readonly target: string, readonly command: string, readonly timeoutMs: number) {
    super(`Command on ${target} did not finish within ${timeoutMs} ms and was stopped: ${command}`);
    this.name = 'SshTimeoutError';
  }
}

/** The SSH part of the config cannot work (e.g. a malformed host key pin): fix the config. */
export class SshConfigError extends AdapterError {
  readonly retryable = false;
  constructor(detail: string) {
    super(detail);
    this.name = 'SshConfigError';
  }
}

/** The upload itself was refused (no such directory, permission denied): retrying will not help. */
export class SshUploadError extends AdapterError {
  readonly retryable = false;
  constructor(readonly target: string, readonly path: string, detail: string) {
    super(`Upload of ${path} to ${target} failed: ${detail}`);
    this.name = 'SshUploadError';
  }
}

// ---------- TLS to the Proxmox API ----------

export class TlsPinMismatchError extends AdapterError {
  readonly retryable = false;
  constructor(readonly target: string, readonly expected: string, readonly got: string) {
    super(
      `TLS certificate of the Proxmox API at ${target} does not match the pinned fingerprint: expected ${expected}, ` +
        `got ${got}. No request was sent. If the certificate was renewed on purpose, read the new fingerprint on the ` +
        'host with `openssl x509 -noout -fingerprint -sha256 -in /etc/pve/local/pve-ssl.pem` (or `pvenode cert info`) ' +
        'and update proxmox.api.tls.fingerprint in the config.',
    );
    this.name = 'TlsPinMismatchError';
  }
}

export class TlsVerificationError extends AdapterError {
  readonly retryable = false;
  constructor(readonly target: string, detail: string) {
    super(
      `TLS certificate of the Proxmox API at ${target} could not be verified (${detail}). Set ` +
        'proxmox.api.tls.caFile to the cluster CA (/etc/pve/pve-root-ca.pem on the host) or pin the certificate ' +
        'with proxmox.api.tls.fingerprint.',
    );
    this.name = 'TlsVerificationError';
  }
}

// ---------- Proxmox API ----------

/** What we could read out of a PVE error response. */
export interface PveErrorDetails {
  method: string;
  url: string;
  status: number;
  /** PVE's own message (first line is also the HTTP reason phrase). */
  pveMessage: string;
  /** Per-parameter errors of a 400 `Parameter verification failed.` */
  paramErrors: Record<string, string>;
}

abstract class PveHttpError extends AdapterError {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly pveMessage: string;
  readonly paramErrors: Record<string, string>;
  constructor(d: PveErrorDetails, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.method = d.method;
    this.url = d.url;
    this.status = d.status;
    this.pveMessage = d.pveMessage;
    this.paramErrors = d.paramErrors;
  }
}

function where(d: PveErrorDetails): string {
  let path = d.url;
  try {
    const u = new URL(d.url);
    path = u.pathname.replace(/^\/api2\/json/, '');
  } catch {
    // keep the raw text: it is only used in a message
  }
  return `${d.method} ${path}`;
}

export class PvePermissionError extends PveHttpError {
  readonly retryable = false;
  constructor(d: PveErrorDetails, options?: { cause?: unknown }) {
    super(
      d,
      `Proxmox refused ${where(d)} with 403: ${d.pveMessage}. Some calls (bind mounts, device passthrough, ` +
        'privileged feature flags, hostpci of non-mapped devices) are allowed only for root@pam, and an API token ' +
        'never counts as root@pam even when it belongs to root. Remedy: configure proxmox.root.password so the call ' +
        'runs as root@pam, or let this step run over SSH as root; for other privileges, grant the role shown to the token.',
      options,
    );
    this.name = 'PvePermissionError';
  }
}

export class PveValidationError extends PveHttpError {
  readonly retryable = false;
  constructor(d: PveErrorDetails, options?: { cause?: unknown }) {
    const params = Object.entries(d.paramErrors).map(([k, v]) => `${k}: ${v.trim()}`);
    super(
      d,
      `Proxmox rejected ${where(d)} with 400: ${d.pveMessage}` + (params.length ? ` (${params.join('; ')})` : ''),
      options,
    );
    this.name = 'PveValidationError';
  }
}

export class PveNotFoundError extends PveHttpError {
  readonly retryable = false;
  constructor(d: PveErrorDetails, options?: { cause?: unknown }) {
    super(d, `Proxmox: ${where(d)} found nothing (${d.status}): ${d.pveMessage}`, options);
    this.name = 'PveNotFoundError';
  }
}

export class PveAuthError extends PveHttpError {
  readonly retryable = false;
  constructor(d: PveErrorDetails, options?: { cause?: unknown }) {
    super(
      d,
      `Proxmox did not accept our credentials for ${where(d)} (${d.status} ${d.pveMessage}). Check ` +
        'proxmox.api.tokenId and the token secret (or the root@pam password), and that the token is not expired.',
      options,
    );
    this.name = 'PveAuthError';
  }
}

export class PveServerError extends PveHttpError {
  readonly retryable = true;
  constructor(d: PveErrorDetails, options?: { cause?: unknown }) {
    super(d, `Proxmox failed on ${where(d)} with ${d.status}: ${d.pveMessage}`, options);
    this.name = 'PveServerError';
  }
}

/** The PVE part of the config cannot work (bad token format, bad host, bad UPID): fix the config. */
export class PveConfigError extends AdapterError {
  readonly retryable = false;
  constructor(detail: string) {
    super(detail);
    this.name = 'PveConfigError';
  }
}

/** The request never got an HTTP answer (refused, reset, timed out). */
export class PveConnectionError extends AdapterError {
  readonly retryable = true;
  constructor(readonly target: string, detail: string, options?: { cause?: unknown }) {
    super(`Could not reach the Proxmox API at ${target}: ${detail}`, options);
    this.name = 'PveConnectionError';
  }
}

export class PveTaskFailedError extends AdapterError {
  readonly retryable = false;
  constructor(readonly upid: string, readonly exitstatus: string, readonly logTail: string[]) {
    super(
      `Proxmox task ${upid} failed: ${exitstatus}` +
        (logTail.length ? `\n--- last lines of the task log ---\n${logTail.join('\n')}` : ''),
    );
    this.name = 'PveTaskFailedError';
  }
}

export class PveTaskTimeoutError extends AdapterError {
  readonly retryable = true;
  constructor(readonly upid: string, readonly timeoutMs: number) {
    super(`Proxmox task ${upid} was still running after ${timeoutMs} ms (it may still finish on the host)`);
    this.name = 'PveTaskTimeoutError';
  }
}

/** Class names Temporal must not retry: permanent failures a retry cannot fix. */
export const NON_RETRYABLE_ERROR_TYPES: string[] = [
  'HostKeyMismatchError',
  'SshAuthError',
  'SshConfigError',
  'SshUploadError',
  'TlsPinMismatchError',
  'TlsVerificationError',
  'PvePermissionError',
  'PveValidationError',
  'PveNotFoundError',
  'PveAuthError',
  'PveConfigError',
  'PveTaskFailedError',
];
/** Same list under the name docs/contracts.md uses. */
export const nonRetryableErrorTypes = NON_RETRYABLE_ERROR_TYPES;

// ---------- classification of proxmox-api errors ----------

// proxmox-api 1.1.1 ProxmoxEngine.doRequest throws exactly these two shapes for HTTP errors:
//   `${method} ${url} return Error ${status} ${statusText}: ${JSON.stringify(body)}`         (400, 401, 500)
//   `${method} ${url} connection failed with ${status} ${statusText} return: ${JSON.stringify(body)}` (others)
const RETURN_ERROR = /^([A-Z]+) (\S+) return Error (\d{3}) ([\s\S]*?): (\{[\s\S]*\})$/;
const CONNECTION_FAILED = /^([A-Z]+) (\S+) connection failed with (\d{3}) ([\s\S]*?) return: (\{[\s\S]*\})$/;
// getTicket (password login) wraps its failure as `Auth ${url} Failed!` with the cause `login failed with 401: …`.
const LOGIN_FAILED = /^login failed with (\d{3}): ([\s\S]*)$/;
const AUTH_WRAPPER = /^Auth (\S+) Failed!$/;

function parseBody(json: string): { message?: string; paramErrors: Record<string, string> } {
  try {
    const body = JSON.parse(json) as { message?: unknown; errors?: unknown };
    const paramErrors: Record<string, string> = {};
    if (body.errors && typeof body.errors === 'object') {
      for (const [k, v] of Object.entries(body.errors as Record<string, unknown>)) paramErrors[k] = String(v);
    }
    const message = typeof body.message === 'string' ? body.message.trim() : undefined;
    return { message, paramErrors };
  } catch {
    return { paramErrors: {} };
  }
}

function fromStatus(d: PveErrorDetails, cause: unknown): AdapterError {
  const opts = { cause };
  if (d.status === 401) return new PveAuthError(d, opts);
  if (d.status === 403) return new PvePermissionError(d, opts);
  if (d.status === 404) return new PveNotFoundError(d, opts);
  // pveproxy answers 501 "Method '…' not implemented" for unknown paths, and a plain `die` of
  // "Configuration file '…' does not exist" becomes 500: both mean the thing is not there, retrying won't help.
  if (d.status === 501 && /not implemented/i.test(d.pveMessage)) return new PveNotFoundError(d, opts);
  if (d.status === 500 && /does not exist|no such (vm|container|task|file)/i.test(d.pveMessage)) {
    return new PveNotFoundError(d, opts);
  }
  if (d.status >= 400 && d.status < 500) return new PveValidationError(d, opts);
  return new PveServerError(d, opts);
}

/**
 * Map whatever proxmox-api threw into one of the typed errors above. Errors that are already typed pass
 * through. Unknown shapes become a retryable PveConnectionError only when they look like transport failures,
 * otherwise they are returned unchanged.
 */
export function classifyPveError(err: unknown, target = 'proxmox'): Error {
  if (err instanceof AdapterError) return err;
  if (!(err instanceof Error)) return new Error(String(err));
  const m = RETURN_ERROR.exec(err.message) ?? CONNECTION_FAILED.exec(err.message);
  if (m) {
    const [, method, url, status, statusText, json] = m;
    const body = parseBody(json);
    return fromStatus(
      {
        method,
        url,
        status: Number(status),
        pveMessage: body.message || statusText.trim() || `HTTP ${status}`,
        paramErrors: body.paramErrors,
      },
      err,
    );
  }
  const wrapper = AUTH_WRAPPER.exec(err.message);
  if (wrapper) {
    const cause = err.cause instanceof Error ? err.cause : undefined;
    if (cause instanceof AdapterError) return cause;
    const login = cause ? LOGIN_FAILED.exec(cause.message) : null;
    if (login) {
      const status = Number(login[1]);
      const d = { method: 'POST', url: wrapper[1], status, pveMessage: login[2].trim(), paramErrors: {} };
      return status >= 500 ? new PveServerError(d, { cause: err }) : new PveAuthError(d, { cause: err });
    }
    return new PveConnectionError(target, cause?.message ?? err.message, { cause: err });
  }
  if (/^FaILED to call|fetch failed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|aborted|socket/i.test(err.message)) {
    return new PveConnectionError(target, err.message, { cause: err });
  }
  return err;
}
