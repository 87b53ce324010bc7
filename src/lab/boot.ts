/**
 * A host reboot, as far as the deploy cares: every guest stops; the kernel forgets what was done by hand in sysfs
 * (driver_override, a manual bind) and which modules were loaded; at boot each PCI device goes to the driver its
 * id tables and modprobe.d give it; systemd-modules-load loads /etc/modules and modules-load.d; enabled oneshot
 * units of /etc/systemd/system ordered Before=pve-guests.service run (their ExecStart lines, absolute paths as
 * systemd wants them); pve-guests starts the guests with onboot=1, in vmid order, logging a guest that fails and
 * going on; then the other oneshot units run.
 */
import type { LabHost } from './host';
import type { World } from './world';
import type { PciDevice } from './state';

/** Modules PVE hosts load at boot whatever the devices (vfio for passthrough, kvm). */
const BASE_MODULES = ['vfio_pci', 'vfio_pci_core', 'vfio_iommu_type1', 'vfio', 'kvm_amd', 'kvm'];
/** Absolute paths systemd can exec on a Debian 12 host, and the lab command behind each. */
const PROGRAMS: Record<string, string> = {
  '/bin/sh': 'sh', '/usr/bin/sh': 'sh', '/bin/bash': 'bash', '/usr/bin/bash': 'bash',
  '/sbin/modprobe': 'modprobe', '/usr/sbin/modprobe': 'modprobe',
  '/usr/bin/nvidia-modprobe': 'nvidia-modprobe', '/usr/bin/nvidia-smi': 'nvidia-smi',
};

export interface BootReport {
  units: Record<string, 'active' | 'failed'>;
  started: number[];
  failed: Array<{ vmid: number; error: string }>;
}

async function readAll(world: World, dir: string): Promise<string[]> {
  const m = world.machine('host');
  if (!m) return [];
  const names = await m.fs.readdir(dir).catch(() => [] as string[]);
  const out: string[] = [];
  for (const n of names.sort()) if (n.endsWith('.conf')) out.push(await m.fs.readFile(`${dir}/${n}`).catch(() => ''));
  return out;
}

/** `options vfio-pci ids=10de:2705,10de:22bb` lines: the devices vfio-pci claims at boot. */
function vfioIds(modprobeD: string[]): Set<string> {
  const ids = new Set<string>();
  for (const text of modprobeD) {
    for (const line of text.split('\n')) {
      const m = /^\s*options\s+vfio[-_]pci\s+.*\bids=([0-9a-f:,]+)/i.exec(line);
      for (const id of m?.[1]?.split(',') ?? []) ids.add(id.toLowerCase());
    }
  }
  return ids;
}

function blacklisted(modprobeD: string[], mod: string): boolean {
  return modprobeD.some((t) => new RegExp(`^\\s*blacklist\\s+${mod}\\s*$`, 'm').test(t));
}

function bootDriver(host: LabHost, d: PciDevice, modprobeD: string[], vfio: Set<string>): string | null {
  if (vfio.has(`${d.vendorId}:${d.deviceId}`)) return 'vfio-pci';
  if (d.vendorId === '10de' && d.classCode === '0300') {
    // A blacklist written after the last update-initramfs is not in the initramfs, which loads nouveau first.
    if (!blacklisted(modprobeD, 'nouveau') || host.state.node.initramfsStale) return 'nouveau';
    return host.state.node.nvidiaDriver ? 'nvidia' : null;
  }
  if (d.classCode === '0403') return 'snd_hda_intel';
  if (d.vendorId === '1002' && d.classCode === '0300') return 'amdgpu';
  return null;
}

