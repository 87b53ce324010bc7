/**
 * Turns zod issues and cross-field issues into one ConfigProblem each: the field path, the value given (never a
 * secret), what is allowed, and why. formatProblems prints exactly one line per problem.
 */
import type { z } from 'zod';
import type { CrossIssue } from './cross';
import { valueAt } from './cross';
import { allowedText } from './fields';
import { SECRET_KEY_RE, SECRET_PATHS } from './secrets';

export interface ConfigProblem {
  /** Dotted field path, e.g. guests.vllm.id (list items as [n]); for file-level problems the file name. */
  path: string;
  /** JSON of the value given; secrets and secret-like values are replaced by a description. */
  given: string;
  allowed: string;
  message: string;
}

type Path = readonly PropertyKey[];
type Issue = z.core.$ZodIssue;
type AnySchema = z.core.$ZodType;

export function pathText(path: Path): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(top level)';
}

// ---------------------------------------------------------------- what the user gave

const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
// Shapes of the secrets this tool handles (HF tokens, OpenAI-style keys, private keys, PVE token headers), in case one
// is pasted into an ordinary field.
const SECRET_VALUE_RE = /hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{16,}|PRIVATE KEY-----|PVEAPIToken=/;
const SAFE_REF_VALUE = /^[A-Za-z0-9_.~/+@-]{1,200}$/;

function isSecretPath(path: Path): boolean {
  const dotted = path.filter((k) => typeof k === 'string').join('.');
  if (SECRET_PATHS.some((p) => dotted === p || dotted.startsWith(`${p}.`))) return true;
  return path.some((k) => typeof k === 'string' && SECRET_KEY_RE.test(k));
}

function describeShape(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value);
    return keys.length ? `an object with keys ${keys.join(', ')}` : 'an empty object';
  }
  return typeof value;
}

/** The value at a path, as the user wrote it, safe to print. */
export function givenText(value: unknown, path: Path): string {
  if (value === undefined) return 'nothing (the field is missing)';
  if (value === null) return 'null (an empty value)';
  if (isSecretPath(path)) {
    // A well-formed reference names a variable or file, which is fine to echo; anything else may be the secret.
    if (typeof value === 'object' && !Array.isArray(value)) {
      const entries = Object.entries(value as Record<string, unknown>);
      const isRef = entries.length > 0 && entries.every(([k, v]) => (k === 'env' || k === 'file') && typeof v === 'string' && SAFE_REF_VALUE.test(v) && !UUID_RE.test(v));
      if (isRef) return JSON.stringify(value);
    }
    // Not even the keys: a secret pasted as a key name is still a secret.
    const shape = Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : `an inline ${typeof value}`;
    return `(hidden: ${shape} where a secret belongs)`;
  }
  if (typeof value === 'object') return describeShape(value);
  if (typeof value === 'string' && (UUID_RE.test(value) || SECRET_VALUE_RE.test(value))) return '(hidden: a string that looks like a secret)';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value); // JSON would say null
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 100 ? `${json.slice(0, 97)}…"` : json;
}

// ---------------------------------------------------------------- what is allowed

function def(schema: AnySchema): Record<string, unknown> & { type: string } {
  return schema._zod.def as unknown as Record<string, unknown> & { type: string };
}

/** The schemas met at `path` (wrappers first), walking through optional/default/pipe/union layers. */
function schemasAt(root: AnySchema, path: Path): AnySchema[] {
  let layer: AnySchema[] = [root];
  for (const key of [...path, undefined]) {
    const seen: AnySchema[] = [];
    const next: AnySchema[] = [];
    const queue = [...layer];
    while (queue.length) {
      const s = queue.shift() as AnySchema;
      seen.push(s);
      const d = def(s);
      if (['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional'].includes(d.type)) queue.push(d.innerType as AnySchema);
      else if (d.type === 'pipe') queue.push(d.in as AnySchema, d.out as AnySchema);
      else if (d.type === 'union') queue.push(...(d.options as AnySchema[]));
      else if (key !== undefined && d.type === 'object') {
        const shape = d.shape as Record<string, AnySchema>;
        const child = Object.hasOwn(shape, String(key)) ? shape[String(key)] : undefined;
        if (child) next.push(child);
      } else if (key !== undefined && d.type === 'array' && typeof key === 'number') next.push(d.element as AnySchema);
    }
    if (key === undefined) return seen;
    layer = next;
    if (!layer.length) return [];
  }
  return [];
}

export function allowedAt(root: AnySchema, path: Path): string | undefined {
  for (const s of schemasAt(root, path)) {
    const meta = allowedText.get(s as z.ZodType);
    if (meta) return meta.allowed;
  }
  return undefined;
}

