/**
 * The SSH pool against a real OpenSSH sshd when things go wrong or take long: timeouts, cancellation,
 * connection reuse, idle close, and a connection dropped mid-command (must reject promptly, then reconnect).
 */
import { SshPool, SshTarget } from '../../src/adapters/ssh';
import { ensureTestUser, startSshd, TestSshd, TEST_USER } from './sshd';

let sshd: TestSshd;
let target: SshTarget;
const pools: SshPool[] = [];

function newPool(opts?: ConstructorParameters<typeof SshPool>[0]): SshPool {
  const p = new SshPool(opts);
  pools.push(p);
  return p;
}

beforeAll(async () => {
  sshd = await startSshd();
  target = { host: sshd.host, port: sshd.port, username: 'root', privateKey: sshd.clientKey, hostKey: sshd.hostKeyFingerprint };
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  await sshd?.stop();
});

/** Is a process whose command line contains `marker` still running on the (local) sshd host? */
async function stillRunning(pool: SshPool, marker: string): Promise<boolean> {
  // `[x]yz` keeps pgrep from matching its own command line
  const pattern = `[${marker[0]}]${marker.slice(1)}`;
  const res = await pool.session(target).exec(['pgrep', '-f', pattern]);
  return res.code === 0;
}

async function eventually(check: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe('timeouts and cancellation', () => {
  it('enforces a command timeout with a retryable SshTimeoutError and stops the remote command', async () => {
    const pool = newPool();
    const marker = `sleep 31.${process.pid}1`;
    const started = Date.now();
    const err = await pool
      .session(target)
      .exec(['sh', '-c', marker], { timeoutMs: 500 })
      .catch((e: Error) => e);
    const took = Date.now() - started;
    expect((err as Error).name).toBe('SshTimeoutError');
    expect((err as { retryable?: boolean }).retryable).toBe(true);
    expect((err as Error).message).toContain('500 ms');
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(10_000); // includes connecting on a loaded CI box; the command would take 31 s
    expect(await eventually(async () => !(await stillRunning(pool, marker)))).toBe(true);
    // The connection is still good for the next command.
    expect((await pool.session(target).exec(['echo', 'after'])).stdout).toBe('after\n');
    expect(pool.handshakes).toBe(1);
  });

  it('cancels through an AbortSignal with its reason, and stops the remote command', async () => {
    const pool = newPool();
    const marker = `sleep 32.${process.pid}2`;
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('activity cancelled by the workflow')), 300);
    await expect(pool.session(target).exec(['sh', '-c', marker], { signal: ac.signal })).rejects.toThrow(
      'activity cancelled by the workflow',
    );
    expect(await eventually(async () => !(await stillRunning(pool, marker)))).toBe(true);
  });

  it('stops a timed-out sudo command run from a non-root login (root-owned processes)', async () => {
    expect(ensureTestUser()).toBe(true);
    const pool = newPool();
    const marker = `sleep 33.${process.pid}3`;
    const user = { ...target, username: TEST_USER };
    const err = await pool
      .session(user)
      .exec(['sh', '-c', marker], { sudo: true, timeoutMs: 500 })
      .catch((e: Error) => e);
    expect((err as Error).name).toBe('SshTimeoutError');
    expect(await eventually(async () => !(await stillRunning(pool, marker)))).toBe(true);
  });

  it('does not even start when the signal is already aborted', async () => {
    const pool = newPool();
    const ac = new AbortController();
    ac.abort(new Error('too late'));
    await expect(pool.session(target).exec(['true'], { signal: ac.signal })).rejects.toThrow('too late');
    expect(pool.handshakes).toBe(0);
  });
});

describe('connection reuse', () => {
  it('reuses one connection for many sequential and concurrent commands (more than MaxSessions)', async () => {
    const pool = newPool();
    const s = pool.session(target);
    for (let i = 0; i < 5; i++) expect((await s.exec(['echo', String(i)])).stdout).toBe(`${i}\n`);
    // 20 at once: above OpenSSH's 10 sessions per connection, so the pool must queue, not fail.
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.exec(['sh', '-c', `sleep 0.2; echo ${i}`])),
    );
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 20 }, (_, i) => `${i}\n`));
    await s.upload(`${sshd.dir}/reuse.txt`, 'x');
    await s.script('true');
    expect(pool.handshakes).toBe(1);
    expect(pool.openConnections).toBe(1);
  });

  it('keeps separate connections per user', async () => {
    const pool = newPool();
    await pool.session(target).exec(['true']);
    await pool.session({ ...target, username: 'pvevllmssh' }).exec(['true']).catch(() => undefined);
    await pool.session(target).exec(['true']);
    expect(pool.handshakes).toBeGreaterThanOrEqual(1);
    expect(pool.openConnections).toBeLessThanOrEqual(2);
  });

  it('closes a connection after the idle timeout, and reconnects on the next call', async () => {
    const pool = newPool({ idleTimeoutMs: 300 });
    await pool.session(target).exec(['true']);
    expect(pool.openConnections).toBe(1);
    // Busy time does not count as idle: a command longer than the idle timeout keeps its connection.
    await pool.session(target).exec(['sleep', '0.6']);
    expect(pool.handshakes).toBe(1);
    await new Promise((r) => setTimeout(r, 800));
    expect(pool.openConnections).toBe(0);
    expect((await pool.session(target).exec(['echo', 'back'])).stdout).toBe('back\n');
    expect(pool.handshakes).toBe(2);
  });
});

