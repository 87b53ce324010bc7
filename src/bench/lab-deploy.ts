// Deploys against labs for the bench: a lab per deploy, decisions pre-answered in the config (so no human wait
// enters a timing), and an SSH pool that records which activities used SSH.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { SshPool, type ExecOptions, type ExecResult, type SshTarget } from '../adapters/ssh';
import { finalProgress } from '../cli/report';
import { startDeploy } from '../cli/run-commands';
import { loadConfig } from '../config/load';
import type { DeployConfig } from '../config/schema';
// The bench stands the lab up the way `pve-vllm lab`/`demo` do: only through its public entry.
import { startLab, type Lab } from '../lab';
import type { DeployProgress } from '../workflows/messages';
import type { BenchContext } from './context';

export const DEMO_DECISIONS = { openwebui: 'keep', frontend: 'openwebui' } as const;

export interface BenchLab {
  lab: Lab;
  config: DeployConfig;
  stop(): Promise<void>;
}

/** Lab start-ups that failed and were tried again (see startLabRetrying). */
export let labStartRetries = 0;

/**
 * About 1 in 250 ed25519 keys that ssh2 generates is one its own parser then rejects ("Malformed OpenSSH private
 * key"), and the lab makes fresh keys each start: a lab that fails to start is the bench's set-up, not the
 * orchestrator's cost, so it is tried again (and counted).
 */
async function startLabRetrying(timeScale: number, faults: Array<'ssh-drop'>): Promise<Lab> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startLab({ timeScale, faults });
    } catch (err) {
      if (attempt >= 3) throw err;
      labStartRetries++;
    }
  }
}

export async function startBenchLab(timeScale: number, faults: Array<'ssh-drop'> = []): Promise<BenchLab> {
  const lab = await startLabRetrying(timeScale, faults);
  const dir = mkdtempSync(join(tmpdir(), 'pve-vllm-bench-lab-'));
  try {
    const path = join(dir, 'lab.yaml');
    await lab.writeConfig(path);
    const loaded = loadConfig(path);
    if (!loaded.ok) throw new Error(`the lab's config does not validate: ${JSON.stringify(loaded.problems)}`);
    // configDir travels with the config so activities resolve the { file } secret references beside it.
    const config = {
      ...loaded.config,
      configDir: loaded.configDir,
      decisions: { ...loaded.config.decisions, ...DEMO_DECISIONS },
    } as DeployConfig;
    return {
      lab,
      config,
      stop: async () => {
        await lab.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await lab.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function stopAll(labs: BenchLab[]): Promise<void> {
  await Promise.all(labs.map((l) => l.stop().catch(() => undefined)));
}

export function startBenchDeploy(ctx: BenchContext, taskQueue: string, workflowId: string, config: DeployConfig): Promise<WorkflowHandle> {
  return startDeploy(ctx.client, { taskQueue }, config, workflowId, 'bench');
}

export interface DeployOutcome {
  progress: DeployProgress;
  /** client-side wall time from start() to the result */
  wallMs: number;
}

export async function runToEnd(handle: WorkflowHandle, startedAt: number): Promise<DeployOutcome> {
  const progress = await finalProgress(handle);
  return { progress, wallMs: performance.now() - startedAt };
}

/** SshPool that notes, per workflow, which activities used SSH and as whom. Otherwise the production pool. */
export class CountingSshPool extends SshPool {
  /** workflowId -> activityId -> `user@host:port` */
  readonly used = new Map<string, Map<string, string>>();

  override exec(target: SshTarget, argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    this.note(target);
    return super.exec(target, argv, opts);
  }

  override upload(target: SshTarget, path: string, content: string | Buffer, mode?: number): Promise<void> {
    this.note(target);
    return super.upload(target, path, content, mode);
  }

  private note(target: SshTarget): void {
    let info: Context['info'];
    try {
      info = Context.current().info;
    } catch {
      return; // not inside an activity (the pool's own kill helper, for instance)
    }
    const wf = info.workflowExecution?.workflowId ?? '?';
    let m = this.used.get(wf);
    if (!m) this.used.set(wf, (m = new Map()));
    m.set(info.activityId, `${target.username}@${target.host}:${target.port}`);
  }

  /** SSH-using activities (retried attempts count once) and distinct SSH targets of one workflow. */
  usage(workflowId: string): { activities: number; targets: number } {
    const m = this.used.get(workflowId) ?? new Map<string, string>();
    return { activities: m.size, targets: new Set(m.values()).size };
  }
}
