/**
 * The SSH adapter against a real OpenSSH sshd (issue 6 item 2): host key pinning, key auth, faithful exit
 * codes and output (large, binary, streamed), sudo, scripts on stdin, uploads.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo } from 'node:net';
import { SshPool, SshTarget } from '../../src/adapters/ssh';
import { startSshd, ensureTestUser, TestSshd, TEST_USER } from './sshd';
import { pmxcfsWriteScript, replaceFileScript } from '../../src/adapters/file-scripts';

let sshd: TestSshd;
let pool: SshPool;
let target: SshTarget;
let haveTestUser = false;

beforeAll(async () => {
  sshd = await startSshd();
  haveTestUser = ensureTestUser();
  target = { host: sshd.host, port: sshd.port, username: 'root', privateKey: sshd.clientKey, hostKey: sshd.hostKeyFingerprint };
});

beforeEach(() => {
  pool = new SshPool({ idleTimeoutMs: 5_000 });
});

afterEach(async () => {
  await pool.close();
});

afterAll(async () => {
  await sshd?.stop();
});

describe('connecting', () => {
  it('refuses a host whose key does not match the pinned fingerprint, saying expected vs got and what to do', async () => {
    const wrongPin = { ...target, hostKey: sshd.otherHostKeyFingerprint };
    const err = await pool.session(wrongPin).exec(['true']).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('HostKeyMismatchError');
    expect((err as Error).message).toContain(`expected ${sshd.otherHostKeyFingerprint}`);
    expect((err as Error).message).toContain(`got ${sshd.hostKeyFingerprint}`);
    expect((err as Error).message).toMatch(/ssh-keygen -lf/);
    expect(pool.handshakes).toBe(0);
  });

  it('refuses a malformed pin before connecting', async () => {
    const err = await pool.session({ ...target, hostKey: 'MD5:aa:bb' }).exec(['true']).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/hostKey must look like SHA256:/);
    expect((err as Error).name).toBe('SshConfigError');
  });

  it('authenticates by key', async () => {
    const res = await pool.session(target).exec(['id', '-un']);
    expect(res).toMatchObject({ code: 0, stdout: 'root\n', stderr: '' });
    expect(pool.handshakes).toBe(1);
  });

  it('authenticates with a PEM RSA key given as a Buffer', async () => {
    expect(sshd.clientKeyPem.toString()).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    const res = await pool.session({ ...target, privateKey: sshd.clientKeyPem }).exec(['echo', 'pem']);
    expect(res.stdout).toBe('pem\n');
  });

  it('rejects a key the host does not know with a non-retryable SshAuthError', async () => {
    const err = await pool.session({ ...target, privateKey: sshd.wrongClientKey }).exec(['true']).catch((e: Error) => e);
    expect((err as Error).name).toBe('SshAuthError');
    expect((err as Error).message).toMatch(/authorized_keys/);
    expect((err as { retryable?: boolean }).retryable).toBe(false);
  });

  it('reports an unparsable private key without echoing it', async () => {
    const bogus = 'not-a-key-SECRETSECRET';
    const err = await pool.session({ ...target, privateKey: bogus }).exec(['true']).catch((e: Error) => e);
    expect((err as Error).name).toBe('SshAuthError');
    expect((err as Error).message).not.toContain('SECRETSECRET');
  });

  it('reports a refused port as a retryable SshConnectionError', async () => {
    const err = await pool.session({ ...target, port: 1 }).exec(['true']).catch((e: Error) => e);
    expect((err as Error).name).toBe('SshConnectionError');
    expect((err as { retryable?: boolean }).retryable).toBe(true);
  });
});

describe('exec', () => {
  it('returns exit codes, stdout and stderr faithfully', async () => {
    const s = pool.session(target);
    expect(await s.exec(['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect((await s.exec(['false'])).code).toBe(1);
    const missing = await s.exec(['no-such-command-pve-vllm']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/not found/);
    const killed = await s.exec(['sh', '-c', 'kill -9 $$']);
    expect(killed).toMatchObject({ code: 137, signal: 'SIGKILL' });
  });

  it('passes hostile arguments as single literal arguments', async () => {
    const args = ['a b', "it's", '$(touch /tmp/pve-vllm-pwned)', '`id`', 'x;y', 'line1\nline2', '', 'ünï ✓'];
    const res = await pool.session(target).exec(['printf', '%s\\0', ...args]);
    expect(res.stdout.split('\0').slice(0, -1)).toEqual(args);
  });

  it('brings back 5 MB of text intact', async () => {
    const lines = 582_542; // 9 bytes each ("line ✓\n"): just under 5 MiB, with multi-byte chars across packets
    const res = await pool.session(target).exec(['sh', '-c', `yes 'line ✓' | head -n ${lines}`]);
    expect(res.code).toBe(0);
    expect(Buffer.byteLength(res.stdout)).toBe(lines * 9);
    expect(res.stdout).toBe('line ✓\n'.repeat(lines));
  });

  it('brings back 5 MB of random bytes bit-exact', async () => {
    const res = await pool
      .session(target)
      .exec(['bash', '-c', 'f=$(mktemp); head -c 5242880 /dev/urandom > "$f"; cat "$f"; sha256sum "$f" >&2; rm -f "$f"'], {
        binary: true,
      });
    expect(res.code).toBe(0);
    expect(res.stdoutBytes?.length).toBe(5 * 1024 * 1024);
    const sha = createHash('sha256').update(res.stdoutBytes ?? Buffer.alloc(0)).digest('hex');
    expect(res.stderr.split(' ')[0]).toBe(sha);
  });

  it('sends binary stdin and gets every byte value back', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const payload = Buffer.concat([all, randomBytes(100_000), all]);
    const res = await pool.session(target).exec(['cat'], { stdin: payload, binary: true });
    expect(res.stdoutBytes?.equals(payload)).toBe(true);
  });

  it('streams output while the command is still running', async () => {
    const chunks: Array<{ text: string; at: number }> = [];
    const started = Date.now();
    const res = await pool.session(target).exec(['bash', '-c', 'for i in 1 2 3; do echo $i; sleep 0.3; done; echo done >&2'], {
      onOutput: (text, stream) => chunks.push({ text: `${stream}:${text}`, at: Date.now() - started }),
    });
    const finished = Date.now() - started;
    expect(res.stdout).toBe('1\n2\n3\n');
    expect(chunks.map((c) => c.text).join('')).toBe('stdout:1\nstdout:2\nstdout:3\nstderr:done\n');
    // The first line arrived well before the command ended, and the lines came apart in time.
    expect(chunks[0].at).toBeLessThan(finished - 500);
    expect(chunks[2].at - chunks[0].at).toBeGreaterThanOrEqual(450);
  });

  it('closes stdin so a command reading it does not hang', async () => {
    const res = await pool.session(target).exec(['cat'], { timeoutMs: 5_000 });
    expect(res).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});

describe('sudo and scripts', () => {
  it('runs sudo -n as root', async () => {
    const res = await pool.session(target).exec(['id', '-u'], { sudo: true });
    expect(res).toMatchObject({ code: 0, stdout: '0\n' });
  });

  it('runs sudo -n from a non-root user with a NOPASSWD rule', async () => {
    expect(haveTestUser).toBe(true); // these tests run as root (CI container); without it this proves nothing
    const user = { ...target, username: TEST_USER };
    expect((await pool.session(user).exec(['id', '-un'])).stdout).toBe(`${TEST_USER}\n`);
    const res = await pool.session(user).exec(['id', '-un'], { sudo: true });
    expect(res).toMatchObject({ code: 0, stdout: 'root\n' });
    // The rule only allows root as target user: for anything else sudo -n fails at once instead of prompting.
    const denied = await pool.session(user).exec(['sudo', '-n', '-u', 'nobody', 'true'], { timeoutMs: 10_000 });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/password is required/);
  });

  it('feeds scripts on stdin, so secrets never show in any process argv', async () => {
    const secret = `s3cret-${randomBytes(8).toString('hex')}`;
    const res = await pool.session(target).script(
      [
        `TOKEN='${secret}'`,
        'echo "len=${#TOKEN} arg1=$1"',
        // Every process's command line while the script runs: the secret must be in none of them.
        'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f" 2>/dev/null; echo; done',
      ].join('\n'),
      { args: ['first arg'] },
    );
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`len=${secret.length} arg1=first arg`);
    expect(res.stdout).toContain('bash -s -- first arg');
    expect(res.stdout).not.toContain(secret);
  });

  it('runs a script with sudo', async () => {
    const res = await pool.session({ ...target, username: TEST_USER }).script('id -un\nexit 4\n', { sudo: true });
    expect(res).toMatchObject({ code: 4, stdout: 'root\n' });
  });
});

describe('replacing a file from stdin (Host.write, Host.ctWrite)', () => {
  const content = 'claude ALL=(ALL) NOPASSWD: ALL # ✓\n';
  const bytes = Buffer.byteLength(content);
  const ways: Array<[string, (path: string, n: number) => string]> = [
    ['beside the file', (path, n) => replaceFileScript(path, n, '0440')],
    ['through a temporary file (pmxcfs)', (path, n) => pmxcfsWriteScript(path, n)],
  ];

  it.each(ways)('%s: replaces it when every byte arrived', async (_how, script) => {
    const s = pool.session(target);
    const path = `${sshd.dir}/replace-ok`;
    await s.exec(['sh', '-c', 'echo old > "$1"', 'sh', path]);
    const res = await s.exec(['sh', '-c', script(path, bytes)], { stdin: content });
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect((await s.exec(['cat', path])).stdout).toBe(content);
    expect((await s.exec(['ls', sshd.dir])).stdout).not.toMatch(/pve-vllm-tmp/);
  });

  it.each(ways)('%s: leaves the old file when stdin ended early (a worker killed mid-upload), and says so', async (_how, script) => {
    const s = pool.session(target);
    const path = `${sshd.dir}/replace-short`;
    await s.exec(['sh', '-c', 'echo old > "$1"', 'sh', path]);
    const cut = content.slice(0, 10);
    const res = await s.exec(['sh', '-c', script(path, bytes)], { stdin: cut });
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`pve-vllm: ${Buffer.byteLength(cut)} of ${bytes} bytes of ${path} arrived; left unchanged\n`);
    expect((await s.exec(['cat', path])).stdout).toBe('old\n');
    expect((await s.exec(['ls', sshd.dir])).stdout).not.toMatch(/pve-vllm-tmp/);
  });
});

describe('upload', () => {
  it('writes content and mode over SFTP, tightening the mode of an existing file', async () => {
    const s = pool.session(target);
    const path = `${sshd.dir}/uploaded.env`;
    await s.exec(['sh', '-c', 'echo old > "$1"; chmod 644 "$1"', 'sh', path]);
    await s.upload(path, 'VLLM_API_KEY=abc\n', 0o600);
    expect((await s.exec(['stat', '-c', '%a', path])).stdout).toBe('600\n');
    expect((await s.exec(['cat', path])).stdout).toBe('VLLM_API_KEY=abc\n');
    expect((await s.exec(['ls', '-A', sshd.dir])).stdout).not.toMatch(/pve-vllm-tmp/); // the copy was renamed over it
  });

  it('uploads a 3 MB binary file bit-exact with the default mode', async () => {
    const s = pool.session(target);
    const data = randomBytes(3 * 1024 * 1024);
    const path = `${sshd.dir}/blob.bin`;
    await s.upload(path, data);
    const res = await s.exec(['sh', '-c', 'sha256sum "$1"; stat -c %a "$1"', 'sh', path]);
    expect(res.stdout).toBe(`${createHash('sha256').update(data).digest('hex')}  ${path}\n644\n`);
  });

  it('leaves the old file whole when the link drops mid-upload, never a truncated one in its place', async () => {
    // The link runs through a loopback relay that cuts both sides once 4 MB have gone up: the 16 MB upload
    // is cut mid-way whatever the machine's speed.
    let up = 0;
    const relay = createServer((client) => {
      const server = connect(sshd.port, '127.0.0.1');
      const cut = () => {
        client.destroy();
        server.destroy();
      };
      client.on('data', (d: Buffer) => {
        up += d.length;
        if (up > 4 * 1024 * 1024) cut();
        else server.write(d);
      });
      server.on('data', (d: Buffer) => client.write(d));
      client.on('error', cut);
      server.on('error', cut);
      client.on('close', cut);
      server.on('close', cut);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', () => resolve()));
    const p = new SshPool();
    try {
      const path = `${sshd.dir}/dropped.bin`;
      await pool.session(target).exec(['sh', '-c', 'echo old > "$1"', 'sh', path]);
      const s = p.session({ ...target, port: (relay.address() as AddressInfo).port });
      const err = await s.upload(path, randomBytes(16 * 1024 * 1024)).catch((e: Error) => e);
      expect(up).toBeGreaterThan(4 * 1024 * 1024);
      expect((err as Error).name).toBe('SshConnectionError');
      expect((await pool.session(target).exec(['cat', path])).stdout).toBe('old\n');
    } finally {
      await p.close();
      relay.close();
    }
  });

  it('fails with a non-retryable SshUploadError when the directory does not exist', async () => {
    const err = await pool.session(target).upload('/nonexistent-dir-pve-vllm/x', 'x').catch((e: Error) => e);
    expect((err as Error).name).toBe('SshUploadError');
    expect((err as Error).message).toContain('/nonexistent-dir-pve-vllm/x');
  });

  it('falls back to cat when the sftp-server may not rename over a file (-P posix-rename)', async () => {
    // An sftp-server with posix-rename denied leaves it out of the extensions it offers; a plain SFTP rename
    // would refuse an existing target, so the copy cannot replace the file in one step over SFTP.
    const limited = await startSshd({ sftpDenied: ['posix-rename'] });
    const p = new SshPool();
    try {
      const t = { ...target, port: limited.port, hostKey: limited.hostKeyFingerprint, privateKey: limited.clientKey };
      const path = `${limited.dir}/limited.env`;
      await p.session(t).exec(['sh', '-c', 'echo old > "$1"; chmod 644 "$1"', 'sh', path]);
      const commands = () => (limited.log().match(/Starting session: command/g) ?? []).length;
      const before = commands();
      await p.session(t).upload(path, 'VLLM_API_KEY=abc\n', 0o600);
      expect(commands()).toBe(before + 1); // the cat fallback, after the SFTP session gave up
      expect(limited.log()).toMatch(/subsystem 'sftp'/);
      const res = await p.session(t).exec(['sh', '-c', 'cat "$1"; stat -c %a "$1"', 'sh', path]);
      expect(res.stdout).toBe('VLLM_API_KEY=abc\n600\n');
      expect((await p.session(t).exec(['ls', '-A', limited.dir])).stdout).not.toMatch(/pve-vllm-tmp/);
    } finally {
      await p.close();
      await limited.stop();
    }
  });

  it('falls back to cat on stdin when the host has no SFTP subsystem', async () => {
    const noSftp = await startSshd({ sftp: false });
    const p = new SshPool();
    try {
      const t = { ...target, port: noSftp.port, hostKey: noSftp.hostKeyFingerprint, privateKey: noSftp.clientKey };
      const path = `${noSftp.dir}/fallback.txt`;
      await p.session(t).upload(path, "it's\nfine ✓\n", 0o640);
      const res = await p.session(t).exec(['sh', '-c', 'cat "$1"; stat -c %a "$1"', 'sh', path]);
      expect(res.stdout).toBe("it's\nfine ✓\n640\n");
      expect((await p.session(t).exec(['ls', noSftp.dir])).stdout).not.toMatch(/pve-vllm-tmp/);
      expect(noSftp.log()).toMatch(/subsystem request for sftp.*failed|refused/i);
    } finally {
      await p.close();
      await noSftp.stop();
    }
  });
});
