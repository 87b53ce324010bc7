// Starting, killing and stopping worker processes (worker-proc.ts), with their output kept for the secret scan.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The compiled worker script: beside this file when running from lib/, else lib/ of the repo (jest runs src/). */
export function workerScript(): string {
  const here = join(__dirname, 'worker-proc.js');
  if (existsSync(here)) return here;
  const built = resolve(__dirname, '..', '..', 'lib', 'reliability', 'worker-proc.js');
  if (existsSync(built)) return built;
  throw new Error(`no compiled worker script at ${built}: run \`npm run build\` first`);
}

export interface WorkerProc {
  pid: number;
  startedAt: number;
  /** resolves with the time the worker said it polls */
  ready: Promise<number>;
  exited: Promise<number | null>;
  /** everything it wrote to stdout and stderr */
  output(): string;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export function startWorkerProc(opts: { address: string; taskQueue: string; bundlePath: string }): WorkerProc {
  const startedAt = Date.now();
  const child: ChildProcess = spawn(process.execPath, [workerScript(), '--address', opts.address, '--task-queue', opts.taskQueue, '--bundle', opts.bundlePath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: string[] = [];
  let onReady: (t: number) => void = () => undefined;
  let onFail: (e: Error) => void = () => undefined;
  const ready = new Promise<number>((res, rej) => {
    onReady = res;
    onFail = rej;
  });
  ready.catch(() => undefined);
  child.stdout?.on('data', (b: Buffer) => {
    const s = b.toString('utf8');
    chunks.push(s);
    if (s.includes('worker-ready')) onReady(Date.now());
  });
  child.stderr?.on('data', (b: Buffer) => chunks.push(b.toString('utf8')));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  void exited.then((code) => onFail(new Error(`worker process exited (${code}) before it was ready: ${chunks.join('').slice(-2000)}`)));
  const signal = async (sig: NodeJS.Signals, waitMs: number) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(sig);
    const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), waitMs))]);
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  return {
    pid: child.pid ?? -1,
    startedAt,
    ready,
    exited,
    output: () => chunks.join(''),
    kill: () => signal('SIGKILL', 10_000),
    stop: () => signal('SIGTERM', 15_000),
  };
}
