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
