/**
 * vmstatus-shaped records for guest lists and `status/current` (pve-container LXC.pm::vmstatus, qemu-server
 * vm_status). Usage numbers are steady, plausible values derived from the config: nothing reads them for
 * decisions, but clients expect the keys and types.
 */
import { effectiveConfig } from '../../guest-config';
import type { LabHost } from '../../host';
import type { Guest } from '../../state';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** `size=64G` of a disk property string → bytes. */
export function diskBytes(spec: string | undefined): number {
  const m = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT])?/.exec(spec ?? '');
  if (!m) return 0;
  const unit = { K: 1024, M: MiB, G: GiB, T: 1024 * GiB }[m[2] ?? ''] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

function common(host: LabHost, g: Guest): Record<string, unknown> {
  const conf = effectiveConfig(g, true);
  const running = g.status === 'running';
  const maxmem = Number(conf.memory ?? (g.type === 'lxc' ? 512 : 2048)) * MiB;
  const uptime = running && g.startedAt > 0 ? Math.max(0, host.now() - g.startedAt) : 0;
  const out: Record<string, unknown> = {
    vmid: g.vmid,
    status: g.status,
    cpus: Number(conf.cores ?? (g.type === 'lxc' ? 32 : 1)) * (g.type === 'qemu' ? Number(conf.sockets ?? 1) : 1),
    maxmem,
    mem: running ? Math.round(maxmem * 0.18) : 0,
    uptime,
    cpu: running ? 0.0123 : 0,
    netin: running ? 1024 * uptime : 0,
    netout: running ? 512 * uptime : 0,
    diskread: running ? 64 * MiB : 0,
    diskwrite: running ? 16 * MiB : 0,
  };
  if (running) out.pid = g.pid;
  if (conf.lock) out.lock = conf.lock;
  if (conf.tags) out.tags = conf.tags;
  if (conf.template === '1') out.template = 1;
  return out;
}

export function lxcStatus(host: LabHost, g: Guest): Record<string, unknown> {
  const conf = effectiveConfig(g, true);
  const maxdisk = diskBytes(conf.rootfs);
  const out = common(host, g);
  out.name = (conf.hostname ?? `CT${g.vmid}`).replace(/\s/g, '');
  out.type = 'lxc';
  out.maxdisk = maxdisk;
  out.disk = g.status === 'running' ? Math.round(maxdisk * 0.21) : 0;
  out.maxswap = Number(conf.swap ?? 512) * MiB;
  out.swap = 0;
  return out;
}

export function qemuStatus(host: LabHost, g: Guest): Record<string, unknown> {
  const conf = effectiveConfig(g, true);
  const out = common(host, g);
  out.name = conf.name ?? `VM${g.vmid}`;
  out.maxdisk = Object.entries(conf)
    .filter(([k, v]) => /^(scsi|virtio|sata|ide)\d+$/.test(k) && !/media=cdrom/.test(v))
    .reduce((sum, [, v]) => sum + diskBytes(v), 0);
  out.disk = 0;
  if (conf.agent && /^(1|enabled=1)/.test(conf.agent)) out.agent = 1;
  return out;
}