describe('dropped connections', () => {
  it('rejects promptly with a retryable SshConnectionError when the session dies mid-command, then reconnects', async () => {
    const pool = newPool();
    const s = pool.session(target);
    expect((await s.exec(['echo', 'warm'])).stdout).toBe('warm\n');
    const streamed: string[] = [];
    let firstOutputAt = 0;
    // $PPID of the command's shell is this connection's sshd session process: SIGKILL drops the connection.
    const err = await s
      .exec(['bash', '-c', 'echo before; sleep 0.3; kill -9 $PPID; sleep 30'], {
        onOutput: (t) => {
          firstOutputAt ||= Date.now();
          streamed.push(t);
        },
      })
      .catch((e: Error) => e);
    const afterOutput = Date.now() - firstOutputAt;
    expect((err as Error).name).toBe('SshConnectionError');
    expect((err as { retryable?: boolean }).retryable).toBe(true);
    // 0.3 s sleep + the kill: rejected within a few seconds, not after the 30 s the command would have run
    expect(afterOutput).toBeLessThan(3000);
    expect(streamed.join('')).toBe('before\n');
    // The activity retry: the next call opens a fresh connection and works.
    expect((await s.exec(['echo', 'again'])).stdout).toBe('again\n');
    expect(pool.handshakes).toBe(2);
  });

  it('fails every command in flight on that connection, not just one', async () => {
    const pool = newPool();
    const s = pool.session(target);
    const bystanders = [s.exec(['sleep', '30']), s.exec(['sleep', '30'])];
    await new Promise((r) => setTimeout(r, 300));
    const killer = s.exec(['bash', '-c', 'kill -9 $PPID; sleep 30']);
    const outcomes = await Promise.allSettled([...bystanders, killer]);
    for (const o of outcomes) {
      expect(o.status).toBe('rejected');
      expect((o as PromiseRejectedResult).reason.name).toBe('SshConnectionError');
    }
  });

  it('rejects with SshConnectionError when sshd itself goes away', async () => {
    const other = await startSshd();
    const pool = newPool();
    const t = { ...target, port: other.port, hostKey: other.hostKeyFingerprint, privateKey: other.clientKey };
    const running = pool.session(t).exec(['sleep', '30']);
    await new Promise((r) => setTimeout(r, 400));
    // Kill the whole sshd process group's sessions: the listener first, then every child of it.
    const { execFileSync } = await import('node:child_process');
    execFileSync('pkill', ['-9', '-P', String(other.pid)]);
    await expect(running).rejects.toMatchObject({ name: 'SshConnectionError' });
    await other.stop();
    await expect(pool.session(t).exec(['true'])).rejects.toMatchObject({ name: 'SshConnectionError' });
  });
});

describe('pool keys', () => {
  it('never lets a connection verified against one host key pin serve a caller with another pin', async () => {
    const pool = newPool();
    await pool.session(target).exec(['true']);
    const err = await pool
      .session({ ...target, hostKey: sshd.otherHostKeyFingerprint })
      .exec(['true'])
      .catch((e: Error) => e);
    expect((err as Error).name).toBe('HostKeyMismatchError');
  });
});

describe('silent peers', () => {
  it('detects a peer that stops answering (no RST) through keepalives, instead of hanging', async () => {
    const other = await startSshd();
    const pool = newPool({ keepaliveIntervalMs: 300, keepaliveCountMax: 2 });
    const t = { ...target, port: other.port, hostKey: other.hostKeyFingerprint, privateKey: other.clientKey };
    const { execFileSync } = await import('node:child_process');
    try {
      await pool.session(t).exec(['true']);
      const started = Date.now();
      // Freeze this connection's sshd process: TCP stays up, nothing answers any more.
      const err = await pool
        .session(t)
        .exec(['bash', '-c', 'kill -STOP $PPID; sleep 30'])
        .catch((e: Error) => e);
      expect((err as Error).name).toBe('SshConnectionError');
      expect((err as Error).message).toMatch(/keepalive/i);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      // The frozen session processes are children of this test's own sshd: kill them by parent pid.
      try {
        execFileSync('pkill', ['-9', '-P', String(other.pid)]);
      } catch {
        // none left
      }
      await other.stop();
    }
  });
});
