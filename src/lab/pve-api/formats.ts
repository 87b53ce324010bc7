/**
 * Named parameter formats of the PVE API (`format: 'pve-vmid'` etc.), with the error texts the real
 * verifiers die with (pve-common JSONSchema.pm, pve-access-control, pve-container, qemu-server). The
 * validator prefixes them with `invalid format - `, as check_prop does.
 *
 * A format is either a verifier (throws FormatError) or a property-string schema (a map of sub-keys).
 * Format names the lab does not know are accepted unchecked: the subset the deploy uses is covered, and a
 * false rejection would be worse than a missed one for names we never send.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { ParamSchema } from './schema-types';

/** Thrown by a verifier; `message` ends with `\n` like a Perl `die "...\n"`. */
export class FormatError extends Error {}

type Verifier = (value: string) => void;

function fail(msg: string): never {
  throw new FormatError(`${msg}\n`);
}

const CONFIGID = /^[a-z][a-z0-9_-]+$/i;
const DNS_LABEL = '([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)';
const DNS_NAME = new RegExp(`^(${DNS_LABEL}\\.)*${DNS_LABEL}$`);
const TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/i;
// pve-access-control Auth/Plugin.pm: user names allow no colon/slash; realms are config ids.
const USER_RE = '[^\\s:/]+';
const REALM_RE = '[A-Za-z][A-Za-z0-9.\\-_]+';
const TOKEN_SUBID_RE = '[A-Za-z][A-Za-z0-9.\\-_]+';
const USERID = new RegExp(`^(${USER_RE})@(${REALM_RE})$`);
const TOKENID = new RegExp(`^(${USER_RE})@(${REALM_RE})!(${TOKEN_SUBID_RE})$`);

function cidr(value: string, v6: boolean): boolean {
  const m = /^(.+)\/(\d+)$/.exec(value);
  if (!m) return false;
  const bits = Number(m[2]);
  return v6 ? isIPv6(m[1] ?? '') && bits > 7 && bits <= 128 : isIPv4(m[1] ?? '') && bits > 7 && bits <= 32;
}

function parseId(value: string, type: string): void {
  if (value.length < 2) fail(`${type} ID '${value}' cannot be shorter than 2 characters`);
  if (!/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(value)) fail(`${type} ID '${value}' contains illegal characters`);
}

