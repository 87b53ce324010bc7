/**
 * The lab's SSH server (ssh2 `Server`) on 127.0.0.1: public-key auth against the host's authorized_keys
 * files, exec with real exit codes and separate stdout/stderr, stdin (EOF-terminated), and live output for
 * commands that stream (docker pull). No SFTP subsystem: clients fall back to `cat >` as on a minimal host.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { Server, utils } from 'ssh2';
import type { Connection, ServerChannel } from 'ssh2';
import type { World } from './world';
import { parsePasswd } from './cmd-users';

export interface SshServerHandle {
  port: number;
  hostKeyFingerprint: string;
  handshakes(): number;
  /** every exec command line received, verbatim (never its stdin), for tests that audit what was sent */
  commands(): Array<{ seq: number; at: string; user: string; command: string }>;
  stop(): Promise<void>;
}

/** `SHA256:<base64 without padding>` of an OpenSSH public key line, as `ssh-keygen -lf` prints it. */
export function fingerprintOf(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function generateEd25519(comment: string): { privatePem: string; publicLine: string } {
  // ssh2's generator now and then emits a key its own parser rejects ("Malformed OpenSSH private key", seen
  // in about 1 of 10 lab starts): keep only keys that parse back.
  for (let i = 0; ; i++) {
    const kp = utils.generateKeyPairSync('ed25519', { comment });
    if (!(utils.parseKey(kp.private) instanceof Error) || i >= 20) return { privatePem: kp.private, publicLine: kp.public.trim() };
  }
}

/** Public key line of an OpenSSH private key. */
export function publicLineOf(privatePem: string): string {
  const parsed = utils.parseKey(privatePem);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new Error('lab: cannot parse key');
  return `${key.type} ${key.getPublicSSH().toString('base64')}`;
}

/** sshd's StrictModes: group/world-writable ~/.ssh or authorized_keys makes sshd ignore the file. */
async function authorizedKeys(world: World, user: string): Promise<string[] | null> {
  const hostFs = world.machine('host')?.fs;
  if (!hostFs) return null;
  const passwd = parsePasswd(await hostFs.readFile('/etc/passwd').catch(() => ''));
  const pw = passwd.find((u) => u.name === user);
  if (!pw || /nologin|false$/.test(pw.shell)) return null;
  const dir = `${pw.home}/.ssh`;
  const file = `${dir}/authorized_keys`;
  try {
    const [ds, fsStat] = [await hostFs.stat(dir), await hostFs.stat(file)];
    if ((ds.mode & 0o022) !== 0 || (fsStat.mode & 0o022) !== 0) return null;
    return (await hostFs.readFile(file)).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  } catch {
    return null;
  }
}

export async function startSshServer(world: World, hostKeyPem: string): Promise<SshServerHandle> {
  let handshakes = 0;
  let connSeq = 0;
  const commands: Array<{ seq: number; at: string; user: string; command: string }> = [];
  const clients = new Set<Connection>();
  const server = new Server({ hostKeys: [hostKeyPem], ident: 'OpenSSH_9.2p1 Debian-2+deb12u5' }, (client) => {
    clients.add(client);
    let user = '';
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') { ctx.reject(['publickey']); return; }
      void (async () => {
        const lines = await authorizedKeys(world, ctx.username);
        const match = (lines ?? []).some((line) => {
          const k = utils.parseKey(line);
          const key = Array.isArray(k) ? k[0] : k;
          if (!key || key instanceof Error) return false;
          const pub = key.getPublicSSH();
          if (key.type !== ctx.key.algo || pub.length !== ctx.key.data.length || !timingSafeEqual(pub, ctx.key.data)) return false;
          // Without a signature the client only asks whether the key would be accepted.
          return !ctx.signature || !ctx.blob || key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
        });
        if (match) { user = ctx.username; ctx.accept(); } else ctx.reject(['publickey']);
      })();
    });
    client.on('ready', () => {
      handshakes += 1;
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        const env: Record<string, string> = {};
        session.on('env', (accept, _reject, info) => {
          // Debian's sshd_config: AcceptEnv LANG LC_* (everything else is silently dropped).
          if (/^(LANG|LC_[A-Z_]+)$/.test(info.key)) env[info.key] = info.val;
          accept?.();
        });
        session.on('pty', (accept) => accept?.());
        session.on('sftp', (_accept, reject) => reject());
        session.on('shell', (_accept, reject) => reject());
        session.on('exec', (accept, _reject, info) => {
          const ch = accept();
          closeWithoutReending(ch);
          commands.push({ seq: commands.length + 1, at: new Date().toISOString(), user, command: info.command });
          // Unique per exec (not per connection) so live output of concurrent channels never crosses.
          const clientPort = 40000 + (connSeq++ % 20000);
          void runExec(world, client, ch, user, info.command, { ...env, SSH_CONNECTION: `127.0.0.1 ${clientPort} 127.0.0.1 22` });
        });
      });
    });
    client.on('error', () => undefined);
    client.on('close', () => clients.delete(client));
  });
  // OpenSSH hands a command's exit status, EOF and close to the kernel in one write; ssh2 writes each packet on
  // its own, and with Nagle's algorithm on, the later ones waited for the client's delayed ACK: ~40 ms added to
  // every command (measured: 44 ms per exec, 1.3 ms without). The lab accepts connections itself, Nagle off,
  // and hands them to ssh2.
  const tcp = createTcpServer({ noDelay: true }, (socket) => server.injectSocket(socket));
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const port = (tcp.address() as AddressInfo).port;
  return {
    port,
    hostKeyFingerprint: fingerprintOf(publicLineOf(hostKeyPem)),
    handshakes: () => handshakes,
    commands: () => commands.map((c) => ({ ...c })),
    stop: () => new Promise<void>((resolve) => {
      for (const c of clients) c.end();
      tcp.close(() => resolve());
    }),
  };
}