export function knownKeysAt(root: AnySchema, path: Path): string[] {
  const keys = new Set<string>();
  for (const s of schemasAt(root, path)) {
    const d = def(s);
    if (d.type === 'object') Object.keys(d.shape as object).forEach((k) => keys.add(k));
  }
  return [...keys];
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

// ---------------------------------------------------------------- issues → problems

/** A union failed: report the branch the user evidently meant (no unknown keys, fewest issues). */
function flattenUnion(issue: Issue & { code: 'invalid_union' }): Issue[] | undefined {
  const branches = (issue.errors ?? []).filter((b) => b.length && !b.some((i) => i.code === 'unrecognized_keys'));
  if (!branches.length) return undefined;
  const best = branches.reduce((a, b) => (b.length < a.length ? b : a));
  return best.map((i) => ({ ...i, path: [...issue.path, ...i.path] }) as Issue);
}

// Characters that give a shell a second meaning; named in the message so the user sees what was refused.
// Spaces, '!' and '?' are left out: some fields legitimately hold them (key comments, token ids).
const SHELL_CHARS = /[;&|$`'"\\<>(){}\n\r\t\0]/g;

/** zod's own texts start like this; ours (set on the field) are kept as they are. */
const isZodDefault = (m: string): boolean => /^(Invalid|Too small|Too big|Unrecognized|Expected)/.test(m);

function builtinMessage(issue: Issue, value: unknown): string {
  if (value === undefined) return 'is required';
  if (issue.code === 'invalid_format' && typeof value === 'string') {
    const shell = [...new Set(value.match(SHELL_CHARS) ?? [])];
    if (shell.length) {
      return `contains ${shell.map((c) => JSON.stringify(c)).join(' ')}, which could change a shell command, so it is refused`;
    }
  }
  if (!isZodDefault(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      if (issue.expected === 'int') return 'must be a whole number';
      return `expected ${issue.expected}, got ${Array.isArray(value) ? 'a list' : value === null ? 'null' : typeof value}`;
    case 'too_small': return issue.inclusive === false ? `must be greater than ${String(issue.minimum)}` : `is below the minimum ${String(issue.minimum)}`;
    case 'too_big': return issue.inclusive === false ? `must be less than ${String(issue.maximum)}` : `is above the maximum ${String(issue.maximum)}`;
    case 'invalid_value': return `is not one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'not_multiple_of': return `must be a multiple of ${String(issue.divisor)}`;
    case 'invalid_format': return 'does not have the required form';
    case 'invalid_union': return 'matches none of the allowed forms';
    default: return issue.message;
  }
}

function customMessage(message: string, value: unknown, path: Path): string {
  if (typeof value !== 'string' || isSecretPath(path)) return message;
  const shell = [...new Set(value.match(SHELL_CHARS) ?? [])];
  return shell.length ? `${message}; it contains ${shell.map((c) => JSON.stringify(c)).join(' ')} (shell characters are refused)` : message;
}

function fallbackAllowed(root: AnySchema, issue: Issue): string {
  switch (issue.code) {
    case 'invalid_type': {
      const keys = issue.expected === 'object' ? knownKeysAt(root, issue.path) : [];
      if (keys.length) return `a section with the keys ${keys.join(', ')}`;
      return issue.expected === 'array' ? 'a list' : `a ${issue.expected}`;
    }
    case 'invalid_value': return issue.values.map((v) => JSON.stringify(v)).join(', ');
    case 'too_small': return `at least ${String(issue.minimum)}`;
    case 'too_big': return `at most ${String(issue.maximum)}`;
    default: return 'see docs/contracts.md (Deploy config)';
  }
}

export function issuesToProblems(root: AnySchema, raw: unknown, issues: readonly Issue[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'invalid_union') {
      const flat = flattenUnion(issue);
      if (flat) {
        out.push(...issuesToProblems(root, raw, flat));
        continue;
      }
    }
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(root, issue.path);
      for (const key of issue.keys) {
        const near = known.filter((k) => editDistance(k, key) <= 2);
        // A token pasted on a line of its own becomes a key; it is hidden like any other secret.
        const shown = UUID_RE.test(key) || key.length > 64 ? '(hidden key)' : key;
        out.push({
          path: pathText([...issue.path, shown]),
          given: shown === key ? `the unknown key ${JSON.stringify(key)}` : 'a key that looks like a secret',
          allowed: known.length ? `only the keys ${known.join(', ')}` : 'no keys here',
          message: near.length ? `unknown key; did you mean ${near.join(' or ')}?` : 'unknown key (a misspelt setting would be silently ignored, so it is refused)',
        });
      }
      continue;
    }
    const value = valueAt(raw, issue.path as (string | number)[]);
    const params = issue.code === 'custom' ? (issue.params as { allowed?: string } | undefined) : undefined;
    out.push({
      path: pathText(issue.path),
      given: givenText(value, issue.path),
      allowed: params?.allowed ?? allowedAt(root, issue.path) ?? fallbackAllowed(root, issue),
      message: issue.code === 'custom' ? customMessage(issue.message, value, issue.path) : builtinMessage(issue, value),
    });
  }
  return out;
}

export function crossToProblems(raw: unknown, issues: readonly CrossIssue[]): ConfigProblem[] {
  return issues.map((i) => ({
    path: pathText(i.path),
    given: givenText(valueAt(raw, i.path), i.path),
    allowed: i.allowed,
    message: i.message,
  }));
}

// Control characters (C0, DEL, C1 incl. the 8-bit CSI) would let a value in the file drive the user's terminal.
const oneLine = (s: string): string => s.replace(/[\r\n\u2028\u2029]+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

/** One line per problem: `config error: <path>: got <given>; allowed: <allowed> — <message>`. */
export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems
    .map((p) => oneLine(`config error: ${p.path}: got ${p.given}; allowed: ${p.allowed}${p.message ? ` — ${p.message}` : ''}`))
    .join('\n');
}
