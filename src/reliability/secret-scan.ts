// What counts as a secret of a run, the forms it could leak in, and where it was found. Pure.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';

export interface Secret {
  name: string;
  value: string;
}

export interface Finding {
  secret: string;
  form: string;
  where: string;
  /** a few characters around the hit, with the secret itself masked */
  context: string;
}

/** Secrets referenced by a deploy config ({ file } read from disk, { env } from the environment), by YAML path. */
export function secretsOfConfig(configPath: string, env: NodeJS.ProcessEnv = process.env): Secret[] {
  const raw: unknown = parse(readFileSync(configPath, 'utf8'));
  const out: Secret[] = [];
  const walk = (node: unknown, path: string) => {
    if (typeof node !== 'object' || node === null) return;
    const o = node as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.file === 'string') {
      const f = o.file.startsWith('~/') ? resolve(homedir(), o.file.slice(2)) : isAbsolute(o.file) ? o.file : resolve(dirname(configPath), o.file);
      try {
        out.push({ name: path, value: readFileSync(f, 'utf8').trim() });
      } catch {
        /* unreadable: nothing that could leak from it */
      }
      return;
    }
    if (keys.length === 1 && typeof o.env === 'string') {
      const v = env[o.env];
      if (v) out.push({ name: path, value: v.trim() });
      return;
    }
    for (const k of keys) walk(o[k], path ? `${path}.${k}` : k);
  };
  walk(raw, '');
  return out;
}

/** The same value under several names counts once (the first name wins). Too-short values are dropped. */
export function uniqueSecrets(list: Secret[]): Secret[] {
  const seen = new Set<string>();
  return list.filter((s) => {
    if (s.value.length < 8 || seen.has(s.value)) return false;
    seen.add(s.value);
    return true;
  });
}

/**
 * The strings to look for: the value itself, its base64 and base64url (with and without padding), its JSON
 * escaping (a PEM's newlines become \n), and for a multi-line value (a private key PEM) every line of 16 or
 * more characters, since a log or a payload may carry just a part of it.
 */
export function needlesOf(s: Secret): Array<{ form: string; text: string }> {
  const b64 = Buffer.from(s.value, 'utf8').toString('base64');
  const forms: Array<{ form: string; text: string }> = [
    { form: 'plain', text: s.value },
    { form: 'json-escaped', text: JSON.stringify(s.value).slice(1, -1) },
    { form: 'base64', text: b64.replace(/=+$/, '') },
    { form: 'base64url', text: Buffer.from(s.value, 'utf8').toString('base64url') },
  ];
  const lines = s.value.split('\n').map((l) => l.trim());
  if (lines.length > 1) {
    lines.forEach((l, i) => {
      if (l.length >= 16 && !/^-----(BEGIN|END) /.test(l)) forms.push({ form: `line ${i + 1}`, text: l });
    });
  }
  const seen = new Set<string>();
  return forms.filter((f) => f.text.length >= 8 && !seen.has(f.text) && seen.add(f.text));
}

export function scanText(where: string, text: string, secrets: Secret[]): Finding[] {
  const out: Finding[] = [];
  for (const s of secrets) {
    for (const n of needlesOf(s)) {
      const i = text.indexOf(n.text);
      if (i < 0) continue;
      const context = `${text.slice(Math.max(0, i - 40), i)}<${s.name}>${text.slice(i + n.text.length, i + n.text.length + 40)}`.replace(/\s+/g, ' ');
      out.push({ secret: s.name, form: n.form, where, context });
      break; // one finding per secret and place is enough to act on
    }
  }
  return out;
}

/** Every string in a structure, with Uint8Arrays (history payloads) decoded as UTF-8. */
export function textsOf(node: unknown, out: string[] = [], depth = 0): string[] {
  if (depth > 64 || node === null || node === undefined) return out;
  if (typeof node === 'string') out.push(node);
  else if (node instanceof Uint8Array) out.push(Buffer.from(node).toString('utf8'));
  else if (Array.isArray(node)) for (const v of node) textsOf(v, out, depth + 1);
  else if (typeof node === 'object') for (const v of Object.values(node as Record<string, unknown>)) textsOf(v, out, depth + 1);
  return out;
}
