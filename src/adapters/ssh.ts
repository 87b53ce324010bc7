/**
 * SSH to the Proxmox host (and the admin user in the CT): a pool with one reused connection per target,
 * commands from argv (quoted, never concatenated), scripts on stdin (so secrets never reach a process's argv),
 * uploads over SFTP with a `cat` fallback. Every failure is typed (errors.ts) so Temporal knows what to retry.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import type { ClientChannel } from 'ssh2';
import { SshConnectionError, SshTimeoutError, SshUploadError } from './errors';
import { quote } from './quote';
import { KILL_RUN_SCRIPT, RUN_ID_ENV } from './ssh-kill';
import { onPmxcfs, writeFileScript } from './file-scripts';
import { sftpUpload } from './ssh-sftp';
import { SshConnection, SshTarget, describeTarget } from './ssh-connection';

export type { SshTarget } from './ssh-connection';
export { sshFingerprint } from './ssh-connection';

export interface ExecOptions {
  timeoutMs?: number;
  stdin?: string | Buffer;
  /** Run as `sudo -n -- <argv>`: non-interactive, so a missing NOPASSWD rule fails instead of hanging. */
  sudo?: boolean;
  /** Streamed output, decoded per stream so a multi-byte character split across packets stays whole. */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
  /** Also return the raw bytes (`stdoutBytes`/`stderrBytes`) for binary output. */
  binary?: boolean;
}

export interface ExecResult {
  /** Exit status; 128 + signal number when the command was killed by a signal (as a shell reports it). */
  code: number;
  stdout: string;
  stderr: string;
  /** Set when the remote process died from a signal, e.g. `SIGKILL`. */
  signal?: string;
  stdoutBytes?: Buffer;
  stderrBytes?: Buffer;
}

export interface ScriptOptions extends Omit<ExecOptions, 'stdin'> {
  /** Positional arguments for the script (`$1`…): quoted into argv, so not for secrets. */
  args?: string[];
}

export interface SshSession {
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  script(script: string, opts?: ScriptOptions): Promise<ExecResult>;
  upload(path: string, content: string | Buffer, mode?: number): Promise<void>;
}

export interface SshPoolOptions {
  /** Close a connection after it has been unused this long. */
  idleTimeoutMs?: number;
  readyTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** OpenSSH allows 10 sessions per connection (MaxSessions); stay below so SFTP still fits. */
  maxChannelsPerConnection?: number;
}

interface PoolEntry {
  conn: SshConnection;
  active: number;
  idleTimer?: NodeJS.Timeout;
  waiting: Array<() => void>;
  channels: number;
}

const MAX_CMD_IN_MESSAGE = 200;

function shortCommand(cmd: string): string {
  return cmd.length > MAX_CMD_IN_MESSAGE ? `${cmd.slice(0, MAX_CMD_IN_MESSAGE)}…` : cmd;
}

function signalToCode(sig: string | undefined): number {
  const n = sig ? (osConstants.signals as Record<string, number | undefined>)[sig] : undefined;
  return 128 + (n ?? 0);
}

export class SshPool {
  private readonly entries = new Map<string, PoolEntry>();
  private handshakeCount = 0;
  private readonly opts: Required<SshPoolOptions>;

  constructor(opts: SshPoolOptions = {}) {
    this.opts = {
      idleTimeoutMs: opts.idleTimeoutMs ?? 30_000,
      readyTimeoutMs: opts.readyTimeoutMs ?? 20_000,
      keepaliveIntervalMs: opts.keepaliveIntervalMs ?? 10_000,
      keepaliveCountMax: opts.keepaliveCountMax ?? 3,
      maxChannelsPerConnection: opts.maxChannelsPerConnection ?? 8,
    };
  }

  /** Successful SSH handshakes (authenticated connections) made by this pool. */
  get handshakes(): number {
    return this.handshakeCount;
  }

  /** Connections currently open or opening. */
  get openConnections(): number {
    return [...this.entries.values()].filter((e) => !e.conn.closed).length;
  }

  session(target: SshTarget): SshSession {
    return {
      exec: (argv, opts) => this.exec(target, argv, opts),
      script: (script, opts) => this.script(target, script, opts),
      upload: (path, content, mode) => this.upload(target, path, content, mode),
    };
  }

  async close(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(
      entries.map((e) => {
        if (e.idleTimer) clearTimeout(e.idleTimer);
        return e.conn.end(new SshConnectionError(e.conn.label, 'pool closed'));
      }),
    );
  }

  // ---------- connection lifecycle ----------

  // One connection per host:port:user, but never shared across a different host key pin or private key: a
  // connection verified against one pin must not serve a caller that pinned another.
  private key(t: SshTarget): string {
    let k = this.keys.get(t);
    if (k === undefined) {
      const key = createHash('sha256').update(t.privateKey).digest('hex').slice(0, 16);
      this.keys.set(t, (k = `${t.host}:${t.port}:${t.username}:${t.hostKey.trim()}:${key}`));
    }
    return k;
  }

