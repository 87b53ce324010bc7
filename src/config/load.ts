/**
 * Reading the deploy config, and resolving its secret references. This module is the only reader of
 * process.env in src/ (besides the Temporal connection settings of the CLI); secrets are resolved only inside
 * activities, so they never enter workflow inputs or history.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { crossCheck } from './cross';
import { lookupModel } from '../sizing/catalog';
import { crossToProblems, issuesToProblems, type ConfigProblem } from './problems';
import { deployConfigSchema, type DeployConfig } from './schema';
import type { SecretRef } from './secrets';

export type { ConfigProblem } from './problems';
export { formatProblems } from './problems';

export interface ConfigOverrides {
  /** `--model ID`: replaces model.id. */
  model?: string;
  /** `--max-model-len N`: replaces model.maxModelLen. */
  maxModelLen?: number;
}

export type LoadResult =
  | {
      ok: true;
      config: DeployConfig;
      /** absolute directory of the config file: relative { file } refs start here */
      configDir: string;
      /** what the overrides changed besides the fields they name, for the CLI to print */
      notes: string[];
    }
  | { ok: false; problems: ConfigProblem[] };

/** Validate an already-parsed document (also used by tests and by the lab's own config check). */
export function validateConfig(raw: unknown): { ok: true; config: DeployConfig } | { ok: false; problems: ConfigProblem[] } {
  const parsed = deployConfigSchema.safeParse(raw);
  const problems = [
    ...(parsed.success ? [] : issuesToProblems(deployConfigSchema, raw, parsed.error.issues)),
    ...crossToProblems(raw, crossCheck(raw)),
  ];
  if (problems.length || !parsed.success) return { ok: false, problems: dedupe(problems) };
  return { ok: true, config: parsed.data };
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function applyOverrides(raw: unknown, overrides: ConfigOverrides, notes: string[]): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const doc = raw as Record<string, unknown>;
  const model: Record<string, unknown> = typeof doc.model === 'object' && doc.model !== null && !Array.isArray(doc.model) ? { ...(doc.model as object) } : {};
  // The config's context was chosen for the config's model. Switching with --model alone keeps it as a ceiling,
  // lowered to the new model's native context: vLLM refuses a longer one, and phi-2 (2048) is not Mistral (32768).
  const configured = model.maxModelLen;
  if (overrides.model !== undefined && overrides.maxModelLen === undefined && overrides.model !== model.id && typeof configured === 'number') {
    const native = lookupModel(overrides.model)?.nativeContext;
    if (native !== undefined && configured > native) {
      model.maxModelLen = native;
      notes.push(`--model ${overrides.model}: model.maxModelLen ${configured} is above its native context; using ${native} (pass --max-model-len to choose)`);
    }
  }
  if (overrides.model !== undefined) model.id = overrides.model;
  if (overrides.maxModelLen !== undefined) model.maxModelLen = overrides.maxModelLen;
  return { ...doc, model };
}

function fileProblem(file: string, allowed: string, message: string): ConfigProblem {
  return { path: '--config', given: JSON.stringify(file), allowed, message };
}

export function loadConfig(file: string, overrides: ConfigOverrides = {}): LoadResult {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? 'error'})`;
    return { ok: false, problems: [fileProblem(file, 'a readable YAML deploy config file (see examples/seed-lab.yaml)', why)] };
  }

  // uniqueKeys: a key written twice would otherwise let the second silently win. Tags (!foo, !!binary, !!set) are
  // not resolved and are refused below: a value must mean what it reads as.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, resolveKnownTags: false });
  const yamlProblems = [...doc.errors, ...doc.warnings];
  if (yamlProblems.length) {
    return {
      ok: false,
      problems: yamlProblems.map((e) => {
        const pos = e.linePos?.[0];
        const isTag = e.code === 'TAG_RESOLVE_FAILED';
        // The first line of the parser's message only: the rest quotes the source line, which may hold a secret.
        const what = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
        return {
          path: pos ? `${file}:${pos.line}:${pos.col}` : file,
          given: isTag ? `a YAML tag (${e.code})` : `a YAML syntax error (${e.code})`,
          allowed: isTag
            ? 'plain YAML values without tags such as !foo or !!binary (quote a value that starts with !)'
            : 'well-formed YAML: consistent indentation, "key: value" pairs, balanced quotes and brackets',
          message: pos ? `line ${pos.line}, column ${pos.col}: ${what}` : what,
        };
      }),
    };
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // Alias bombs and the like: refuse rather than expand.
    return { ok: false, problems: [fileProblem(file, 'plain YAML without excessive aliases', (err as Error).message.split('\n')[0])] };
  }

  const notes: string[] = [];
  const result = validateConfig(applyOverrides(raw, overrides, notes));
  if (!result.ok) {
    // A Map, not an object literal: problem paths are user-written keys (`__proto__`, `constructor`).
    const flagFor = new Map<string, string>();
    if (overrides.model !== undefined) flagFor.set('model.id', '--model');
    if (overrides.maxModelLen !== undefined) flagFor.set('model.maxModelLen', '--max-model-len');
    return {
      ok: false,
      problems: result.problems.map((p) => {
        const flag = flagFor.get(p.path);
        return flag ? { ...p, message: `(from ${flag}) ${p.message}` } : p;
      }),
    };
  }
  return { ok: true, config: result.config, configDir: dirname(path), notes };
}

// ---------------------------------------------------------------- secrets

/** A secret reference that cannot be resolved. Permanent until the operator fixes the environment or file. */
export class SecretUnavailableError extends Error {
  override name = 'SecretUnavailableError';
}

function describeRef(ref: SecretRef): string {
  return 'env' in ref ? `{ env: ${ref.env} }` : `{ file: ${ref.file} }`;
}

/** Where a { file } reference points: `~/` is the worker user's home, relative paths start at the config's directory. */
export function secretFilePath(file: string, configDir: string): string {
  if (file === '~' || file.startsWith('~/')) return resolve(process.env.HOME || homedir(), file.slice(2));
  return isAbsolute(file) ? file : resolve(configDir, file);
}

/**
 * The secret's value. Call only inside activities. Errors name the reference, never the value.
 * A file's trailing newline is dropped (editors add one; a token or password never ends with it).
 */
export function resolveSecret(ref: SecretRef, configDir: string): string {
  if (typeof ref !== 'object' || ref === null) throw new SecretUnavailableError('secret reference is missing: expected { env: NAME } or { file: PATH }');
  if ('env' in ref && typeof ref.env === 'string') {
    const value = process.env[ref.env];
    if (value === undefined || value === '') {
      throw new SecretUnavailableError(`secret ${describeRef(ref)} is not set in this process's environment: export ${ref.env} before starting the worker (and, for plan --live, in the shell that runs it)`);
    }
    return value;
  }
  if ('file' in ref && typeof ref.file === 'string') {
    const path = secretFilePath(ref.file, configDir);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new SecretUnavailableError(`secret ${describeRef(ref)} cannot be read from ${path} (${code}): check the path and that the user running the worker (or plan --live) may read it`);
    }
    const value = text.replace(/\r?\n$/, '');
    if (value === '') throw new SecretUnavailableError(`secret ${describeRef(ref)} is empty (${path})`);
    return value;
  }
  throw new SecretUnavailableError('secret reference must be { env: NAME } or { file: PATH }');
}
