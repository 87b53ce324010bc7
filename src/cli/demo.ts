// `pve-vllm demo`: the whole thing on the embedded default — a local dev server (with its Web UI), the lab,
// a worker, and a deploy — answering decisions from --decide, a prompt in a TTY, or the recommendation.
// The CLI's lab and demo commands are the only places outside src/lab that start the lab.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Client } from '@temporalio/client';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { choiceProblem, decisionConflict, type FrontendChoice, type OpenWebuiChoice } from '../config/decisions';
import type { FaultName, LabState } from '../lab/state';
import { startDevServer } from '../temporal/dev-server';
import { bundleWorkflows, connectWorker, createDeployWorker } from '../worker';
import type { DeployProgress, PendingDecision } from '../workflows/messages';
import { EXIT_BAD_INPUT } from './exit';
import { startLabFor } from './lab-command';
import { exitCodeOf, finalProgress, renderProgress, toReport, watch } from './report';
import { Io, newWorkflowId, prepareDeploy, printReport, startDeploy, startTeardown } from './run-commands';
import { DEFAULT_TASK_QUEUE, workflowUiUrl } from './connection';

export interface DemoFlags {
  decide: string[];
  fault: string[];
  labState?: string;
  model?: string;
  maxModelLen?: number;
  json?: boolean;
  keep?: boolean;
  uiPort: number;
  timeScale?: number;
  /** after a completed deploy, take it back with `teardown` (the lab ends as it began) */
  teardown?: boolean;
}

export function parseDecides(list: string[]): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const item of list) {
    const m = /^(openwebui|frontend)=(\S+)$/.exec(item);
    if (!m) return `--decide: got ${JSON.stringify(item)}; allowed: openwebui=repurpose|keep|scrap or frontend=openwebui|comfyui|both`;
    const wrong = choiceProblem(m[1] as 'openwebui' | 'frontend', m[2] as string);
    if (wrong) return `--decide ${wrong}`;
    out[m[1] as string] = m[2] as string;
  }
  const { openwebui, frontend } = out;
  const conflict = openwebui && frontend ? decisionConflict(openwebui as OpenWebuiChoice, frontend as FrontendChoice) : undefined;
  if (conflict) return `--decide: ${conflict}`;
  return out;
}

