// Finds (or builds) a Temporal CLI binary to run the dev server with.
// These machines cannot reach the CDN the SDK downloads from, so the SDK download is the last resort.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

export const TEMPORAL_CLI_VERSION = 'v1.5.1'; // newest tag without a go.mod `replace`, so `go install` works
const GO_PACKAGE = `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`;

export type CliSource = 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' | 'go install' | 'sdk download';

export interface FoundCli {
  /** absent only for 'sdk download': the SDK fetches the binary itself */
  path?: string;
  source: CliSource;
  /** what was tried, in order, for messages */
  tried: string[];
  buildSeconds?: number;
}

export class TemporalCliNotFoundError extends Error {
  constructor(readonly tried: string[]) {
    super(
      'No Temporal server could be had. Tried, in order:\n' +
        tried.map((t) => `  - ${t}`).join('\n') +
        '\nRemedy: set TEMPORAL_CLI_PATH to a temporal CLI binary, put `temporal` on PATH, or install Go and run\n' +
        `  GOTOOLCHAIN=local CGO_ENABLED=0 go install ${GO_PACKAGE}`,
    );
    this.name = 'TemporalCliNotFoundError';
  }
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'pve-vllm', `temporal-${TEMPORAL_CLI_VERSION}`);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export interface FindOptions {
  env?: NodeJS.ProcessEnv;
  /** build with Go when nothing else is found (default true) */
  allowBuild?: boolean;
  /** fall back to the SDK's own download (default: true unless CI=true) */
  allowDownload?: boolean;
  log?: (line: string) => void;
}

/** TEMPORAL_CLI_PATH, then `temporal` on PATH, then the cache, then a Go build, then the SDK download. */
export function findTemporalCli(opts: FindOptions = {}): FoundCli {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => undefined);
  const tried: string[] = [];

  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit !== undefined && explicit !== '') {
    if (isExecutable(explicit)) return { path: explicit, source: 'TEMPORAL_CLI_PATH', tried };
    // An explicit choice that is wrong is an error, not something to silently work around.
    tried.push(`TEMPORAL_CLI_PATH=${explicit}: not an executable file`);
    throw new TemporalCliNotFoundError(tried);
  }
  tried.push('TEMPORAL_CLI_PATH: not set');

  const fromPath = onPath('temporal', env);
  if (fromPath) return { path: fromPath, source: 'PATH', tried };
  tried.push('`temporal` on PATH: not found');

  const cached = join(cacheDir(env), 'temporal');
  if (isExecutable(cached)) return { path: cached, source: 'cache', tried };
  tried.push(`cache ${cached}: not present`);

  if (opts.allowBuild !== false) {
    const go = onPath('go', env);
    if (go) {
      mkdirSync(cacheDir(env), { recursive: true });
      log(`building the Temporal CLI ${TEMPORAL_CLI_VERSION} with ${go} (first run only; a few minutes)…`);
      const started = Date.now();
      const res = spawnSync(go, ['install', GO_PACKAGE], {
        env: { ...env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0', GOBIN: cacheDir(env), GOFLAGS: '-modcacherw' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      const buildSeconds = (Date.now() - started) / 1000;
      if (res.status === 0 && isExecutable(cached)) {
        log(`built ${cached} in ${buildSeconds.toFixed(0)} s`);
        return { path: cached, source: 'go install', tried, buildSeconds };
      }
      tried.push(`go install ${GO_PACKAGE}: failed (exit ${res.status ?? res.signal})`);
    } else {
      tried.push('go install: `go` not on PATH');
    }
  }

  const allowDownload = opts.allowDownload ?? env.CI !== 'true';
  if (allowDownload) return { source: 'sdk download', tried };
  tried.push('SDK download: disabled under CI=true (these machines reach no CDN)');
  throw new TemporalCliNotFoundError(tried);
}
