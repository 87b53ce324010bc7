/**
 * Uploads over SFTP: open with the mode, fchmod before the first byte (so a secret never sits in a file with
 * a looser mode), then pipelined writes.
 */
import type { SFTPWrapper } from 'ssh2';
import { SshUploadError } from './errors';
import type { SshConnection } from './ssh-connection';

/** Upload over SFTP; resolves false when the host has no SFTP subsystem (caller falls back to `cat`). */
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
        writeAll(sftp, path, data, mode)
          .then(() => {
            sftp.end();
            finish(null, true);
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
  } finally {
    await step('close', (cb) => sftp.close(handle, cb)).catch(() => undefined);
  }
}