/** systemd's splitting of an ExecStart line: words, with '…' and "…" quoting. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] ?? m[2]?.replace(/\\(.)/g, '$1') ?? m[3] ?? '');
  return out;
}

async function runUnit(world: World, text: string, log: (why: string) => void): Promise<boolean> {
  const host = world.machine('host');
  if (!host) return false;
  for (const raw of text.split('\n')) {
    const m = /^ExecStart=(.*)$/.exec(raw.trim());
    if (!m || !m[1]) continue;
    const ignoreFailure = m[1].startsWith('-');
    const [path = '', ...args] = words(m[1].replace(/^[-@+!:]+/, ''));
    const program = PROGRAMS[path];
    if (!program) {
      log(`Failed to locate executable ${path}`); // systemd's words; also for a path that is not absolute
      return false;
    }
    const res = await world.runProgram(host, [program, ...args], { env: { HOME: '/root', USER: 'root', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' } });
    if (('notFound' in res || res.exitCode !== 0) && !ignoreFailure) {
      log(`${m[1]}: ${'notFound' in res ? 'not found' : `status=${res.exitCode} ${res.stderr.trim()}`}`);
      return false;
    }
  }
  return true;
}

export async function rebootHost(world: World, host: LabHost): Promise<BootReport> {
  for (const g of host.guests()) if (g.status === 'running') host.stopGuest(g.vmid, g.type, 'ssh');
  host.record('ssh', 'host.reboot', undefined, 'reboot');
  const modprobeD = await readAll(world, '/etc/modprobe.d');
  const vfio = vfioIds(modprobeD);
  const modules = [...BASE_MODULES];
  for (const d of host.state.pci) {
    d.driverOverride = null;
    d.driver = bootDriver(host, d, modprobeD, vfio);
    const mod = d.driver === 'vfio-pci' ? 'vfio_pci' : d.driver;
    if (mod && !modules.includes(mod)) modules.push(mod);
  }
  // systemd-modules-load: nvidia's modules load only with a GPU on nvidia (its module refuses otherwise).
  const m = world.machine('host');
  const loadList = [await m?.fs.readFile('/etc/modules').catch(() => '') ?? '', ...(await readAll(world, '/etc/modules-load.d'))];
  for (const name of loadList.flatMap((t) => t.split('\n')).map((l) => l.replace(/#.*/, '').trim().replace(/-/g, '_')).filter(Boolean)) {
    if (name.startsWith('nvidia') && !host.state.pci.some((d) => d.driver === 'nvidia')) continue;
    if (name === 'nouveau' && blacklisted(modprobeD, 'nouveau')) continue;
    if (!modules.includes(name)) modules.push(name);
  }
  host.state.node.modules = modules;
  const report: BootReport = { units: {}, started: [], failed: [] };
  const rt = world.runtime('host');
  // Enabled oneshot units: those ordered Before=pve-guests.service run before the guests start, the rest after.
  const early: Array<[string, string]> = [];
  const late: Array<[string, string]> = [];
  for (const unit of [...rt.enabledServices].sort()) {
    const text = await m?.fs.readFile(`/etc/systemd/system/${unit}`).catch(() => undefined);
    if (text === undefined || !/^Type=oneshot$/m.test(text)) continue;
    (/^Before=.*\bpve-guests\.service\b/m.test(text) ? early : late).push([unit, text]);
  }
  const runAll = async (units: Array<[string, string]>): Promise<void> => {
    for (const [unit, text] of units) {
      const ok = await runUnit(world, text, (why) => host.record('ssh', 'boot.unit-failed', undefined, `${unit}: ${why}`));
      rt.services[unit] = ok ? 'active' : 'failed';
      report.units[unit] = rt.services[unit] as 'active' | 'failed';
    }
  };
  await runAll(early);
  for (const g of host.guests().sort((a, b) => a.vmid - b.vmid)) {
    if (g.config.onboot !== '1') continue;
    try {
      host.startGuest(g.vmid, g.type, 'ssh');
      report.started.push(g.vmid);
    } catch (e) {
      report.failed.push({ vmid: g.vmid, error: (e as Error).message });
    }
  }
  await runAll(late);
  return report;
}