/**
 * Node destroys a finished channel by itself, and ssh2's destroy() ends it again before closing: a thrown-away
 * ERR_STREAM_ALREADY_FINISHED (and its stack) per command, for every lab in the process. Close it only.
 */
function closeWithoutReending(ch: ServerChannel): void {
  ch.destroy = function destroy(this: ServerChannel) {
    if (!this.writableEnded) this.end();
    this.close();
    return this;
  };
}

async function runExec(world: World, client: Connection, ch: ServerChannel, user: string, command: string, sshEnv: Record<string, string>): Promise<void> {
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve) => {
    let done = false;
    const finish = (): void => { if (!done) { done = true; resolve(); } };
    ch.on('data', (d: Buffer) => chunks.push(d));
    ch.on('end', finish);
    ch.on('close', finish);
    // The lab runs a command once its whole stdin is in (sshd would stream it). A client that sends neither data
    // nor EOF (ssh from a terminal) gets empty stdin after a while rather than a hang; the wait is long enough
    // that a loaded machine's late stdin (a sudoers rule, a script) is never mistaken for none.
    setTimeout(() => { if (chunks.length === 0) finish(); }, 2000);
  });
  const host = world.machine('host');
  if (!host) { ch.exit(255); ch.end(); return; }
  const pw = parsePasswd(await host.fs.readFile('/etc/passwd').catch(() => '')).find((u) => u.name === user);
  const home = pw?.home ?? '/root';
  const env: Record<string, string> = {
    USER: user, LOGNAME: user, HOME: home, SHELL: pw?.shell ?? '/bin/bash',
    PATH: user === 'root' ? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' : '/usr/local/bin:/usr/bin:/bin:/usr/games',
    LANG: 'C.UTF-8', ...sshEnv,
  };
  let dropped = false;
  world.sinks.set(env.SSH_CONNECTION ?? '', {
    write: (chunk, stream) => { if (!dropped) (stream === 'stdout' ? ch : ch.stderr).write(chunk); },
    drop: () => { dropped = true; client.end(); },
  });
  try {
    world.execsInFlight++;
    const res = await world.run(host, command, { stdin: Buffer.concat(chunks).toString('latin1'), env, cwd: home }).finally(() => world.execsInFlight--);
    await world.flushFileJournal();
    if (dropped) return;
    if (res.stdout) ch.write(res.stdout);
    if (res.stderr) ch.stderr.write(res.stderr);
    ch.exit(res.exitCode);
    ch.end();
  } finally {
    world.sinks.delete(env.SSH_CONNECTION ?? '');
  }
}
