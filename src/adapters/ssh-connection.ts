/**
 * One ssh2 Client connection to one target: connect with the pinned host key, key auth, and typed errors.
 * The pool (ssh.ts) decides when to open, reuse and close these.
 */
import { createHash } from 'node:crypto';
import { Client } from 'ssh2';
import { HostKeyMismatchError, SshAuthError, SshConfigError, SshConnectionError } from './errors';

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: string | Buffer;
  /** Pinned host key fingerprint as `ssh-keygen -lf` prints it: `SHA256:<base64 without padding>`. */
  hostKey: string;
}

export interface ConnectionTuning {
  readyTimeoutMs: number;
  /** Detects a silently dead peer (no RST): after interval × countMax without an answer the connection drops. */
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
}

export function describeTarget(t: Pick<SshTarget, 'host' | 'port' | 'username'>): string {
  return `${t.username}@${t.host}:${t.port}`;
}

/** OpenSSH's fingerprint format: SHA-256 of the public key blob, base64 without `=` padding. */
export function sshFingerprint(hostKeyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(hostKeyBlob).digest('base64').replace(/=+$/, '')}`;
}

function normalizePin(pin: string): string {
  const trimmed = pin.trim();
  if (!/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(trimmed)) {
    throw new SshConfigError(`proxmox.ssh.hostKey must look like SHA256:<43 base64 characters>, got ${JSON.stringify(trimmed)}`);
  }
  return trimmed.replace(/=+$/, '');
}

export class SshConnection {
  readonly client = new Client();
  readonly label: string;
  readonly ready: Promise<void>;
  closed = false;
  /** Why the connection ended; pending commands reject with it. */
  closeReason: Error | undefined;
  private readonly closeListeners = new Set<(err: Error) => void>();

  constructor(readonly target: SshTarget, tuning: ConnectionTuning, onHandshake: () => void) {
    this.label = describeTarget(target);
    const expected = normalizePin(target.hostKey);
    let mismatch: string | undefined;
    let lastError: Error | undefined;

    this.ready = new Promise<void>((resolve, reject) => {
      let isReady = false;
      this.client.once('ready', () => {
        isReady = true;
        onHandshake();
        resolve();
      });
      this.client.on('error', (err: Error & { level?: string }) => {
        lastError = err;
        if (!isReady) reject(this.classifyConnectError(err, expected, mismatch));
      });
      this.client.once('close', () => {
        this.closed = true;
        const reason =
          this.closeReason ??
          new SshConnectionError(this.label, lastError ? lastError.message : 'connection closed by the peer', {
            cause: lastError,
          });
        this.closeReason = reason;
        if (!isReady) reject(lastError ? this.classifyConnectError(lastError, expected, mismatch) : reason);
        for (const listener of [...this.closeListeners]) listener(reason);
        this.closeListeners.clear();
      });
      try {
        this.client.connect({
          host: target.host,
          port: target.port,
          username: target.username,
          privateKey: target.privateKey,
          readyTimeout: tuning.readyTimeoutMs,
          keepaliveInterval: tuning.keepaliveIntervalMs,
          keepaliveCountMax: tuning.keepaliveCountMax,
          // Only key auth: never fall back to an agent or keyboard-interactive prompt on a worker.
          agent: undefined,
          tryKeyboard: false,
          hostVerifier: (key: Buffer) => {
            const got = sshFingerprint(key);
            if (got === expected) return true;
            mismatch = got;
            return false;
          },
        });
        // Commands are small request/response exchanges: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
        this.client.setNoDelay(true);
      } catch (err) {
        // ssh2 throws synchronously for an unparsable private key; its message never contains the key.
        this.closed = true;
        reject(new SshAuthError(this.label, `private key not usable: ${(err as Error).message}`));
      }
    });
    // The pool awaits `ready`; this keeps an early failure from being reported as unhandled meanwhile.
    this.ready.catch(() => undefined);
  }

  private classifyConnectError(err: Error & { level?: string }, expected: string, mismatch: string | undefined): Error {
    if (mismatch !== undefined) return new HostKeyMismatchError(this.label, expected, mismatch);
    if (err.level === 'client-authentication') return new SshAuthError(this.label, err.message);
    return new SshConnectionError(this.label, err.message, { cause: err });
  }

  /** Call `listener` once if the connection ends; returns the unsubscribe function. */
  onClose(listener: (err: Error) => void): () => void {
    if (this.closed) {
      listener(this.closeReason ?? new SshConnectionError(this.label, 'connection closed'));
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** End the connection and wait until the socket is gone. */
  end(reason?: Error): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (reason && !this.closeReason) this.closeReason = reason;
    return new Promise<void>((resolve) => {
      this.client.once('close', () => resolve());
      this.client.end();
      // A peer that never answers our disconnect must not hold shutdown hostage.
      setTimeout(() => {
        if (!this.closed) this.client.destroy();
      }, 2000).unref();
    });
  }
}
