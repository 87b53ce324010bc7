// One deploy run against a fresh lab with the worker in a separate process; the run is started and its
// decisions answered from here, as a user's CLI would. `npm run reliability` and test/reliability share it.
// Like the CLI's demo, this harness starts the lab (a network peer on 127.0.0.1) itself.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { loadConfig } from '../config/load';
import type { DeployConfig } from '../config/schema';
import { finalProgress } from '../cli/report';
import { startDeploy } from '../cli/run-commands';
import { startLab, type Lab } from '../lab';
import type { FaultName, LabState } from '../lab/state';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { bundleWorkflows } from '../worker';
import type { DeployProgress } from '../workflows/messages';
import { startWorkerProc, type WorkerProc } from './proc';

export interface Env {
  address: string;
  client: Client;
  bundlePath: string;
  workDir: string;
  log(line: string): void;
  close(): Promise<void>;
}

/** A Temporal server (the given one, or a dev server of our own) and the workflow bundle, written once. */
export async function openEnv(opts: { address?: string; bundlePath?: string; log?: (l: string) => void } = {}): Promise<Env> {
  const log = opts.log ?? (() => undefined);
  const workDir = mkdtempSync(join(tmpdir(), 'pve-vllm-reliability-'));
  let server: DevServer | undefined;
  let address = opts.address;
  if (!address) {
    server = await startDevServer({ log });
    address = server.address;
  }
  let bundlePath = opts.bundlePath;
  if (!bundlePath) {
    bundlePath = join(workDir, 'workflow-bundle.js');
    writeFileSync(bundlePath, (await bundleWorkflows()).code);
  }
  const connection = await Connection.connect({ address });
  return {
    address,
    client: new Client({ connection, namespace: 'default' }),
    bundlePath,
    workDir,
    log,
    async close() {
      await connection.close();
      await server?.stop();
    },
  };
}

export interface Scenario {
  name: string;
  decide: { openwebui?: string; frontend?: string };
  faults?: FaultName[];
  timeScale?: number;
  /** the run is expected to end so; anything else is a failed run */
  expect: 'completed' | 'compensated' | 'cancelled';
  /** edit the parsed YAML the lab wrote before it is validated (hostile inputs) */
  editRaw?: (raw: Record<string, unknown>) => void;
}

export interface LiveRun {
  lab: Lab;
  handle: WorkflowHandle;
  taskQueue: string;
  workers: WorkerProc[];
  /** start another worker process on the same task queue */
  spawnWorker(): WorkerProc;
}

export interface RunOutcome {
  scenario: Scenario;
  workflowId: string;
  handle: WorkflowHandle;
  progress: DeployProgress;
  ok: boolean;
  lab: Lab;
  before: LabState;
  configPath: string;
  workerLogs: string;
}

let seq = 0;

/** Starts the lab, a worker process and the deploy; `during` runs alongside; returns when the run has closed. */
export async function runScenario(env: Env, scenario: Scenario, during?: (run: LiveRun) => Promise<void>): Promise<RunOutcome> {
  const lab = await startLab({ faults: scenario.faults ?? [], timeScale: scenario.timeScale ?? 0.05 });
  const workers: WorkerProc[] = [];
  try {
    const before = lab.state();
    const dir = mkdtempSync(join(env.workDir, `${scenario.name.replace(/[^\w.-]+/g, '_')}-`));
    const configPath = join(dir, 'lab.yaml');
    await lab.writeConfig(configPath);
    if (scenario.editRaw) editConfigFile(configPath, scenario.editRaw);
    const config = loadLabConfig(configPath);
    const taskQueue = `reliability-${process.pid}-${++seq}`;
    const spawnWorker = () => {
      const w = startWorkerProc({ address: env.address, taskQueue, bundlePath: env.bundlePath });
      workers.push(w);
      return w;
    };
    await spawnWorker().ready;
    const workflowId = `reliability-${scenario.name.replace(/[^\w.-]+/g, '_')}-${process.pid}-${Date.now()}-${seq}`;
    const handle = await startDeploy(env.client, { taskQueue }, config, workflowId, 'reliability');
    const answering = answerDecisions(handle, scenario.decide);
    const sideJob = during ? during({ lab, handle, taskQueue, workers, spawnWorker }) : Promise.resolve();
    const progress = await finalProgress(handle);
    await sideJob;
    // before the workers go: a query in flight needs one to answer
    await answering.stop();
    for (const w of workers) await w.stop();
    return {
      scenario,
      workflowId,
      handle,
      progress,
      ok: progress.status === scenario.expect,
      lab,
      before,
      configPath,
      workerLogs: workers.map((w) => w.output()).join('\n'),
    };
  } catch (err) {
    for (const w of workers) await w.kill();
    await lab.stop();
    throw err;
  }
}

export function loadLabConfig(configPath: string): DeployConfig & { configDir: string } {
  const loaded = loadConfig(configPath);
  if (!loaded.ok) throw new Error(`the lab's config does not validate: ${JSON.stringify(loaded.problems)}`);
  return { ...loaded.config, configDir: loaded.configDir };
}

/** Answers each pending decision through the Update, once, as soon as the workflow asks. */
export function answerDecisions(handle: WorkflowHandle, decide: { openwebui?: string; frontend?: string }): { stop(): Promise<void> } {
  let stopped = false;
  const done = new Set<string>();
  const loop = (async () => {
    while (!stopped) {
      try {
        const p = await handle.query<DeployProgress>('progress');
        for (const d of p.pending) {
          const choice = decide[d.decision];
          if (choice === undefined || done.has(d.decision)) continue;
          await handle.executeUpdate(d.decision === 'openwebui' ? 'decideOpenwebui' : 'decideFrontend', { args: [{ choice, by: 'reliability' }] });
          done.add(d.decision);
        }
        if (p.status !== 'running') return;
      } catch {
        /* not started yet, no worker right now (crash tests), or closed */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** Re-writes a config file with an edit applied to its parsed YAML (hostile inputs). */
export function editConfigFile(path: string, edit: (raw: Record<string, unknown>) => void): void {
  const raw = parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(raw);
  writeFileSync(path, stringify(raw));
}
