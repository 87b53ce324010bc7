// What activities receive from the composition root (worker.ts): clients built from factories, so tests and
// the demo hand in the same adapters pointed elsewhere. Secrets are resolved here, inside the worker only.
import { ApplicationFailure, Context, heartbeat, sleep } from '@temporalio/activity';
import type { DeployConfig } from '../config/schema';
import { resolveSecret } from '../config/load';
import { SshPool, type ExecOptions, type ExecResult, type SshSession } from '../adapters/ssh';
import { createPveClient, type PveClient } from '../adapters/pve';
import { AdapterError } from '../adapters/errors';
import { quote } from '../adapters/quote';
import { replaceFileScript, writeFileScript } from '../adapters/file-scripts';

export interface ActivityDeps {
  ssh: SshPool;
  /** `token` for routine calls; `root` (root@pam ticket) for root-only ones */
  pve(cfg: DeployConfig, as: 'token' | 'root'): PveClient;
  secret(cfg: DeployConfig, ref: { env: string } | { file: string }): string;
  /** plain HTTP for probes of vLLM and the frontends */
  fetch: typeof fetch;
}

export function createActivityDeps(opts: { ssh?: SshPool } = {}): ActivityDeps {
  const ssh = opts.ssh ?? new SshPool({ idleTimeoutMs: 60_000 });
  const clients = new Map<string, PveClient>();
  const secret: ActivityDeps['secret'] = (cfg, ref) => resolveSecret(ref, configDirOf(cfg));
  return {
    ssh,
    secret,
    fetch: globalThis.fetch,
    pve(cfg, as) {
      const key = `${cfg.proxmox.host}:${cfg.proxmox.api.port}:${as}`;
      let c = clients.get(key);
      if (!c) {
        const tls = cfg.proxmox.api.tls;
        const target = {
          host: cfg.proxmox.host,
          port: cfg.proxmox.api.port,
          tokenId: cfg.proxmox.api.tokenId,
          tokenSecret: secret(cfg, cfg.proxmox.api.tokenSecret),
          tls: 'fingerprint' in tls ? { fingerprint: tls.fingerprint } : { caFile: tls.caFile },
        };
        if (as === 'root' && !cfg.proxmox.root) {
          throw ApplicationFailure.nonRetryable(
            'this step needs root@pam (API tokens are never root for PVE): set proxmox.root.password in the config',
            'RootCredentialsMissing',
          );
        }
        c = createPveClient(target, as === 'root' ? { username: 'root@pam', password: secret(cfg, cfg.proxmox.root!.password) } : 'token');
        clients.set(key, c);
      }
      return c;
    },
  };
}

function configDirOf(cfg: DeployConfig): string {
  return (cfg as DeployConfig & { configDir?: string }).configDir ?? process.cwd();
}

/** The helpers every activity file uses, bound to one deps object. */
export class Host {
  // One session each for the life of this Host (one activity): the key file is read once, not per command.
  private rootSession: SshSession | undefined;
  private adminSession: SshSession | undefined;

  constructor(private readonly deps: ActivityDeps, readonly cfg: DeployConfig) {}

  get node(): string {
    return this.cfg.proxmox.node;
  }

  root(): SshSession {
    const c = this.cfg.proxmox;
    return (this.rootSession ??= this.deps.ssh.session({
      host: c.host,
      port: c.ssh.port,
      username: c.ssh.user,
      privateKey: this.deps.secret(this.cfg, c.ssh.privateKey),
      hostKey: c.ssh.hostKey,
    }));
  }

  admin(): SshSession {
    const c = this.cfg;
    return (this.adminSession ??= this.deps.ssh.session({
      host: c.proxmox.host,
      port: c.proxmox.ssh.port,
      username: c.admin.user,
      privateKey: this.deps.secret(c, c.admin.privateKey),
      hostKey: c.proxmox.ssh.hostKey,
    }));
  }

  api(as: 'token' | 'root' = 'token'): PveClient {
    return this.deps.pve(this.cfg, as);
  }

  secret(ref: { env: string } | { file: string }): string {
    return this.deps.secret(this.cfg, ref);
  }

  /** Run argv on the host as the SSH user (root, or through sudo when the SSH user is not root). */
  run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return this.root().exec(argv, { sudo: this.cfg.proxmox.ssh.user !== 'root', ...opts });
  }

  /** Whether a command exists on the host (`command -v` in the login shell; no sudo needed to look). */
  async has(command: string): Promise<boolean> {
    return (await this.root().exec(['command', '-v', command])).code === 0;
  }

  /** Run argv and fail unless it exits 0. */
  async must(argv: string[], opts: ExecOptions = {}): Promise<string> {
    const r = await this.run(argv, opts);
    if (r.code !== 0) throw new CommandFailedError(quote(argv), r);
    return r.stdout;
  }

  /** Run argv inside a container: `pct exec <id> -- argv` (no shell in between). */
  ct(vmid: number, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return this.run(['pct', 'exec', String(vmid), '--', ...argv], opts);
  }

  async ctMust(vmid: number, argv: string[], opts: ExecOptions = {}): Promise<string> {
    const r = await this.ct(vmid, argv, opts);
    if (r.code !== 0) throw new CommandFailedError(`pct exec ${vmid} -- ${quote(argv)}`, r);
    return r.stdout;
  }

  /** Write a file in a container from stdin, so its content (maybe a secret) never reaches an argv. */
  async ctWrite(vmid: number, path: string, content: string, mode = '0644'): Promise<void> {
    await this.ctMust(vmid, ['sh', '-c', replaceFileScript(path, Buffer.byteLength(content), mode)], { stdin: content });
  }

  /** Read a file in a container; undefined when it does not exist. */
  async ctRead(vmid: number, path: string): Promise<string | undefined> {
    const r = await this.ct(vmid, ['cat', path]);
    return r.code === 0 ? r.stdout : undefined;
  }

  async read(path: string): Promise<string | undefined> {
    const r = await this.run(['cat', path]);
    return r.code === 0 ? r.stdout : undefined;
  }

  /** Write a host file atomically from stdin. */
  async write(path: string, content: string, mode = '0644'): Promise<void> {
    await this.must(['sh', '-c', writeFileScript(path, Buffer.byteLength(content), mode)], { stdin: content });
  }
}

