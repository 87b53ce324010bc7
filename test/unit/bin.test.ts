// bin/pve-vllm starts Node with the worker's flags (src/worker.ts says why) and still runs as a plain command.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WORKER_ENV, WORKER_NODE_FLAGS } from '../../src/worker';

const bin = join(__dirname, '..', '..', 'bin', 'pve-vllm');

describe('bin/pve-vllm', () => {
  it('starts node with WORKER_ENV and WORKER_NODE_FLAGS in its shebang', () => {
    const shebang = readFileSync(bin, 'utf8').split('\n')[0] as string;
    const env = Object.entries(WORKER_ENV).map(([k, v]) => `${k}=${v}`).join(' ');
    expect(shebang).toBe(`#!/usr/bin/env -S ${env} node ${WORKER_NODE_FLAGS.join(' ')}`);
  });

  it('runs as a command (env -S splits the flags) and prints help', async () => {
    const { stdout } = await promisify(execFile)(bin, ['--help']);
    expect(stdout).toMatch(/Usage: pve-vllm/);
  });
});
