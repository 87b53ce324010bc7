import { startLab, type Lab } from '../../src/lab';
import { sh } from './helpers';
import { pmxcfsWriteScript, replaceFileScript } from '../../src/adapters/file-scripts';
import { quote } from '../../src/adapters/quote';
import { SshPool } from '../../src/adapters/ssh';

let lab: Lab;
beforeAll(async () => { lab = await startLab({ timeScale: 0.01 }); });
afterAll(async () => { await lab.stop(); });

it("takes SshPool.upload's cat fallback (the lab has no SFTP) and the bash -s script form with arguments", async () => {
  const pool = new SshPool();
  try {
    const root = pool.session({ host: '127.0.0.1', port: lab.ssh.port, username: 'root', privateKey: lab.secrets.rootPrivateKeyPem, hostKey: lab.ssh.hostKeyFingerprint });
    await root.upload('/root/up.txt', 'payload\n', 0o600);
    expect((await sh(lab, 'cat /root/up.txt; stat -c %a /root/up.txt; ls /root')).stdout).toMatch(/^payload\n600\n(?![\s\S]*pve-vllm-tmp)/);
    const n = lab.journal().length;
    await root.upload('/root/up.txt', 'payload\n', 0o600); // the same bytes again: no net change, nothing journaled
    expect(lab.journal().length).toBe(n);
    expect(lab.journal().filter((j) => j.op === 'file.write').map((j) => j.detail)).toEqual(['/root/up.txt']);
    // pmxcfs takes no copy beside a guest's config: /etc/pve goes in with one counted write
    const conf = (await sh(lab, 'cat /etc/pve/lxc/116.conf')).stdout;
    await root.upload('/etc/pve/lxc/116.conf', `${conf}`);
    expect((await sh(lab, 'cat /etc/pve/lxc/116.conf')).stdout).toBe(conf);
  } finally {
    await pool.close();
  }
  expect((await sh(lab, 'command -v docker; command -v curl')).stdout).toBe('/usr/bin/curl\n');
  expect((await sh(lab, "bash -s -- one 'two words'", 'echo "$1|$2|$#"\n')).stdout).toBe('one|two words|2\n');
});

it('git clone/rev-parse/checkout behave like git on the design repository', async () => {
  const clone = await sh(lab, 'git clone --depth 1 --branch v0.6.4 https://github.com/vllm-project/vllm.git /opt/vllm');
  expect(clone.code).toBe(0);
  expect(clone.stderr).toMatch(/^Cloning into '\/opt\/vllm'\.\.\.\n/);
  const head = (await sh(lab, 'git -C /opt/vllm rev-parse HEAD')).stdout;
  expect(head).toMatch(/^[0-9a-f]{40}\n$/);
  expect((await sh(lab, 'git -C /opt/vllm rev-parse "v0.6.4^{commit}"')).stdout).toBe(head);
  expect((await sh(lab, 'git -C /opt/vllm checkout --detach v0.6.4')).code).toBe(0);
  expect((await sh(lab, 'git clone https://github.com/vllm-project/vllm.git /opt/vllm')).stderr).toBe("fatal: destination path '/opt/vllm' already exists and is not an empty directory.\n");
  expect((await sh(lab, 'git -C /nope rev-parse HEAD'))).toEqual({ code: 128, stdout: '', stderr: "fatal: cannot change to '/nope': No such file or directory\n" });
  // A shallow clone of a tag holds that tag only: another ref must be fetched first, and a branch is no tag.
  expect((await sh(lab, 'git -C /opt/vllm rev-parse --verify main')).code).toBe(128);
  expect((await sh(lab, 'git -C /opt/vllm fetch --depth 1 origin tag main'))).toMatchObject({ code: 128, stderr: "fatal: couldn't find remote ref refs/tags/main\n" });
  expect((await sh(lab, 'git -C /opt/vllm fetch --depth 1 origin refs/heads/main')).code).toBe(0);
  const main = (await sh(lab, 'git -C /opt/vllm rev-parse FETCH_HEAD')).stdout;
  expect((await sh(lab, `git -C /opt/vllm checkout -q --detach ${main}`)).code).toBe(0);
  expect((await sh(lab, 'git -C /opt/vllm rev-parse HEAD')).stdout).toBe(main);
  const listed = await sh(lab, 'git ls-remote https://github.com/vllm-project/vllm.git v0.6.4 main');
  expect(listed.stdout).toBe(`${main.trim()}\trefs/heads/main\n${head.trim()}\trefs/tags/v0.6.4\n`);
  expect((await sh(lab, 'git clone --depth 1 --branch a6221a144af772fd1a68fe7e627935dc53e81738 https://github.com/vllm-project/vllm.git /opt/x')).stderr).toContain('fatal: Remote branch a6221a144af772fd1a68fe7e627935dc53e81738 not found in upstream origin');
});

it('replaces a file only when all of stdin arrived, in a CT and in /etc/pve, and journals one write', async () => {
  const conf = (await sh(lab, 'cat /etc/pve/lxc/116.conf')).stdout;
  const longer = `#modèle ✓\n${conf}`; // a comment line: PVE keeps a guest's description that way
  const bytes = Buffer.byteLength(longer);
  const short = await sh(lab, quote(['sh', '-c', pmxcfsWriteScript('/etc/pve/lxc/116.conf', bytes)]), longer.slice(0, 20));
  expect(short).toEqual({ code: 1, stdout: '', stderr: `pve-vllm: ${Buffer.byteLength(longer.slice(0, 20))} of ${bytes} bytes of /etc/pve/lxc/116.conf arrived; left unchanged\n` });
  expect((await sh(lab, 'cat /etc/pve/lxc/116.conf')).stdout).toBe(conf);
  expect(await sh(lab, quote(['sh', '-c', pmxcfsWriteScript('/etc/pve/lxc/116.conf', bytes)]), longer)).toEqual({ code: 0, stdout: '', stderr: '' });
  expect((await sh(lab, 'cat /etc/pve/lxc/116.conf')).stdout).toBe(longer);

  const env = 'VLLM_API_KEY=k\n';
  const inCt = (n: number) => quote(['pct', 'exec', '116', '--', 'sh', '-c', replaceFileScript('/root/vllm.env', n, '0600')]);
  const n = lab.journal().length;
  expect((await sh(lab, inCt(env.length), env.slice(0, 5))).code).toBe(1);
  expect((await sh(lab, 'pct exec 116 -- ls -a /root')).stdout).not.toMatch(/vllm\.env/);
  expect(lab.journal().length).toBe(n);
  expect((await sh(lab, inCt(env.length), env)).code).toBe(0);
  expect((await sh(lab, 'pct exec 116 -- stat -c %a /root/vllm.env')).stdout).toBe('600\n');
  expect(lab.journal().slice(n).map((j) => `${j.op} ${j.guest} ${j.detail}`)).toEqual(['file.write 116 /root/vllm.env']);
});