const VERIFIERS: Record<string, Verifier> = {
  'pve-vmid': (v) => { if (!/^[1-9][0-9]{2,8}$/.test(v)) fail('value does not look like a valid VM ID'); },
  'pve-node': (v) => {
    if (!/^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/.test(v)) fail('value does not look like a valid node name');
  },
  'pve-configid': (v) => { if (!CONFIGID.test(v)) fail(`invalid configuration ID '${v}'`); },
  'pve-storage-id': (v) => parseId(v, 'storage'),
  'pve-bridge-id': (v) => { if (!/^[-_.\w\d]+$/.test(v)) fail(`invalid bridge ID '${v}'`); },
  'mac-addr': (v) => {
    if (!/^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i.test(v)) fail('value does not look like a valid unicast MAC address');
  },
  ipv4: (v) => { if (!isIPv4(v)) fail('value does not look like a valid IPv4 address'); },
  ipv6: (v) => { if (!isIPv6(v)) fail('value does not look like a valid IPv6 address'); },
  ip: (v) => { if (!isIPv4(v) && !isIPv6(v)) fail('value does not look like a valid IP address'); },
  CIDRv4: (v) => { if (!cidr(v, false)) fail('value does not look like a valid IPv4 CIDR network'); },
  CIDRv6: (v) => { if (!cidr(v, true)) fail('value does not look like a valid IPv6 CIDR network'); },
  CIDR: (v) => { if (!cidr(v, false) && !cidr(v, true)) fail('value does not look like a valid CIDR network'); },
  'pve-ipv4-config': (v) => {
    if (!/^(?:dhcp|manual)$/.test(v) && !cidr(v, false)) fail('value does not look like a valid ipv4 network configuration');
  },
  'pve-ipv6-config': (v) => {
    if (!/^(?:auto|dhcp|manual)$/.test(v) && !cidr(v, true)) fail('value does not look like a valid ipv6 network configuration');
  },
  'dns-name': (v) => { if (!DNS_NAME.test(v)) fail('value does not look like a valid DNS name'); },
  address: (v) => { if (!isIPv4(v) && !isIPv6(v) && !DNS_NAME.test(v)) fail(`value does not look like a valid address: ${v}`); },
  'disk-size': (v) => {
    if (!/^(\d+(\.\d+)?)([KMGT](?:iB)?)?$/.test(v)) fail(`value does not look like a valid disk size: ${v}`);
  },
  'pve-tag': (v) => { if (!TAG.test(v)) fail('invalid characters in tag'); },
  'pve-userid': (v) => {
    if (v.length < 3) fail(`user name '${v}' is too short`);
    if (v.length > 64) fail(`user name '${v}' is too long (${v.length} > 64)`);
    if (!USERID.test(v)) fail(`value '${v}' does not look like a valid user name`);
  },
  'pve-tokenid': (v) => { if (!TOKENID.test(v)) fail(`value '${v}' does not look like a valid token ID`); },
  'pve-realm': (v) => { if (!new RegExp(`^${REALM_RE}$`).test(v)) fail(`value '${v}' does not look like a valid realm`); },
  'pve-lxc-dev-string': (v) => { if (/\/\.\.?(?:\/|$)/.test(v) || !v.startsWith('/dev/')) fail(`${v} is not a valid device path`); },
  'pve-lxc-mp-string': (v) => {
    if (/\/\.\.?\//.test(v) || /\/\.\.?$/.test(v) || v.startsWith('../')) fail(`${v} contains illegal character sequences`);
  },
  'pve-volume-id': (v) => { if (!/^([^:\s]+):(.+)$/.test(v)) fail(`unable to parse volume ID '${v}'`); },
  urlencoded: (v) => { if (!/^[-%a-zA-Z0-9_.!~*'()]*$/.test(v)) fail(`invalid urlencoded string: ${v}`); },
  'pve-startup-order': (v) => {
    for (const part of v.split(',')) {
      if (!/^(order=\d+|up=\d+|down=\d+|\d+)$/.test(part)) fail('unable to parse startup options');
    }
  },
};

const PCI_ID = '(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\\.[a-f0-9])?';
const HEX_ID = { type: 'string', optional: 1, pattern: '0x[0-9a-fA-F]{4}' } as const;

/** Hash formats the schema dump only names (qemu-server registers them in Perl). */
export const HASH_FORMATS: Record<string, Record<string, ParamSchema>> = {
  'pve-qm-hostpci': {
    host: { type: 'string', optional: 1, default_key: 1, pattern: `${PCI_ID}(;${PCI_ID})*` },
    mapping: { type: 'string', optional: 1, format: 'pve-configid' },
    rombar: { type: 'boolean', optional: 1 },
    romfile: { type: 'string', optional: 1, pattern: '[^,;]+' },
    pcie: { type: 'boolean', optional: 1 },
    'x-vga': { type: 'boolean', optional: 1 },
    'legacy-igd': { type: 'boolean', optional: 1 },
    mdev: { type: 'string', optional: 1, pattern: '[^/.:]+' },
    'vendor-id': HEX_ID,
    'device-id': HEX_ID,
    'sub-vendor-id': HEX_ID,
    'sub-device-id': HEX_ID,
    driver: { type: 'string', optional: 1, enum: ['vfio', 'keep'] },
  },
};

export type ResolvedFormat =
  | { kind: 'verify'; verify: Verifier }
  | { kind: 'list'; verify: Verifier }
  | { kind: 'opt'; verify: Verifier }
  | { kind: 'hash'; schema: Record<string, ParamSchema> }
  | { kind: 'unknown' };

/** check_format's name handling: `NAME`, `NAME-list` (split_list, each verified), `NAME-opt` (empty allowed). */
export function resolveFormat(name: string): ResolvedFormat {
  const hash = HASH_FORMATS[name];
  if (hash) return { kind: 'hash', schema: hash };
  const direct = VERIFIERS[name];
  if (direct) return { kind: 'verify', verify: direct };
  const m = /^(.*?)-(list|opt)$/.exec(name);
  const base = m ? VERIFIERS[m[1] ?? ''] : undefined;
  if (m && base) return { kind: m[2] === 'list' ? 'list' : 'opt', verify: base };
  return { kind: 'unknown' };
}

/** pve-common ParseUtils::split_list: NUL-separated, else commas/semicolons/whitespace. */
export function splitList(text: string): string[] {
  if (text.includes('\0')) return text.split('\0');
  return text.replace(/[,;]/g, ' ').trim().split(/\s+/).filter((s) => s !== '');
}
