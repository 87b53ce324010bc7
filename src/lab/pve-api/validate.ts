/**
 * Request parameter validation as pve-common's JSONSchema::validate does it, with its exact error texts:
 * unknown parameters, missing required ones, type checks (booleans are only `0`/`1` over HTTP), named
 * formats, property strings (`net0`, `features`, `rootfs`, `hostpci0`, ...), patterns, lengths, ranges, enums.
 *
 * The API dump collapses indexed options to `net[n]`; the real schema has `net0`..`netN`, so a key is
 * accepted as indexed only within PVE's limit for that family (e.g. `hostpci16` is unknown).
 */
import { FormatError, resolveFormat, splitList } from './formats';
import type { ParamSchema, ParametersSchema } from './schema-types';

export type ParamValue = string | string[];
export type Params = Record<string, ParamValue>;
export type Errors = Record<string, string>;

// MAX_* constants of pve-container / qemu-server for the indexed families we serve.
const INDEX_LIMITS: Record<string, number> = {
  net: 32, dev: 256, mp: 256, unused: 256, hostpci: 16, ide: 4, sata: 6, scsi: 31, virtio: 16, usb: 14,
  serial: 4, parallel: 3, numa: 8, ipconfig: 32, virtiofs: 10,
};

function addError(errors: Errors, path: string, msg: string): void {
  const key = path === '' ? '_root' : path;
  // PVE joins with a single-quoted '\n' (a literal backslash-n), kept for fidelity.
  errors[key] = errors[key] === undefined ? msg : `${errors[key]}\\n${msg}`;
}

const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);

function isInteger(v: string): boolean {
  return /^[+-]?\d+$/.test(v);
}

function isNumber(v: string): boolean {
  return /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/.test(v);
}