/** A command that exited non-zero where success was required. Retryable: hosts have bad moments. */
export class CommandFailedError extends Error {
  constructor(readonly command: string, readonly result: ExecResult) {
    super(`\`${command.slice(0, 160)}\` exited ${result.code}: ${(result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`);
    this.name = 'CommandFailedError';
  }
}

/** How often a checkpoint looks before it fails, and how long it waits between looks. */
export const CHECKPOINT_LOOKS = { tries: 3, gapMs: 2000 };

/**
 * A checkpoint that looks again before failing: the host can be a moment behind the step before it (a file
 * written by an attempt that timed out on a starved worker, a driver node appearing after the CT started).
 * `look` returns the evidence, or why it is not there yet; the last reason fails the run, for good.
 */
export async function lookAgain<T>(look: () => Promise<{ ok: T } | { notYet: string }>): Promise<T> {
  let reason = '';
  for (let i = 1; i <= CHECKPOINT_LOOKS.tries; i++) {
    const r = await look();
    if ('ok' in r) return r.ok;
    reason = r.notYet;
    if (i < CHECKPOINT_LOOKS.tries) await sleep(CHECKPOINT_LOOKS.gapMs);
  }
  throw permanent(`${reason} (looked ${CHECKPOINT_LOOKS.tries} times, ${CHECKPOINT_LOOKS.gapMs / 1000} s apart)`, 'CheckpointFailed');
}

/**
 * What the host was before pve-vllm's first deploy, kept when a deploy passes checkpoint 6 for a teardown.
 * Root-only, on the host: no secrets in it (a frontend's connections stay in its own CT).
 */
export const DEPLOYMENT_RECORD = '/root/.pve-vllm-deployment.json';

/** This workflow run: what ties a "before" saved on the host to the run that saved it (undos restore only their own). */
export function thisRun(): string {
  return Context.current().info.workflowExecution?.runId ?? '';
}

/** A "before" record as saved on the host: JSON tagged with this run. */
export function runRecord(fields: object): string {
  return `${JSON.stringify({ run: thisRun(), ...fields })}\n`;
}

/**
 * A saved "before" record, if this run saved it: another run's record (an earlier run's, over and done with), an
 * untagged one of an older pve-vllm, or none at all give undefined, and an undo then restores nothing from it.
 */
export function thisRunsRecord<T>(text: string | undefined): T | undefined {
  const v = savedRecord<T & { run?: unknown }>(text);
  return v?.run === thisRun() ? v : undefined;
}

/** A saved JSON record whoever saved it; undefined when there is none or it does not parse. */
export function savedRecord<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return (JSON.parse(text) ?? undefined) as T | undefined;
  } catch {
    return undefined;
  }
}

/** A permanent problem the user must fix; the message carries the remedy. */
export function permanent(message: string, type: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}

/**
 * Wraps each activity: heartbeats twice per heartbeat timeout (so a killed worker is noticed within it) with the
 * latest progress, and turns permanent adapter errors into non-retryable failures. No heartbeat at the start:
 * the timeout already counts from the start, and most steps end within the first tick. Each heartbeat that
 * reaches the server is a write of the workflow's state: ticking every second instead of every 2.5 s (the 5 s
 * timeout) was ~13 % of the Temporal server's CPU at 50 concurrent deploys, for steps of 1 to 2.5 s.
 * reportProgress() still beats at once, so new progress shows without waiting for a tick.
 */
export function instrument<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    const ctx = Context.current();
    const timer = setInterval(() => heartbeat(progressOf(ctx)), heartbeatEveryMs(ctx.info.heartbeatTimeoutMs));
    try {
      return await fn(...args);
    } catch (err) {
      if (err instanceof AdapterError && !err.retryable) throw ApplicationFailure.nonRetryable(err.message, err.name);
      throw err;
    } finally {
      clearInterval(timer);
    }
  };
}

/** Half the activity's heartbeat timeout; every second when it has none (progress still reaches the UI). */
export function heartbeatEveryMs(heartbeatTimeoutMs: number | undefined): number {
  return heartbeatTimeoutMs && heartbeatTimeoutMs > 0 ? Math.max(1000, Math.floor(heartbeatTimeoutMs / 2)) : 1000;
}

const progress = new WeakMap<Context, string>();
function progressOf(ctx: Context): string | undefined {
  return progress.get(ctx);
}

/** Report a long activity's progress: shown in the Temporal UI's pending activity and by `--watch`. */
export function reportProgress(text: string): void {
  const ctx = Context.current();
  progress.set(ctx, text);
  heartbeat(text);
}
