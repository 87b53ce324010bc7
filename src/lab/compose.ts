/** docker compose files: locate, interpolate (`${VAR}`, `${VAR:-default}`, `.env`) and reduce to what the lab runs. */
import { parse as parseYaml } from 'yaml';
import type { Ctx } from './cmd-util';
import { readText } from './cmd-util';

export interface ComposeService {
  name: string;
  image: string;
  command: string[];
  environment: Record<string, string>;
  ports: Array<{ host: number; container: number }>;
  gpu: boolean;
  runtime?: string;
  containerName?: string;
  restart: string;
}

export interface ComposeProject {
  name: string;
  dir: string;
  file: string;
  services: ComposeService[];
}

const FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

function interpolate(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, a?: string, def?: string, b?: string) => {
    if (m === '$$') return '$';
    const name = a ?? b ?? '';
    const v = vars[name];
    return v !== undefined && v !== '' ? v : def ?? '';
  });
}

function deepInterpolate(v: unknown, vars: Record<string, string>): unknown {
  if (typeof v === 'string') return interpolate(v, vars);
  if (Array.isArray(v)) return v.map((x) => deepInterpolate(x, vars));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deepInterpolate(x, vars)]));
  return v;
}

/** Split a command string the way compose does (shell-like words, quotes respected). */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] ?? m[2] ?? m[3] ?? '');
  return out;
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trim().startsWith('#')) continue;
    out[m[1] ?? ''] = (m[2] ?? '').replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return out;
}

/** Load the project for `docker compose [-f file] [-p name] [--project-directory dir]`; a string = compose's error text. */
export async function loadCompose(ctx: Ctx, opts: { file?: string; dir?: string; project?: string }): Promise<ComposeProject | string> {
  let file: string | undefined;
  if (opts.file) {
    file = ctx.fs.resolvePath(ctx.cwd, opts.file);
    if (!(await ctx.fs.exists(file))) return `open ${file}: no such file or directory`;
  } else {
    const dir = ctx.fs.resolvePath(ctx.cwd, opts.dir ?? '.');
    for (const f of FILES) if (await ctx.fs.exists(`${dir}/${f}`)) { file = `${dir}/${f}`; break; }
    if (!file) return 'no configuration file provided: not found';
  }
  const dir = opts.dir ? ctx.fs.resolvePath(ctx.cwd, opts.dir) : file.replace(/\/[^/]*$/, '') || '/';
  const envText = (await readText(ctx, `${dir}/.env`)) ?? '';
  const vars = { ...parseEnvFile(envText), ...Object.fromEntries(ctx.env) };
  let doc: unknown;
  try {
    doc = parseYaml((await readText(ctx, file)) ?? '');
  } catch (e) {
    return `yaml: ${(e as Error).message.split('\n')[0] ?? 'invalid'}`;
  }
  const root = deepInterpolate(doc, vars) as { name?: string; services?: Record<string, Record<string, unknown>> } | null;
  if (!root || typeof root !== 'object' || !root.services) return `${file}: services must be a mapping`;
  const name = (opts.project ?? root.name ?? dir.replace(/^.*\//, '')).toLowerCase().replace(/[^a-z0-9_-]/g, '');
  const services: ComposeService[] = [];
  for (const [svcName, svc] of Object.entries(root.services)) {
    if (typeof svc.image !== 'string') return `service "${svcName}" has neither an image nor a build context specified: invalid compose project`;
    const cmd = svc.command;
    const command = Array.isArray(cmd) ? cmd.map(String) : typeof cmd === 'string' ? splitWords(cmd) : [];
    const envRaw = svc.environment;
    const environment: Record<string, string> = {};
    // env_file entries first (relative to the project directory); `environment` overrides them.
    const envFiles = svc.env_file === undefined ? [] : Array.isArray(svc.env_file) ? svc.env_file : [svc.env_file];
    for (const ef of envFiles) {
      const rel = typeof ef === 'string' ? ef : String((ef as { path?: unknown }).path ?? '');
      const required = typeof ef === 'string' || (ef as { required?: unknown }).required !== false;
      const abs = ctx.fs.resolvePath(dir, rel);
      const text = await readText(ctx, abs);
      if (text === undefined) {
        if (required) return `env file ${abs} not found: stat ${abs}: no such file or directory`;
        continue;
      }
      Object.assign(environment, parseEnvFile(text));
    }
    if (Array.isArray(envRaw)) for (const e of envRaw.map(String)) { const i = e.indexOf('='); if (i > 0) environment[e.slice(0, i)] = e.slice(i + 1); }
    else if (envRaw && typeof envRaw === 'object') for (const [k, v] of Object.entries(envRaw)) environment[k] = v === null ? '' : String(v);
    const ports = (Array.isArray(svc.ports) ? svc.ports : []).map((p) => {
      const parts = String(typeof p === 'object' && p ? `${(p as { published?: unknown }).published}:${(p as { target?: unknown }).target}` : p).replace(/\/tcp$/, '').split(':');
      const container = Number(parts[parts.length - 1]);
      const hostPort = parts.length >= 2 ? Number(parts[parts.length - 2]) : container;
      return { host: hostPort, container };
    });
    const devices = ((svc.deploy as { resources?: { reservations?: { devices?: Array<{ driver?: string; capabilities?: string[] }> } } } | undefined)?.resources?.reservations?.devices) ?? [];
    const gpu = devices.some((d) => (d.capabilities ?? []).includes('gpu')) || svc.runtime === 'nvidia';
    const s: ComposeService = { name: svcName, image: svc.image, command, environment, ports, gpu, restart: String(svc.restart ?? 'no') };
    if (typeof svc.runtime === 'string') s.runtime = svc.runtime;
    if (typeof svc.container_name === 'string') s.containerName = svc.container_name;
    services.push(s);
  }
  return { name, dir, file, services };
}
