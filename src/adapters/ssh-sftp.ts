/**
 * Uploads over SFTP, into a copy beside the file: open with the mode, fchmod before the first byte (so a secret
 * never sits in a file with a looser mode), pipelined writes, then the host's size of the copy checked and the
 * copy renamed over the file (OpenSSH's posix-rename, atomic). A link that drops mid-upload leaves the old file
 * whole, never a truncated one in its place.
 */
import type { SFTPWrapper, Stats } from 'ssh2';
import { SshUploadError } from './errors';
import { REPLACEMENT_SUFFIX } from './file-scripts';
import type { SshConnection } from './ssh-connection';

/**
 * Upload over SFTP; resolves false when the host has no SFTP subsystem, or one that cannot replace a file in one
 * step (no posix-rename): the caller falls back to `cat`.
 */
export function sftpUpload(conn: SshConnection, label: string, path: string, data: Buffer, mode: number): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    let done = false;
    const unsubscribe = conn.onClose((reason) => finish(reason));
    function finish(e: Error | null, value = true): void {
      if (done) return;
      done = true;
      unsubscribe();
      if (e) reject(e);
      else resolve(value);
    }
    try {
      conn.client.sftp((err, sftp) => {
        if (err) {
          finish(null, false);
          return;
        }
        const fail = (what: string, e: Error): void => {
          sftp.end();
          finish(conn.closed ? (conn.closeReason ?? e) : new SshUploadError(label, path, `${what}: ${e.message}`));
        };
        replaceVia(sftp, path, data, mode)
          .then((replaced) => {
            sftp.end();
            finish(null, replaced);
          })
          .catch((e: Error & { step?: string }) => fail(e.step ?? 'sftp', e));
      });
    } catch (e) {
      // ssh2 throws synchronously when the socket is already gone
      finish(conn.closeReason ?? (e as Error));
    }
  });
}

function step<T>(name: string, fn: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    fn((err, value) => {
      if (err) reject(Object.assign(err, { step: name }));
      else resolve(value as T);
    });
  });
}

const SFTP_CHUNK = 32 * 1024;
// Several writes in flight: one at a time waits a full round trip per 32 KB and makes MB-sized uploads crawl.
const SFTP_WRITES_IN_FLIGHT = 16;

/** Resolves false, leaving nothing behind, when the server cannot rename over an existing file. */
async function replaceVia(sftp: SFTPWrapper, path: string, data: Buffer, mode: number): Promise<boolean> {
  const copy = `${path}${REPLACEMENT_SUFFIX}`;
  try {
    await writeAll(sftp, copy, data, mode);
    try {
      await step('rename', (cb) => sftp.ext_openssh_rename(copy, path, cb));
    } catch (e) {
      if (/does not support/.test((e as Error).message)) {
        await step('unlink', (cb) => sftp.unlink(copy, cb)).catch(() => undefined);
        return false;
      }
      throw e;
    }
    return true;
  } catch (e) {
    await step('unlink', (cb) => sftp.unlink(copy, cb)).catch(() => undefined);
    throw e;
  }
}

async function writeAll(sftp: SFTPWrapper, path: string, data: Buffer, mode: number): Promise<void> {
  const handle = await step<Buffer>('open', (cb) => sftp.open(path, 'w', { mode }, cb));
  try {
    // `w` keeps the old mode of an existing file and the umask applies to a new one: set it before any byte.
    await step('chmod', (cb) => sftp.fchmod(handle, mode, cb));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < data.length) {
        const offset = next;
        const len = Math.min(SFTP_CHUNK, data.length - offset);
        next += len;
        await step('write', (cb) => sftp.write(handle, data, offset, len, offset, cb));
      }
    };
    await Promise.all(Array.from({ length: SFTP_WRITES_IN_FLIGHT }, worker));
    const held = await step<Stats>('fstat', (cb) => sftp.fstat(handle, cb));
    if (held.size !== data.length) throw Object.assign(new Error(`the host holds ${held.size} of ${data.length} bytes`), { step: 'verify' });
  } finally {
    await step('close', (cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}
