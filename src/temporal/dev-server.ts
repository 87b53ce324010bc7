// Starts a local Temporal dev server (with its Web UI) through @temporalio/testing, using a binary we found or built.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { cacheDir, findTemporalCli, FoundCli } from './cli-binary';

/**
 * The dev server prints its banner on stdout, which would mix with a command's --json output: run it
 * through a tiny wrapper that sends its stdout to stderr (the SDK spawns the path directly, so a script works).
 */
function stderrWrapper(binary: string): string {
  const dir = join(cacheDir(), 'wrappers');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `temporal-${Buffer.from(binary).toString('hex').slice(-24)}.sh`);
  writeFileSync(path, `#!/bin/sh\nexec '${binary.replace(/'/g, `'\\''`)}' "$@" 1>&2\n`);
  chmodSync(path, 0o755);
  return path;
}

/**
 * Server settings that decide a step's cost. The history service reads its transfer and timer queues at most
 * 20 times a second by default; a deploy is a chain of short steps, each needing a transfer task (dispatch the
 * activity, then the next workflow task), so after a burst of ~20 every step waited ~42 ms twice for the poll
 * limiter — measured: 87 ms per no-op activity, 17 ms with the limit raised. Eager activity dispatch hands an
 * activity straight back to the worker that scheduled it (~3 ms more off a step). docker-compose.temporal.yml
 * sets the same values in deploy/temporal/dynamicconfig/pve-vllm.yaml.
 */
export const DYNAMIC_CONFIG: Record<string, string> = {
  'history.transferProcessorMaxPollRPS': '1000',
  'history.timerProcessorMaxPollRPS': '1000',
  'system.enableActivityEagerExecution': 'true',
};

export function dynamicConfigArgs(): string[] {
  return Object.entries(DYNAMIC_CONFIG).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${value}`]);
}

export interface DevServer {
  env: TestWorkflowEnvironment;
  address: string;
  uiUrl?: string;
  cli: FoundCli;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  /** serve the Web UI on this port (0 = no UI) */
  uiPort?: number;
  port?: number;
  namespace?: string;
  dbFilename?: string;
  log?: (line: string) => void;
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const cli = findTemporalCli({ log: opts.log });
  const executable =
    cli.path !== undefined ? { type: 'existing-path' as const, path: stderrWrapper(cli.path) } : { type: 'cached-download' as const };
  const ui = opts.uiPort !== undefined && opts.uiPort > 0;
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable,
      ip: '127.0.0.1',
      port: opts.port,
      namespace: opts.namespace,
      dbFilename: opts.dbFilename,
      ui,
      uiPort: ui ? opts.uiPort : undefined,
      extraArgs: [...dynamicConfigArgs(), ...(ui ? ['--ui-ip', '127.0.0.1'] : [])],
    },
  });
  return {
    env,
    address: env.address,
    uiUrl: ui ? `http://127.0.0.1:${opts.uiPort}` : undefined,
    cli,
    stop: () => env.teardown(),
  };
}
