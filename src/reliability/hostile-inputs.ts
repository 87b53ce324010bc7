// Hostile strings for every config field that reaches a shell on the host or in a container, and what
// validation makes of them. Pure (no lab, no Temporal): the deploy part is in hostile.ts.
import { validateConfig, type ConfigProblem } from '../config/load';

/** Dotted YAML paths of the config fields whose values end up in a command line (argv or script). */
export const SHELL_FIELDS = [
  'proxmox.host',
  'proxmox.node',
  'proxmox.ssh.user',
  'admin.user',
  'admin.publicKey',
  'gpu.pciAddress',
  'gpu.model',
  'guests.vllm.hostname',
  'guests.vllm.storage',
  'guests.vllm.template',
  'guests.vllm.network.bridge',
  'guests.openwebui.url',
  'model.id',
  'repo.url',
  'repo.ref',
  'repo.path',
  'vllm.image',
  'backup.storage',
] as const;

export const CANARY = '/tmp/pwned';

/** Each would run a second command (or an option) if it reached a shell unquoted. */
export const HOSTILE_VALUES: readonly string[] = [
  `x; touch ${CANARY}`,
  'x; rm -rf /',
  `$(touch ${CANARY})`,
  '$(id)',
  `\`touch ${CANARY}\``,
  'x && id',
  'x || id',
  'x | id',
  `x\ntouch ${CANARY}`,
  "x'; id; '",
  'x"; id; "',
  'x y',
  'x*',
  '?',
  'x > /etc/passwd',
  'x < /etc/shadow',
  '${IFS}id',
  '-oProxyCommand=id',
  '--help',
  'x\\',
  'x#y',
  'x\ty',
  'x\u0000y',
  'x\u001b[2Jy',
];

/** A few plausible values with characters that are legal but need quoting, to see them arrive intact. */
export const LEGAL_ODDITIES: ReadonlyArray<{ field: string; value: string }> = [
  { field: 'repo.path', value: '/opt/vllm.src_v0.6+cu124' },
  { field: 'repo.ref', value: 'v0.6.4' },
];

export interface ValidationVerdict {
  field: string;
  value: string;
  /** rejected with a problem whose path names the field */
  rejected: boolean;
  /** rejected, but no problem names the field (a confusing message) */
  rejectedElsewhere: boolean;
  accepted: boolean;
  problems: ConfigProblem[];
}

export function setPath(raw: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let obj = raw;
  for (const p of parts.slice(0, -1)) {
    const next = obj[p];
    if (typeof next !== 'object' || next === null) obj[p] = {};
    obj = obj[p] as Record<string, unknown>;
  }
  obj[parts[parts.length - 1] as string] = value;
}

export function tryHostile(base: Record<string, unknown>, field: string, value: string): ValidationVerdict {
  const raw = structuredClone(base);
  setPath(raw, field, value);
  const r = validateConfig(raw);
  if (r.ok) return { field, value, rejected: false, rejectedElsewhere: false, accepted: true, problems: [] };
  const names = r.problems.some((p) => p.path === field || p.path.startsWith(`${field}.`) || p.path.startsWith(`${field}[`));
  return { field, value, rejected: names, rejectedElsewhere: !names, accepted: false, problems: r.problems };
}

/** Every (field, hostile value) pair through validateConfig. */
export function validationMatrix(base: Record<string, unknown>): ValidationVerdict[] {
  const out: ValidationVerdict[] = [];
  for (const field of SHELL_FIELDS) for (const value of HOSTILE_VALUES) out.push(tryHostile(base, field, value));
  return out;
}
