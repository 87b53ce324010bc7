import { startLab, type Lab } from '../../src/lab';
import { sh } from './helpers';

let lab: Lab;
beforeAll(async () => { lab = await startLab({ timeScale: 0.01 }); });
afterAll(async () => { await lab.stop(); });

it('accepts the cat-fallback upload form and the bash -s script form with arguments', async () => {
  const quoted = `sh -c 'set -e; umask 077; : > "$1"; chmod "$2" "$1"; cat > "$1"' sh /root/up.txt 600`;
  expect(await sh(lab, quoted, 'payload\n')).toEqual({ code: 0, stdout: '', stderr: '' });
  expect((await sh(lab, 'cat /root/up.txt')).stdout).toBe('payload\n');
  const n = lab.journal().length;
  await sh(lab, quoted, 'payload\n'); // the same bytes again: no net change, nothing journaled
  expect(lab.journal().length).toBe(n);
  expect(lab.journal().filter((j) => j.op === 'file.write').map((j) => j.detail)).toEqual(['/root/up.txt']);
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
});
