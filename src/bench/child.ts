// Starts and watches worker-child.js: when it was spawned, when it polled, and its peak RSS from /proc.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WORKER_ENV, WORKER_NODE_FLAGS } from '../worker';
import type { BenchContext } from './context';

export interface ChildWorker {
  pid: number;
  /** Date.now() when spawned (comparable with history event times: same machine) */
  spawnedAt: number;
  /** Date.now() when it printed `ready` */
  readyAt: number;
  /** VmHWM: the process's peak resident set, in MB (10^6 bytes, as the target is stated) */
  peakRssMB(): number;
  kill(signal: NodeJS.Signals): Promise<void>;
}

export async function spawnWorker(ctx: BenchContext, taskQueue: string): Promise<ChildWorker> {
  const bundlePath = await ctx.deployBundlePath();
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [...WORKER_NODE_FLAGS, join(__dirname, 'worker-child.js'), ctx.address, taskQueue, bundlePath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...WORKER_ENV },
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const readyAt = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker child not ready within 60 s:\n${err}`)), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(Date.now());
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker child exited (${code}) before it was ready:\n${err}`));
    });
  });
  const pid = child.pid ?? -1;
  let lastPeak = 0;
  return {
    pid,
    spawnedAt,
    readyAt,
    peakRssMB: () => {
      try {
        const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        if (kb) lastPeak = (Number(kb) * 1024) / 1e6;
      } catch {
        // exited: the last reading stands
      }
      return lastPeak;
    },
    kill: async (signal) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}
