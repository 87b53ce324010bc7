// A real OpenSSH sshd on 127.0.0.1 for the per-step benchmark: its own host key, one authorized client key,
// key login for the bench user only. Ours and Ansible are measured against this same daemon.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SSHD = '/usr/sbin/sshd';
/**
 * The bench logs in as its own user with Debian's default dotfiles, as a stock host has. Not root: bash sources
 * ~/.bashrc for every SSH command, and a developer's root ~/.bashrc (pyenv init and the like) can cost 200 ms per
 * command, which would be measured as if it were the orchestrator's (Ansible's too).
 */
export const BENCH_USER = 'pvevllmbench';

function ensureBenchUser(): void {
  try {
    execFileSync('id', [BENCH_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/bash', '-c', 'pve-vllm bench (loopback SSH only)', BENCH_USER]);
  }
  // With UsePAM no, sshd refuses a locked account (`!` password); `*` means "no password", key login only.
  execFileSync('usermod', ['-p', '*', BENCH_USER]);
}

/** The bench's login exists only while its sshd runs. */
function removeBenchUser(): void {
  try {
    execFileSync('userdel', ['-r', BENCH_USER], { stdio: 'pipe' });
  } catch {
    // already gone
  }
}

export interface BenchSshd {
  host: '127.0.0.1';
  port: number;
  user: string;
  /** path of the authorized private key (Ansible wants a file) */
  clientKeyPath: string;
  clientKey: string;
  hostKeyFingerprint: string;
  dir: string;
  stop(): Promise<void>;
}

function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const a = probe.address();
      const port = a && typeof a === 'object' ? a.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

function newKey(path: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pve-vllm-bench', '-f', path]);
}

export async function startBenchSshd(): Promise<BenchSshd> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: apt-get install -y openssh-server`);
  if (process.getuid?.() !== 0) throw new Error('the bench runs its own sshd and creates its login user: run it as root');
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // Debian's sshd will not start without it
  ensureBenchUser();
  const dir = mkdtempSync(join(tmpdir(), 'pve-vllm-bench-sshd-'));
  // sshd reads AuthorizedKeysFile as the user logging in; the private keys in here stay mode 0600.
  chmodSync(dir, 0o755);
  newKey(join(dir, 'host_key'));
  newKey(join(dir, 'client_key'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o644 });
  const port = await unusedPort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      // Ansible's ControlPersist multiplexes sessions; our pool opens up to 8 channels per connection.
      'MaxSessions 20',
      'MaxStartups 100',
      'Subsystem sftp /usr/lib/openssh/sftp-server',
      '',
    ].join('\n'),
  );
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    // Keep only the tail: every login writes a line, and a long bench makes thousands.
    log = (log + d.toString()).slice(-8000);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd did not listen within 10 s:\n${log}`)), 10_000);
    const poll = setInterval(() => {
      if (!log.includes(`port ${port}`)) return;
      clearTimeout(timer);
      clearInterval(poll);
      resolve();
    }, 20);
    child.once('exit', (code) => {
      clearTimeout(timer);
      clearInterval(poll);
      reject(new Error(`sshd exited (${code}) before listening:\n${log}`));
    });
  });
  const fp = execFileSync('ssh-keygen', ['-lf', join(dir, 'host_key.pub')], { encoding: 'utf8' }).split(/\s+/)[1] ?? '';
  return {
    host: '127.0.0.1',
    port,
    user: BENCH_USER,
    clientKeyPath: join(dir, 'client_key'),
    clientKey: readFileSync(join(dir, 'client_key'), 'utf8'),
    hostKeyFingerprint: fp,
    dir,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
      removeBenchUser();
    },
  };
}
