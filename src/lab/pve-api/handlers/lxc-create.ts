/**
 * Pieces of CT creation: storage checks, network normalization and the vzcreate worker's log (texts from
 * real task logs of an LVM-thin CT on PVE 8: lvcreate, mke2fs, tar extraction, SSH host key generation).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { LabHost } from '../../host';
import { dieError, paramError } from '../errors';
import subsetJson from '../schema-subset.json';
import type { SchemaSubset } from '../schema-types';
import type { TaskContext } from '../tasks';
import { schemaFor } from '../validate';

const SCHEMA = subsetJson as unknown as SchemaSubset;

/** PVE::LXC::Config->option_exists: a key of the CT config schema (not the API-only params). */
export function configOptionKeys(): (opt: string) => boolean {
  const props = SCHEMA['/nodes/{node}/lxc/{vmid}/config']?.PUT?.parameters.properties ?? {};
  const apiOnly = new Set(['node', 'vmid', 'delete', 'revert', 'digest']);
  return (opt) => !apiOnly.has(opt) && schemaFor(props, opt) !== undefined;
}

/** PVE::QemuServer::option_exists: a key of the VM config schema. */
export function vmOptionExists(): (opt: string) => boolean {
  const props = SCHEMA['/nodes/{node}/qemu/{vmid}/config']?.PUT?.parameters.properties ?? {};
  const apiOnly = new Set(['node', 'vmid', 'delete', 'revert', 'digest', 'skiplock', 'force', 'background_delay']);
  return (opt) => !apiOnly.has(opt) && schemaFor(props, opt) !== undefined;
}

/** storage_check_enabled + the content check create_vm does for container volumes. */
export function ensureStorage(host: LabHost, sid: string, content: 'rootdir' | 'vztmpl' | 'backup'): void {
  const st = host.state.storage.find((s) => s.storage === sid);
  if (!st) throw dieError(`storage '${sid}' does not exist`);
  if (!st.content.includes(content)) {
    if (content === 'rootdir') throw paramError({ storage: `storage '${sid}' does not support container directories` });
    throw dieError(`storage '${sid}' does not support content type '${content}'`);
  }
}

/** Proxmox' OUI BC:24:11 plus three random bytes, as PVE generates MAC addresses. */
function randomMac(): string {
  const b = randomBytes(3);
  return `BC:24:11:${[...b].map((x) => x.toString(16).toUpperCase().padStart(2, '0')).join(':')}`;
}

/**
 * print_lxc_network: `name` first, the other keys sorted; `hwaddr` generated (or kept from the old value)
 * and `type=veth` added when missing.
 */
export function normalizeNet(value: string, old?: string): string {
  const parts: Record<string, string> = {};
  for (const p of value.split(',')) {
    const eq = p.indexOf('=');
    if (eq > 0) parts[p.slice(0, eq)] = p.slice(eq + 1);
  }
  if (!parts.hwaddr) parts.hwaddr = /(?:^|,)hwaddr=([^,]+)/.exec(old ?? '')?.[1] ?? randomMac();
  if (!parts.type) parts.type = 'veth';
  const { name, ...rest } = parts;
  const ordered = Object.keys(rest).sort().map((k) => `${k}=${rest[k]}`);
  return [...(name !== undefined ? [`name=${name}`] : []), ...ordered].join(',');
}

function fingerprint(): string {
  return `SHA256:${randomBytes(32).toString('base64').replace(/=+$/, '')}`;
}

/** The vzcreate worker: allocate volumes, extract the template, generate host keys. Throws on a missing template. */
export async function createLog(
  host: LabHost,
  t: TaskContext,
  vmid: number,
  ostemplate: string,
  volumes: Array<{ sid: string; name: string; bytes: number }>,
): Promise<void> {
  for (const v of volumes) {
    await t.delay(600);
    const blocks = Math.floor(v.bytes / 4096);
    if (v.sid === 'local-lvm') t.log(`  Logical volume "${v.name}" created.`);
    t.log(`Creating filesystem with ${blocks} 4k blocks and ${Math.floor(blocks / 4)} inodes`);
    t.log(`Filesystem UUID: ${randomUUID()}`);
    t.log('Superblock backups stored on blocks: ');
    t.log('\t32768, 98304, 163840, 229376, 294912, 819200, 884736, 1605632, 2654208, ');
    t.log('\t4096000, 7962624, 11239424');
    const st = host.state.storage.find((s) => s.storage === v.sid);
    st?.items.push({ volid: `${v.sid}:${v.name}`, content: 'rootdir', format: 'raw', size: v.bytes, ctime: host.now(), vmid });
  }
  const [sid = '', rel = ''] = ostemplate.split(':');
  const template = host.state.storage.find((s) => s.storage === sid)?.items.find((i) => i.volid === ostemplate && i.content === 'vztmpl');
  await t.delay(800);
  if (!template) throw new Error(`unable to create CT ${vmid} - volume '${ostemplate}' does not exist`);
  t.log(`extracting archive '/var/lib/vz/template/cache/${rel.replace(/^vztmpl\//, '')}'`);
  await t.delay(2000);
  const read = template.size * 4;
  t.log(`Total bytes read: ${read} (${Math.round(read / 1048576)}MiB, 91MiB/s)`);
  t.log('Detected container architecture: amd64');
  for (const key of ['ssh_host_rsa_key', 'ssh_host_dsa_key', 'ssh_host_ecdsa_key', 'ssh_host_ed25519_key']) {
    await t.delay(300);
    t.log(`Creating SSH host key '${key}' - this may take some time ...`);
    t.log(`done: ${fingerprint()} root@localhost`);
  }
}
