/** Small helpers shared by the lab's simulated commands. */
import type { ExecResult, ResolvedCommandContext } from 'just-bash';

export type Ctx = ResolvedCommandContext;
export type Result = ExecResult;

export const ok = (stdout = '', stderr = ''): Result => ({ stdout, stderr, exitCode: 0 });
export const fail = (stderr: string, exitCode = 1, stdout = ''): Result => ({ stdout, stderr, exitCode });

/** `bash: <cmd>: command not found` exit 127, as when a package is not installed. */
export const notFound = (cmd: string): Result => fail(`bash: ${cmd}: command not found\n`, 127);

export function currentUser(ctx: Ctx): string {
  return ctx.env.get('USER') ?? 'root';
}

export function isRoot(ctx: Ctx): boolean {
  return currentUser(ctx) === 'root';
}

/**
 * A command's stdin as bytes, the way just-bash hands it over: a latin1-shaped string, one char per byte. Forward
 * it as is (stdinKind 'bytes'); read it as text with stdinText, or UTF-8 arrives double-encoded.
 */
export function stdinBytes(ctx: Ctx): string {
  const s = ctx.stdin as unknown;
  if (typeof s === 'string') return s;
  if (s instanceof Uint8Array) return Buffer.from(s).toString('latin1');
  return s === undefined || s === null ? '' : String(s);
}

/** A command's stdin read as UTF-8 text. */
export function stdinText(ctx: Ctx): string {
  return Buffer.from(stdinBytes(ctx), 'latin1').toString('utf8');
}

/** POSIX single-quote an argv so a nested shell sees exactly these words. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export interface PveArgs {
  positional: string[];
  opts: Record<string, string>;
  extra: string[]; // after `--`
  unknown: string[];
}

/**
 * Getopt::Long as PVE configures it: `-opt value` and `--opt value` (and `--opt=value`); `--` ends options.
 * Options not in `known` are reported as unknown (the CLI then prints `Unknown option: x` + 400).
 */
export function parsePveArgs(args: string[], known: (name: string) => boolean): PveArgs {
  const res: PveArgs = { positional: [], opts: {}, extra: [], unknown: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') { res.extra = args.slice(i + 1); break; }
    const m = /^--?([A-Za-z][A-Za-z0-9_.-]*)(?:=(.*))?$/.exec(a);
    if (m) {
      const name = m[1] ?? '';
      if (!known(name)) { res.unknown.push(name); continue; }
      if (m[2] !== undefined) res.opts[name] = m[2];
      else { res.opts[name] = args[i + 1] ?? ''; i++; }
      continue;
    }
    res.positional.push(a);
  }
  return res;
}

/** Simple GNU-style flag parsing for non-PVE tools: returns flags (with values for `withValue`) and operands. */
export function parseFlags(args: string[], withValue: string[]): { flags: Record<string, string | true>; operands: string[] } {
  const flags: Record<string, string | true> = {};
  const operands: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') { operands.push(...args.slice(i + 1)); break; }
    const long = /^(--[A-Za-z0-9-]+)(?:=(.*))?$/.exec(a);
    if (long) {
      const name = long[1] ?? '';
      if (long[2] !== undefined) flags[name] = long[2];
      else if (withValue.includes(name)) { flags[name] = args[i + 1] ?? ''; i++; }
      else flags[name] = true;
      continue;
    }
    if (/^-[A-Za-z]/.test(a)) {
      // bundled short flags: -sS, -fsSL, -o file, -ofile
      for (let j = 1; j < a.length; j++) {
        const f = `-${a[j]}`;
        if (withValue.includes(f)) {
          const rest = a.slice(j + 1);
          if (rest) flags[f] = rest;
          else { flags[f] = args[i + 1] ?? ''; i++; }
          break;
        }
        flags[f] = true;
      }
      continue;
    }
    operands.push(a);
  }
  return { flags, operands };
}

export async function readText(ctx: Ctx, path: string): Promise<string | undefined> {
  try {
    return await ctx.fs.readFile(ctx.fs.resolvePath(ctx.cwd, path));
  } catch {
    return undefined;
  }
}

/** Write a file the way a program's open(O_CREAT) does: false (nothing written) when its directory is missing. */
export async function writeInDir(ctx: Ctx, path: string, content: string): Promise<boolean> {
  const p = ctx.fs.resolvePath(ctx.cwd, path);
  const dir = await ctx.fs.stat(p.replace(/\/[^/]*$/, '') || '/').catch(() => undefined);
  if (!dir?.isDirectory) return false;
  await ctx.fs.writeFile(p, content);
  return true;
}

/** Write a file, making its directories first (what package installs and `git clone` do). */
export async function writeText(ctx: Ctx, path: string, content: string): Promise<void> {
  const p = ctx.fs.resolvePath(ctx.cwd, path);
  const dir = p.replace(/\/[^/]*$/, '') || '/';
  await ctx.fs.mkdir(dir, { recursive: true });
  await ctx.fs.writeFile(p, content);
}

export function pad(s: string | number, w: number, right = false): string {
  const t = String(s);
  return right ? t.padStart(w) : t.padEnd(w);
}
