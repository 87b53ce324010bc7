/** Plain ssh2 client helpers for the lab tests (127.0.0.1 only). */
import { Client } from 'ssh2';
import { createHash } from 'node:crypto';
import type { Lab } from '../../src/lab';

export interface Run { code: number; stdout: string; stderr: string }

export function connect(lab: Lab, username = 'root', privateKey = lab.secrets.rootPrivateKeyPem): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on('ready', () => resolve(c)).on('error', reject).connect({
      host: '127.0.0.1', port: lab.ssh.port, username, privateKey,
      hostVerifier: (key: Buffer) => `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}` === lab.ssh.hostKeyFingerprint,
    });
  });
}

export function exec(c: Client, command: string, stdin = '', onData?: (s: string, at: number) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    c.exec(command, (err, ch) => {
      if (err) { reject(err); return; }
      let stdout = '';
      let stderr = '';
      let code = -1;
      ch.on('data', (d: Buffer) => { stdout += d.toString(); onData?.(d.toString(), Date.now()); });
      ch.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      ch.on('exit', (x: number) => { code = x; });
      ch.on('close', () => resolve({ code, stdout, stderr }));
      ch.end(stdin);
    });
  });
}

/** One-shot: connect, run, disconnect. */
export async function sh(lab: Lab, command: string, stdin = '', user?: string, key?: string): Promise<Run> {
  const c = await connect(lab, user, key);
  try { return await exec(c, command, stdin); } finally { c.end(); }
}
