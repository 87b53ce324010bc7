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
      extraArgs: ui ? ['--ui-ip', '127.0.0.1'] : [],
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