  /** Pool keys by target object: a session's commands share one target, so its key is hashed once. */
  private readonly keys = new WeakMap<SshTarget, string>();

  /** Run `fn` on a ready connection, counting it as in use so the idle timer waits. */
  private async withConnection<T>(target: SshTarget, fn: (entry: PoolEntry) => Promise<T>): Promise<T> {
    const key = this.key(target);
    let entry = this.entries.get(key);
    if (!entry || entry.conn.closed) {
      const conn = new SshConnection(
        target,
        {
          readyTimeoutMs: this.opts.readyTimeoutMs,
          keepaliveIntervalMs: this.opts.keepaliveIntervalMs,
          keepaliveCountMax: this.opts.keepaliveCountMax,
        },
        () => this.handshakeCount++,
      );
      const fresh: PoolEntry = { conn, active: 0, waiting: [], channels: 0 };
      entry = fresh;
      this.entries.set(key, fresh);
      // A dropped or failed connection leaves the pool at once, so the next call (the activity retry) reconnects.
      conn.onClose(() => {
        if (fresh.idleTimer) clearTimeout(fresh.idleTimer);
        if (this.entries.get(key) === fresh) this.entries.delete(key);
        for (const wake of fresh.waiting.splice(0)) wake();
      });
    }
    const current = entry;
    current.active++;
    if (current.idleTimer) {
      clearTimeout(current.idleTimer);
      current.idleTimer = undefined;
    }
    try {
      await current.conn.ready;
      return await fn(current);
    } finally {
      current.active--;
      if (current.active === 0 && !current.conn.closed) {
        current.idleTimer = setTimeout(() => {
          if (this.entries.get(key) === current) this.entries.delete(key);
          void current.conn.end(new SshConnectionError(current.conn.label, 'closed after being idle'));
        }, this.opts.idleTimeoutMs);
        // The timer alone must not hold the process; the open socket does until the timer closes it.
        current.idleTimer.unref();
      }
    }
  }

  /** Limit concurrent channels per connection (OpenSSH MaxSessions). */
  private async withChannelSlot<T>(entry: PoolEntry, fn: () => Promise<T>): Promise<T> {
    while (entry.channels >= this.opts.maxChannelsPerConnection) {
      if (entry.conn.closed) throw entry.conn.closeReason ?? new SshConnectionError(entry.conn.label, 'connection closed');
      await new Promise<void>((resolve) => entry.waiting.push(resolve));
    }
    entry.channels++;
    try {
      return await fn();
    } finally {
      entry.channels--;
      entry.waiting.shift()?.();
    }
  }

  // ---------- commands ----------

  exec(target: SshTarget, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const full = opts.sudo ? ['sudo', '-n', '--', ...argv] : argv;
    return this.run(target, quote(full), opts);
  }

  script(target: SshTarget, script: string, opts: ScriptOptions = {}): Promise<ExecResult> {
    const { args = [], ...rest } = opts;
    const argv = ['bash', '-s', '--', ...args];
    return this.exec(target, argv, { ...rest, stdin: script });
  }

  private async run(target: SshTarget, command: string, opts: ExecOptions): Promise<ExecResult> {
    const label = describeTarget(target);
    opts.signal?.throwIfAborted();
    const runId = randomUUID();
    return await this.withConnection(target, (entry) =>
      this.withChannelSlot(entry, () =>
        runOnChannel(entry.conn, label, command, runId, opts, () => this.killRun(target, runId, opts.sudo)),
      ),
    );
  }

  /** Best effort, in the background: the caller already has its timeout/cancel error (see ssh-kill.ts). */
  private killRun(target: SshTarget, runId: string, sudo?: boolean): void {
    this.script(target, KILL_RUN_SCRIPT, { args: [runId], sudo, timeoutMs: 15_000 }).catch(() => undefined);
  }

  // ---------- upload ----------

  async upload(target: SshTarget, path: string, content: string | Buffer, mode = 0o644): Promise<void> {
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    const label = describeTarget(target);
    // pmxcfs takes no copy beside a guest's config, so /etc/pve skips SFTP for the one counted write.
    const viaSftp =
      !onPmxcfs(path) && (await this.withConnection(target, (entry) => this.withChannelSlot(entry, () => sftpUpload(entry.conn, label, path, data, mode))));
    if (viaSftp) return;
    // Otherwise stream the bytes into `cat` (Host.write's script): the host replaces the file only when it counted
    // every byte (a dropped link ends stdin early, and `cat` would take that as done).
    const mode8 = mode.toString(8).padStart(4, '0');
    const res = await this.exec(target, ['sh', '-c', writeFileScript(path, data.length, mode8)], { stdin: data });
    if (res.code !== 0) throw new SshUploadError(label, path, res.stderr.trim() || `exit ${res.code}`);
  }
}