export async function demoCommand(f: DemoFlags, io: Io): Promise<number> {
  const decides = parseDecides(f.decide);
  if (typeof decides === 'string') {
    io.err.write(`${decides}\n`);
    return EXIT_BAD_INPUT;
  }
  if (!(await portFree(f.uiPort))) {
    io.err.write(`--ui-port: ${f.uiPort} is in use on 127.0.0.1 (another demo or Temporal dev server?); allowed: a free port, e.g. --ui-port ${f.uiPort + 1}\n`);
    return EXIT_BAD_INPUT;
  }
  const log = (s: string) => {
    if (!f.json) io.err.write(`${s}\n`);
  };
  // Set-up that stops half-way (bad input, no Temporal CLI) takes down what it started, in reverse: the dev server
  // is a child process that would outlive us, the lab's state is not saved, and its directory holds its secrets.
  const dir = mkdtempSync(join(tmpdir(), 'pve-vllm-demo-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  const undo: Array<() => Promise<unknown>> = [async () => removeDir()];
  const unwind = async () => {
    for (const u of undo.reverse()) await u().catch(() => undefined);
  };
  const orUndo = async <T>(step: Promise<T>, undoIt?: (v: T) => Promise<unknown>): Promise<T> => {
    try {
      const v = await step;
      if (undoIt) undo.push(() => undoIt(v));
      return v;
    } catch (err) {
      await unwind();
      throw err;
    }
  };
  const lab = await orUndo(startLabFor('--lab-state', { statePath: f.labState, faults: f.fault as FaultName[], timeScale: f.timeScale }), (l) => l.stop({ save: false }));
  const cfgPath = join(dir, 'lab.yaml');
  const prepared = await orUndo(lab.writeConfig(cfgPath).then(() => prepareDeploy({ config: cfgPath, model: f.model, maxModelLen: f.maxModelLen }, io)));
  if (typeof prepared === 'number') {
    await unwind(); // bad input changes nothing: not even a --lab-state file that did not exist before
    return prepared;
  }
  Runtime.install({ logger: new DefaultLogger('WARN', ({ level, message }) => io.err.write(`[worker ${level}] ${message}\n`)) });
  log(`lab: SSH 127.0.0.1:${lab.ssh.port}, PVE API https://127.0.0.1:${lab.api.port}`);
  const bundling = bundleWorkflows();
  bundling.catch(() => undefined); // awaited below, after the server
  const server = await orUndo(startDevServer({ uiPort: f.uiPort, log }), (sv) => sv.stop());
  const bundle = await orUndo(bundling);
  const connection = await orUndo(connectWorker({ address: server.address }), (c) => c.close());
  const { worker, deps } = await orUndo(createDeployWorker({ connection, namespace: 'default', taskQueue: DEFAULT_TASK_QUEUE, workflowBundle: bundle }));
  log(`Temporal dev server ${server.address} (${server.cli.source}); Web UI ${server.uiUrl}`);
  const flags = { address: server.address, namespace: 'default', taskQueue: DEFAULT_TASK_QUEUE, uiUrl: server.uiUrl };
  const running = worker.run();
  const client = new Client({ connection: server.env.connection, namespace: 'default' });
  const workflowId = newWorkflowId(prepared.config);
  let code = 1;
  try {
    const handle = await startDeploy(client, flags, prepared.config, workflowId);
    const uiUrl = workflowUiUrl(flags, workflowId, handle.firstExecutionRunId);
    log(`deploy ${workflowId}\nTemporal UI: ${uiUrl}`);
    const answered = new Set<string>();
    const answer = async (p: DeployProgress) => {
      for (const d of p.pending) {
        if (answered.has(d.decision)) continue;
        answered.add(d.decision);
        const choice = decides[d.decision] ?? (await ask(d, io, f.json === true)) ?? d.recommendation ?? d.options[0];
        const name = d.decision === 'openwebui' ? 'decideOpenwebui' : 'decideFrontend';
        try {
          await handle.executeUpdate(name, { args: [{ choice, by: decides[d.decision] ? 'demo --decide' : 'demo' }] });
          log(`decision ${d.decision}=${choice}`);
        } catch (err) {
          log(`decision ${d.decision}=${choice} rejected: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
          answered.delete(d.decision);
          if (decides[d.decision]) throw err;
        }
      }
    };
    if (f.json) {
      // no screen to draw on: poll just for decisions
      let closed = false;
      void handle.result().catch(() => undefined).finally(() => (closed = true));
      while (!closed) {
        try {
          await answer(await handle.query<DeployProgress>('progress'));
        } catch {
          /* not ready */
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    } else {
      await watch(handle, io.out, answer);
    }
    const report = toReport(workflowId, await finalProgress(handle), uiUrl);
    report.lab = { guests: labGuests(lab.state()) };
    code = exitCodeOf(report.status);
    if (f.teardown && report.status === 'completed') {
      const th = await startTeardown(client, flags, prepared.config, workflowId, 'demo --teardown');
      log(`\nteardown ${workflowId}\nTemporal UI: ${workflowUiUrl(flags, workflowId, th.firstExecutionRunId)}`);
      if (!f.json) {
        printReport(report, false, io);
        await watch(th, io.out);
      }
      const down = await finalProgress(th);
      const guests = labGuests(lab.state());
      if (f.json) io.out.write(`${JSON.stringify({ ...report, teardown: { status: down.status, steps: down.steps, mutations: down.mutations, ...(down.error ? { error: down.error } : {}), lab: { guests } } }, null, 2)}\n`);
      else io.out.write(`${renderProgress(down).join('\n')}\nguests now: ${Object.entries(guests).map(([id, g]) => `${id} ${g.status}${g.gpu ? ' (GPU)' : ''}`).join(', ')}\n`);
      if (down.status !== 'completed') code = 1;
    } else {
      printReport(report, f.json === true, io);
    }
    log(`SSH handshakes seen by the lab: ${lab.handshakes()}; worker SSH connections: ${deps.ssh.handshakes}`);
    if (f.keep) {
      log(`\nkeeping the dev server and its UI up: ${server.uiUrl} — Ctrl-C to stop`);
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await deps.ssh.close();
    await connection.close();
    await server.stop();
    await lab.stop();
    removeDir();
  }
  return code;
}

/** Each guest of the lab's host: running or not, and whether it has the GPU passed through. */
function labGuests(s: LabState): Record<string, { status: string; gpu: boolean }> {
  return Object.fromEntries(Object.values(s.guests).map((g) => [String(g.vmid), { status: g.status, gpu: guestHasGpu(g) }]));
}

function guestHasGpu(g: { type: string; config: Record<string, string>; lxc: Array<[string, string]> }): boolean {
  if (g.type === 'qemu') return Object.entries(g.config).some(([k]) => /^hostpci\d+$/.test(k));
  return g.lxc.some(([k, v]) => k === 'lxc.mount.entry' && v.includes('/dev/nvidia')) || Object.entries(g.config).some(([k, v]) => /^dev\d+$/.test(k) && v.includes('nvidia'));
}

async function ask(d: PendingDecision, io: Io, json: boolean): Promise<string | undefined> {
  if (json || !process.stdin.isTTY || !io.out.isTTY) return undefined;
  const rl = createInterface({ input: process.stdin, output: io.out });
  try {
    const got = (await rl.question(`\n${d.decision}? ${d.options.join(' | ')} [${d.recommendation ?? d.options[0]}] `)).trim();
    return got === '' ? undefined : got;
  } finally {
    rl.close();
  }
}

/** Whether the Web UI's port can be had, checked before anything starts (the dev server would fail 5 s in). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}