/** Perl regex text from the dump → JS: `(?^:...)` is Perl's "default flags" group. */
function perlPattern(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/\(\?\^[a-z]*:/g, '(?:')}$`);
}

function checkType(path: string, type: string | undefined, value: ParamValue, errors: Errors): boolean {
  if (!type || type === 'any') return true;
  if (Array.isArray(value)) {
    if (type === 'array') return true;
    addError(errors, path, `type check ('${type}') failed - got ARRAY`);
    return false;
  }
  if (type === 'array' || type === 'object') {
    addError(errors, path, `type check ('${type}') failed`);
    return false;
  }
  if (type === 'boolean' && value !== '0' && value !== '1') {
    addError(errors, path, `type check ('boolean') failed - got '${value}'`);
    return false;
  }
  if (type === 'integer' && !isInteger(value)) {
    addError(errors, path, `type check ('integer') failed - got '${value}'`);
    return false;
  }
  if (type === 'number' && !isNumber(value)) {
    addError(errors, path, `type check ('number') failed - got '${value}'`);
    return false;
  }
  return true;
}

function parseBoolean(v: string): string | undefined {
  if (/^(1|on|yes|true)$/i.test(v)) return '1';
  if (/^(0|off|no|false)$/i.test(v)) return '0';
  return undefined;
}

/**
 * parse_property_string: split `k=v,...`, map the default key, then check the parts as an object that
 * allows no additional keys. Throws FormatError with PVE's text (incl. the nested `path.key: msg` lines).
 */
export function parsePropertyString(
  format: Record<string, ParamSchema>,
  data: string,
  path: string,
): Record<string, string> {
  const res: Record<string, string> = {};
  let defaultKey: string | undefined;
  for (const part of data.split(',')) {
    if (/^\s*$/.test(part)) continue;
    const kv = /^([^=]+)=(.+)$/.exec(part);
    if (kv) {
      let key = kv[1] ?? '';
      let value = kv[2] ?? '';
      if (res[key] !== undefined) throw new FormatError(`duplicate key in comma-separated list property: ${key}\n`);
      let schema = format[key];
      if (schema?.alias) {
        key = schema.alias;
        schema = format[key];
        if (res[key] !== undefined) throw new FormatError(`key '${key}' is already defined (via alias)\n`);
      }
      if (!schema) throw new FormatError(`invalid key in comma-separated list property: ${key}\n`);
      if (schema.type === 'boolean') value = parseBoolean(value) ?? value;
      res[key] = value;
    } else if (!part.includes('=')) {
      if (defaultKey !== undefined) throw new FormatError(`duplicate key in comma-separated list property: ${defaultKey}\n`);
      const found = Object.keys(format).find((k) => format[k]?.default_key);
      if (found === undefined) throw new FormatError('value without key, but schema does not define a default key\n');
      defaultKey = found;
      if (res[found] !== undefined) throw new FormatError(`duplicate key in comma-separated list property: ${found}\n`);
      res[found] = format[found]?.type === 'boolean' ? parseBoolean(part) ?? part : part;
    } else {
      throw new FormatError('missing key in comma-separated list property\n');
    }
  }
  const errors: Errors = {};
  checkObject(path, format, res, 0, errors);
  if (Object.keys(errors).length > 0) {
    let msg = 'format error\n';
    for (const [k, v] of Object.entries(errors)) msg += `${k}: ${v}\n`;
    throw new FormatError(msg);
  }
  return res;
}

function checkFormat(format: string | Record<string, ParamSchema>, value: string, path: string): void {
  if (typeof format !== 'string') {
    parsePropertyString(format, value, path);
    return;
  }
  const resolved = resolveFormat(format);
  switch (resolved.kind) {
    case 'hash': parsePropertyString(resolved.schema, value, path); return;
    case 'verify': resolved.verify(value); return;
    case 'list': for (const item of splitList(value)) resolved.verify(item); return;
    case 'opt': if (value) resolved.verify(value); return;
    case 'unknown': return;
  }
}

function checkProp(value: ParamValue | undefined, schema: ParamSchema, path: string, errors: Errors): void {
  if (schema.alias) return;
  if (value === undefined) {
    if (!schema.optional) addError(errors, path, 'property is missing and it is not optional');
    return;
  }
  if (!checkType(path, schema.type, value, errors)) return;
  if (Array.isArray(value)) {
    if (schema.items) value.forEach((el, i) => checkProp(el, schema.items as ParamSchema, `${path}[${i}]`, errors));
    return;
  }
  if (schema.format !== undefined) {
    try {
      checkFormat(schema.format, value, path);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      addError(errors, path, `invalid format - ${err.message}`);
      return;
    }
  }
  if (schema.pattern !== undefined && !perlPattern(schema.pattern).test(value)) {
    addError(errors, path, 'value does not match the regex pattern');
    return;
  }
  if (schema.maxLength !== undefined && value.length > schema.maxLength) {
    addError(errors, path, `value may only be ${schema.maxLength} characters long`);
    return;
  }
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    addError(errors, path, `value must be at least ${schema.minLength} characters long`);
    return;
  }
  if (isNumber(value)) {
    if (schema.maximum !== undefined && Number(value) > schema.maximum) {
      addError(errors, path, `value must have a maximum value of ${schema.maximum}`);
      return;
    }
    if (schema.minimum !== undefined && Number(value) < schema.minimum) {
      addError(errors, path, `value must have a minimum value of ${schema.minimum}`);
      return;
    }
  }
  if (schema.enum && !schema.enum.includes(value)) {
    addError(errors, path, `value '${value}' does not have a value in the enumeration '${schema.enum.join(', ')}'`);
  }
}

/** The schema entry for a concrete key: direct, or via its indexed family (`net7` → `net[n]`). */
export function schemaFor(props: Record<string, ParamSchema>, key: string): ParamSchema | undefined {
  const direct = props[key];
  if (direct) return direct;
  const m = /^([a-z][a-z_-]*?)(\d+)$/.exec(key);
  if (!m) return undefined;
  const family = m[1] ?? '';
  const indexed = props[`${family}[n]`];
  if (!indexed) return undefined;
  const n = Number(m[2]);
  if (String(n) !== m[2] || n >= (INDEX_LIMITS[family] ?? 256)) return undefined;
  return indexed;
}

function checkObject(
  path: string,
  props: Record<string, ParamSchema>,
  value: Record<string, ParamValue>,
  additional: number | undefined,
  errors: Errors,
): void {
  for (const [key, schema] of Object.entries(props)) {
    if (key.endsWith('[n]')) continue; // indexed families are optional; present members are checked below
    checkProp(value[key], schema, join(path, key), errors);
  }
  for (const key of Object.keys(value)) {
    const schema = schemaFor(props, key);
    if (schema) {
      if (!props[key]) checkProp(value[key], schema, join(path, key), errors);
      if (schema.requires && value[schema.requires] === undefined) {
        addError(errors, join(path, schema.requires), `missing property required by '${join(path, key)}'`);
      }
      continue;
    }
    if (additional !== undefined && !additional) {
      addError(errors, join(path, key), 'property is not defined in schema and the schema does not allow additional properties');
    }
  }
}

/** Validate request parameters (path params merged in). Returns the errors map, or null when valid. */
export function validateParams(schema: ParametersSchema, params: Params): Errors | null {
  const errors: Errors = {};
  checkObject('', schema.properties ?? {}, params, schema.additionalProperties, errors);
  return Object.keys(errors).length > 0 ? errors : null;
}
