/**
 * Starts a real OpenSSH sshd on 127.0.0.1 and a free port, with its own host key, config and authorized key,
 * for the SSH adapter tests. It never skips: if sshd cannot start, the tests fail with the reason.
 *
 * Needs (Debian): `apt-get install -y openssh-server sudo`. Running as root also creates a test user with a
 * NOPASSWD sudoers rule, so `sudo -n` is exercised from a non-root account too.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SSHD_BIN = '/usr/sbin/sshd';
export const TEST_USER = 'pvevllmssh';

export interface TestSshd {
  host: '127.0.0.1';
  port: number;
  dir: string;
  hostKeyFingerprint: string; // SHA256:… as ssh-keygen -lf prints it
  clientKey: string; // OpenSSH private key text, authorized for every user
  clientKeyPem: Buffer; // RSA key in PEM format (-----BEGIN RSA PRIVATE KEY-----), also authorized
  wrongClientKey: string; // valid key that is NOT authorized
  otherHostKeyFingerprint: string; // a real fingerprint of a different key, for mismatch tests
  pid: number;
  log(): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Leave out the sftp Subsystem line, to test the `cat` upload fallback. */
  sftp?: boolean;
  /** Requests the sftp-server refuses (its `-P`), as an administrator may restrict it: `['posix-rename']`. */
  sftpDenied?: string[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function keygen(path: string, type: 'ed25519' | 'rsa-pem' = 'ed25519'): void {
  const kind = type === 'rsa-pem' ? ['-t', 'rsa', '-b', '2048', '-m', 'PEM'] : ['-t', 'ed25519'];
  execFileSync('ssh-keygen', ['-q', ...kind, '-N', '', '-C', 'pve-vllm-test', '-f', path]);
}

function fingerprint(pubPath: string): string {
  // "256 SHA256:abc… comment (ED25519)"
  const out = execFileSync('ssh-keygen', ['-lf', pubPath], { encoding: 'utf8' });
  const fp = out.split(/\s+/)[1];
  if (!fp?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output: ${out}`);
  return fp;
}

/** Create the sudo test user once (root only). Returns false when we are not root. */
export function ensureTestUser(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('id', [TEST_USER], { stdio: 'ignore' });
  } catch {
    try {
      execFileSync('useradd', ['-m', '-s', '/bin/bash', TEST_USER], { stdio: 'pipe' });
    } catch (e) {
      // another test file may have created it a moment ago (parallel jest workers)
      execFileSync('id', [TEST_USER], { stdio: 'ignore' });
      void e;
    }
  }
  // With UsePAM no, OpenSSH refuses accounts whose password field starts with `!` (locked); `*` is "no password".
  execFileSync('usermod', ['-p', '*', TEST_USER]);
  if (!existsSync('/usr/bin/sudo')) throw new Error('sudo is not installed: apt-get install -y sudo');
  mkdirSync('/etc/sudoers.d', { recursive: true });
  writeFileSync(`/etc/sudoers.d/${TEST_USER}`, `${TEST_USER} ALL=(root) NOPASSWD: ALL\n`, { mode: 0o440 });
  return true;
}

export async function startSshd(opts: SshdOptions = {}): Promise<TestSshd> {
  if (!existsSync(SSHD_BIN)) {
    throw new Error(`${SSHD_BIN} not found: install it with apt-get update && apt-get install -y openssh-server`);
  }
  // Debian's sshd refuses to start without its privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'pve-vllm-sshd-'));
  // sshd reads AuthorizedKeysFile as the logging-in user: the non-root test user must be able to reach it.
  chmodSync(dir, 0o755);
  keygen(join(dir, 'host_key'));
  keygen(join(dir, 'other_host_key'));
  keygen(join(dir, 'client_key'));
  keygen(join(dir, 'wrong_client_key'));
  keygen(join(dir, 'client_key_pem'), 'rsa-pem');
  const authorized = [readFileSync(join(dir, 'client_key.pub')), readFileSync(join(dir, 'client_key_pem.pub'))];
  writeFileSync(join(dir, 'authorized_keys'), Buffer.concat(authorized), { mode: 0o644 });
  // Another process may grab the free port between probing and sshd binding it: try a few ports.
  let launched: { child: ChildProcess; port: number; log: () => string } | undefined;
  const failures: string[] = [];
  for (let attempt = 0; attempt < 3 && !launched; attempt++) {
    try {
      launched = await launch(dir, opts);
    } catch (e) {
      failures.push((e as Error).message);
      if (!/Address already in use/.test((e as Error).message)) break;
    }
  }
  if (!launched) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start ${SSHD_BIN}:\n${failures.join('\n---\n')}`);
  }
  const { child, port, log } = launched;

  return {
    host: '127.0.0.1',
    port,
    dir,
    hostKeyFingerprint: fingerprint(join(dir, 'host_key.pub')),
    otherHostKeyFingerprint: fingerprint(join(dir, 'other_host_key.pub')),
    clientKey: readFileSync(join(dir, 'client_key'), 'utf8'),
    clientKeyPem: readFileSync(join(dir, 'client_key_pem')),
    wrongClientKey: readFileSync(join(dir, 'wrong_client_key'), 'utf8'),
    pid: child.pid ?? -1,
    log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function launch(dir: string, opts: SshdOptions): Promise<{ child: ChildProcess; port: number; log: () => string }> {
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'MaxStartups 100',
    'AcceptEnv LANG LC_*', // as Debian's and Proxmox's stock sshd_config
    'LogLevel VERBOSE',
    opts.sftp === false
      ? ''
      : `Subsystem sftp /usr/lib/openssh/sftp-server${opts.sftpDenied ? ` -P ${opts.sftpDenied.join(',')}` : ''}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'sshd_config'), config);

  const child: ChildProcess = spawn(SSHD_BIN, ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => {
      clearInterval(check);
      child.kill('SIGKILL');
      reject(new Error(`sshd did not start within 10 s; log:\n${log}`));
    }, 10_000);
    const check = setInterval(() => {
      if (log.includes(`Server listening on 127.0.0.1 port ${port}`)) {
        clearTimeout(deadline);
        clearInterval(check);
        resolve();
      }
    }, 20);
    child.once('exit', (code) => {
      clearTimeout(deadline);
      clearInterval(check);
      reject(new Error(`sshd exited with ${code} before listening; log:\n${log}`));
    });
  });
  return { child, port, log: () => log };
}