function runOnChannel(
  conn: SshConnection,
  label: string,
  command: string,
  runId: string,
  opts: ExecOptions,
  killRun: () => void,
): Promise<ExecResult> {
  return new Promise<ExecResult>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    let channel: ClientChannel | undefined;
    let exit: { code: number | null; signal?: string } | undefined;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;

    const cleanup = (): void => {
      settled = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      unsubscribeClose();
    };
    const fail = (e: unknown): void => {
      if (settled) return;
      cleanup();
      reject(e);
    };
    // Stop the remote command: ask sshd to kill its process group, then close the channel. Closing alone
    // leaves e.g. `sleep` running on the host, since without a pty nothing hangs it up.
    const stopChannel = (): void => {
      if (!channel) return;
      sendKill(channel); // honoured by OpenSSH for non-root logins
      channel.close();
      if (!conn.closed) killRun(); // root logins: find the run by its id and kill it
    };
    function onAbort(): void {
      stopChannel();
      const reason: unknown = opts.signal?.reason;
      fail(reason instanceof Error ? reason : new Error(`command cancelled on ${label}`));
    }
    // A drop of the whole connection rejects at once, whatever state the channel is in: never hang.
    const unsubscribeClose = conn.onClose((reason) => fail(reason));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        stopChannel();
        fail(new SshTimeoutError(label, shortCommand(command), opts.timeoutMs ?? 0));
      }, opts.timeoutMs);
    }

    const collect = (stream: 'stdout' | 'stderr', sink: Buffer[]) => (chunk: Buffer) => {
      if (settled) return;
      sink.push(chunk);
      if (opts.onOutput) {
        const text = decoders[stream].write(chunk);
        if (text) opts.onOutput(text, stream);
      }
    };

    if (settled) return; // the connection closed between being ready and now
    const onOpen = (openErr: Error | undefined, ch: ClientChannel): void => {
      if (openErr) {
        fail(new SshConnectionError(label, `could not open a channel: ${openErr.message}`, { cause: openErr }));
        return;
      }
      channel = ch;
      endOnlyOnce(ch);
      if (settled) {
        // Timed out or aborted while the channel was opening.
        stopChannel();
        return;
      }
      ch.on('data', collect('stdout', out));
      ch.stderr.on('data', collect('stderr', err));
      ch.on('exit', (code: number | null, signal?: string) => {
        exit = { code, signal };
      });
      ch.on('close', () => {
        if (settled) return;
        if (!exit) {
          // Channel gone without an exit status: the session died under us (sshd child killed, link lost).
          fail(conn.closeReason ?? new SshConnectionError(label, 'channel closed before the command reported an exit status'));
          return;
        }
        cleanup();
        if (opts.onOutput) {
          const restOut = decoders.stdout.end();
          if (restOut) opts.onOutput(restOut, 'stdout');
          const restErr = decoders.stderr.end();
          if (restErr) opts.onOutput(restErr, 'stderr');
        }
        const stdoutBytes = Buffer.concat(out);
        const stderrBytes = Buffer.concat(err);
        const result: ExecResult = {
          code: exit.code ?? signalToCode(exit.signal),
          stdout: stdoutBytes.toString('utf8'),
          stderr: stderrBytes.toString('utf8'),
        };
        if (exit.signal) result.signal = exit.signal;
        if (opts.binary) Object.assign(result, { stdoutBytes, stderrBytes });
        resolve(result);
      });
      // Always send EOF: a command that reads stdin must not wait forever for input we will never send.
      if (opts.stdin !== undefined) ch.end(opts.stdin);
      else ch.end();
    };
    try {
      conn.client.exec(command, { env: { [RUN_ID_ENV]: runId } }, onOpen);
    } catch (e) {
      // ssh2 throws synchronously when the socket is already gone
      fail(new SshConnectionError(label, (e as Error).message, { cause: e }));
    }
  });
}

/**
 * ssh2's Channel.destroy() is end() then close(), and Node calls destroy() itself once both sides of a channel are
 * done, when end() only builds an ERR_STREAM_ALREADY_FINISHED error (a captured stack) to throw away: ~1 % of
 * the worker's CPU, once per command. Same destroy, without ending what has already ended.
 */
function endOnlyOnce(ch: ClientChannel): void {
  ch.destroy = function destroy(this: ClientChannel) {
    if (!this.writableEnded) this.end();
    this.close();
    return this;
  };
}

interface ChannelInternals {
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { signal(channelId: number, signal: string): void } };
}

/**
 * Send an RFC 4254 `signal` request. ssh2's public `channel.signal()` is a no-op once we have sent EOF on
 * stdin (it checks `writable`), yet the protocol allows requests until the channel closes and OpenSSH answers
 * them with killpg() of the session; so the request goes through ssh2's protocol object (ssh2 is pinned).
 */
function sendKill(channel: ClientChannel): void {
  const internals = channel as unknown as ChannelInternals;
  const id = internals.outgoing?.id;
  const state = internals.outgoing?.state;
  // `eof` is where we normally are: stdin was closed right after the command started.
  if (id === undefined || (state !== 'open' && state !== 'eof')) return;
  try {
    internals._client?._protocol?.signal(id, 'KILL');
  } catch {
    // the connection is already going away: closing the channel is all that is left to do
  }
}
