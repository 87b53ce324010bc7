/**
 * GPU and kernel-module commands: `nvidia-smi` (host and CT), `lspci`, `modprobe`, `rmmod`, `lsmod`,
 * `update-initramfs`. Outputs follow host-commands.md §4 (580-series table layout).
 */
import { defineCommand } from 'just-bash';
import type { Command } from 'just-bash';
import { fail, isRoot, notFound, ok, parseFlags, type Result } from './cmd-util';
import type { Machine, World } from './world';
import type { PciDevice } from './state';
import { NVIDIA_BDF } from './state';

export const GPU_NAME = 'NVIDIA GeForce RTX 4070 Ti SUPER';
export const GPU_VRAM_MIB = 16376;
const GPU_UUID = 'GPU-8d4b6c2e-7f1a-4b3c-9e2d-5a6f7b8c9d0e';
const CUDA_FOR_DRIVER = (v: string): string => (v.startsWith('580') ? '13.0' : '12.8');

const NO_DRIVER = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n";

function smiDate(): string {
  const d = new Date();
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const mons = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]} ${mons[d.getUTCMonth()]} ${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

export interface GpuReading {
  usedMiB: number;
  utilization: number;
  processes: Array<{ pid: number; name: string; usedMiB: number }>;
}

/** The default `nvidia-smi` table; `processes` is empty inside a CT (it cannot see host PIDs). */
export function smiTable(driver: string, r: GpuReading, showProcesses: boolean): string {
  const line = '+-----------------------------------------------------------------------------------------+';
  const sep = '+-----------------------------------------+------------------------+----------------------+';
  const name = GPU_NAME.length > 27 ? `${GPU_NAME.slice(0, 24)}...` : GPU_NAME;
  const perf = r.processes.length > 0 ? 'P2' : 'P8';
  const power = `${r.processes.length > 0 ? 38 : 9}W /  285W`;
  const c1a = `   0  ${name}`.padEnd(37) + 'Off ';
  const c1b = `  0%   ${r.processes.length > 0 ? 41 : 34}C    ${perf}`.padEnd(40 - power.length) + power + ' ';
  const c2a = '   00000000:01:00.0 Off ';
  const c2b = `${r.usedMiB}MiB / ${String(GPU_VRAM_MIB).padStart(6)}MiB`.padStart(23) + ' ';
  const c3b = `${r.utilization}%`.padStart(8) + 'Default'.padStart(13) + ' ';
  let out = `${smiDate()}       \n${line}\n`;
  out += `| NVIDIA-SMI ${driver.padEnd(23)}Driver Version: ${driver.padEnd(15)}CUDA Version: ${CUDA_FOR_DRIVER(driver).padEnd(9)}|\n`;
  out += `${sep}\n| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |\n`;
  out += '| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |\n';
  out += '|                                         |                        |               MIG M. |\n';
  out += '|=========================================+========================+======================|\n';
  out += `|${c1a}|${c2a}|${'N/A'.padStart(21)} |\n|${c1b}|${c2b}|${c3b}|\n`;
  out += `|${' '.repeat(41)}|${' '.repeat(24)}|${'N/A'.padStart(21)} |\n${sep}\n\n`;
  out += `${line}\n| Processes:${' '.repeat(78)}|\n`;
  out += '|  GPU   GI   CI              PID   Type   Process name                        GPU Memory |\n';
  out += '|        ID   ID                                                               Usage      |\n';
  out += '|=========================================================================================|\n';
  const procs = showProcesses ? r.processes : [];
  if (procs.length === 0) out += `|  No running processes found${' '.repeat(61)}|\n`;
  for (const p of procs) {
    const mem = `${p.usedMiB}MiB`;
    out += `|    0   N/A  N/A${String(p.pid).padStart(16)}${'C'.padStart(7)}   ${p.name.padEnd(46 - mem.length)}${mem} |\n`;
  }
  return `${out}${line}\n`;
}

const QUERY_FIELDS: Record<string, { header: string; unit?: string; value: (d: string, r: GpuReading) => string }> = {
  name: { header: 'name', value: () => GPU_NAME },
  'memory.total': { header: 'memory.total [MiB]', unit: 'MiB', value: () => String(GPU_VRAM_MIB) },
  'memory.used': { header: 'memory.used [MiB]', unit: 'MiB', value: (_d, r) => String(r.usedMiB) },
  'memory.free': { header: 'memory.free [MiB]', unit: 'MiB', value: (_d, r) => String(GPU_VRAM_MIB - r.usedMiB - 283) },
  driver_version: { header: 'driver_version', value: (d) => d },
  'pci.bus_id': { header: 'pci.bus_id', value: () => '00000000:01:00.0' },
  compute_cap: { header: 'compute_cap', value: () => '8.9' },
  'utilization.gpu': { header: 'utilization.gpu [%]', unit: '%', value: (_d, r) => String(r.utilization) },
  'temperature.gpu': { header: 'temperature.gpu', value: (_d, r) => (r.processes.length ? '41' : '34') },
  uuid: { header: 'uuid', value: () => GPU_UUID },
  index: { header: 'index', value: () => '0' },
  count: { header: 'count', value: () => '1' },
  'power.draw': { header: 'power.draw [W]', unit: 'W', value: (_d, r) => (r.processes.length ? '38.12' : '9.04') },
};

function smiQuery(args: string[], driver: string, r: GpuReading): Result {
  const q = args.find((a) => a.startsWith('--query-gpu='))?.slice(12) ?? args[args.indexOf('--query-gpu') + 1] ?? '';
  const fmt = args.find((a) => a.startsWith('--format='))?.slice(9) ?? args[args.indexOf('--format') + 1] ?? '';
  const opts = fmt.split(',');
  if (opts[0] !== 'csv') return fail(`Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n`, 2);
  const fields = q.split(',').map((f) => f.trim()).filter(Boolean);
  for (const f of fields) if (!QUERY_FIELDS[f]) return fail(`Field "${f}" is not a valid field to query.\n\n`, 2);
  const noheader = opts.includes('noheader');
  const nounits = opts.includes('nounits');
  let out = '';
  // nounits drops the units from the values only: the header keeps "memory.total [MiB]".
  if (!noheader) out += `${fields.map((f) => QUERY_FIELDS[f]?.header ?? f).join(', ')}\n`;
  out += `${fields.map((f) => {
    const spec = QUERY_FIELDS[f];
    if (!spec) return '[N/A]';
    const v = spec.value(driver, r);
    return spec.unit && !nounits ? `${v} ${spec.unit}` : v;
  }).join(', ')}\n`;
  return ok(out);
}

export function gpuCommands(world: World, m: Machine): Command[] {
  const host = world.host;
  const reading = (): GpuReading => world.gpuReading();

  const smi = defineCommand('nvidia-smi', async (args): Promise<Result> => {
    const node = host.state.node;
    let driver = node.nvidiaDriver;
    if (m.vmid === null) {
      if (!node.modules.includes('nvidia')) return fail(NO_DRIVER, 9);
      if (!host.nvidiaLoaded()) return fail('No devices were found\n', 6);
    } else {
      const rt = world.runtime(m.key);
      if (!rt.nvidiaUserspace) return notFound('nvidia-smi');
      driver = rt.nvidiaUserspace;
      if (!world.ctNodeVisible(m.vmid, 'nvidiactl')) return fail(NO_DRIVER, 9);
      if (rt.nvidiaUserspace !== node.nvidiaDriver) {
        const short = rt.nvidiaUserspace.split('.').slice(0, 2).join('.');
        return fail(`Failed to initialize NVML: Driver/library version mismatch\nNVML library version: ${short}\n`, 18);
      }
      if (!world.ctNodeVisible(m.vmid, 'nvidia0')) return fail('No devices were found\n', 6);
    }
    if (args.includes('-L') || args.includes('--list-gpus')) return ok(`GPU 0: ${GPU_NAME} (UUID: ${GPU_UUID})\n`);
    if (args.some((a) => a.startsWith('--query-gpu'))) return smiQuery(args, driver, reading());
    return ok(smiTable(driver, reading(), m.vmid === null));
  });

  if (m.vmid !== null) return [smi];

  const lspci = defineCommand('lspci', async (args): Promise<Result> => {
    const { flags } = parseFlags(args, ['-s', '-d']);
    const ids = Boolean(flags['-nn'] || flags['-n']);
    const k = Boolean(flags['-k']);
    const full = Boolean(flags['-D']);
    let devs: PciDevice[] = host.state.pci;
    const sel = typeof flags['-s'] === 'string' ? flags['-s'] : undefined;
    if (sel) {
      const s = sel.includes(':') && sel.split(':').length === 3 ? sel : `0000:${sel}`;
      devs = devs.filter((d) => d.bdf === s || d.bdf.startsWith(`${s}.`));
    }
    let out = '';
    for (const d of devs) {
      const addr = full ? d.bdf : d.bdf.slice(5);
      out += ids
        ? `${addr} ${d.className} [${d.classCode}]: ${d.vendorName} ${d.deviceName} [${d.vendorId}:${d.deviceId}] (rev ${d.rev})\n`
        : `${addr} ${d.className}: ${d.vendorName} ${d.deviceName} (rev ${d.rev})\n`;
      if (k) {
        out += `\tSubsystem: ${ids ? d.subsystem : d.subsystem.replace(/ \[[0-9a-f]{4}:[0-9a-f]{4}\]$/, '')}\n`;
        if (d.driver) out += `\tKernel driver in use: ${d.driver}\n`;
        out += `\tKernel modules: ${d.kernelModules.join(', ')}\n`;
      }
    }
    return ok(out);
  });

  const KNOWN_MODULES = ['nvidia', 'nvidia_uvm', 'nvidia_drm', 'nvidia_modeset', 'nouveau', 'nvidiafb', 'vfio_pci', 'vfio', 'vfio_iommu_type1', 'vfio_pci_core', 'amdgpu', 'snd_hda_intel'];
  const modName = (s: string): string => s.replace(/-/g, '_');

  const loadModule = (name: string): string | null => {
    const mods = host.state.node.modules;
    if (!KNOWN_MODULES.includes(name)) return `modprobe: FATAL: Module ${name} not found in directory /lib/modules/${host.state.node.kernel}\n`;
    if (mods.includes(name)) return null;
    if (name === 'nvidia_uvm' || name === 'nvidia_modeset' || name === 'nvidia_drm') {
      // modprobe loads the dependency first, and stops where it fails
      const dep = mods.includes('nvidia') ? null : loadModule('nvidia');
      if (dep) return dep;
    }
    mods.push(name);
    // A freshly loaded PCI driver probes unbound devices it matches (id table or driver_override).
    for (const d of host.state.pci) {
      if (d.driver !== null) continue;
      const dirName = name === 'vfio_pci' ? 'vfio-pci' : name;
      const match = d.driverOverride ? d.driverOverride === dirName : (name === 'nvidia' || name === 'nouveau') && d.vendorId === '10de' && d.classCode === '0300';
      if (match) d.driver = dirName;
    }
    // NVIDIA's module refuses to stay loaded without a GPU to drive (all of them held by vfio-pci, say).
    if (name === 'nvidia' && !host.state.pci.some((d) => d.driver === 'nvidia')) {
      mods.splice(mods.indexOf(name), 1);
      return "modprobe: ERROR: could not insert 'nvidia': No such device\n";
    }
    host.record('ssh', 'modprobe', undefined, name);
    return null;
  };

  const unloadModule = (name: string): string | null => {
    const mods = host.state.node.modules;
    if (!KNOWN_MODULES.includes(name)) return `modprobe: FATAL: Module ${name} not found.\n`;
    if (!mods.includes(name)) return null;
    const dirName = name === 'vfio_pci' ? 'vfio-pci' : name;
    const users = mods.filter((x) => x !== name && x.startsWith(`${name}_`));
    if (users.length > 0 || host.state.pci.some((d) => d.driver === dirName) || (name === 'nvidia' && world.gpuInUse() !== null)) {
      return `modprobe: FATAL: Module ${name} is in use.\n`;
    }
    mods.splice(mods.indexOf(name), 1);
    host.record('ssh', 'modprobe -r', undefined, name);
    return null;
  };

  const modprobe = defineCommand('modprobe', async (args, ctx): Promise<Result> => {
    if (!isRoot(ctx)) return fail(`modprobe: ERROR: could not insert '${modName(args[args.length - 1] ?? '')}': Operation not permitted\n`, 1);
    const { flags, operands } = parseFlags(args, []);
    const remove = Boolean(flags['-r'] || flags['--remove']);
    for (const op of operands) {
      const err = remove ? unloadModule(modName(op)) : loadModule(modName(op));
      if (err) return fail(err, 1);
    }
    return ok();
  });

  const rmmod = defineCommand('rmmod', async (args): Promise<Result> => {
    for (const op of args.filter((a) => !a.startsWith('-'))) {
      const name = modName(op);
      if (!host.state.node.modules.includes(name)) return fail(`rmmod: ERROR: Module ${name} is not currently loaded\n`, 1);
      const err = unloadModule(name);
      if (err) return fail(`rmmod: ERROR: Module ${name} is in use\n`, 1);
    }
    return ok();
  });

  const lsmod = defineCommand('lsmod', async (): Promise<Result> => {
    const sizes: Record<string, number> = { nouveau: 2961408, nvidia: 104366080, nvidia_uvm: 1806336, amdgpu: 12451840, vfio_pci: 16384, vfio_pci_core: 86016, vfio: 69632, vfio_iommu_type1: 49152, snd_hda_intel: 61440, kvm_amd: 208896, kvm: 1380352 };
    let out = 'Module                  Size  Used by\n';
    for (const mod of host.state.node.modules) {
      const usedBy = host.state.node.modules.filter((x) => x !== mod && x.startsWith(`${mod}_`));
      const bound = host.state.pci.filter((d) => d.driver === mod || (mod === 'vfio_pci' && d.driver === 'vfio-pci')).length;
      const count = usedBy.length + bound;
      out += `${mod.padEnd(19)} ${String(sizes[mod] ?? 16384).padStart(8)}  ${count}${usedBy.length ? ` ${usedBy.join(',')}` : ''}\n`;
    }
    return ok(out);
  });

  const updateInitramfs = defineCommand('update-initramfs', async (args, ctx): Promise<Result> => {
    if (!isRoot(ctx)) return fail('update-initramfs: Permission denied\n', 1);
    if (!args.includes('-u') && !args.includes('-c')) return fail('Usage: update-initramfs {-c|-d|-u} [-k version] [-v] [-b directory]\n', 2);
    // modprobe.d edits made before this are now built in: journal them now, so their staleness is cleared below
    await world.flushFileJournal((p) => p.startsWith('/etc/modprobe.d/'));
    await host.delay(2500);
    host.state.node.initramfsStale = false;
    host.record('ssh', 'update-initramfs', undefined, args.join(' '));
    // UNVERIFIED: the proxmox-boot-tool hook lines on PVE 8.
    return ok(`update-initramfs: Generating /boot/initrd.img-${host.state.node.kernel}\nRunning hook script 'zz-proxmox-boot'..\nRe-executing '/etc/kernel/postinst.d/zz-proxmox-boot' in new private mount namespace..\nNo /etc/kernel/proxmox-boot-uuids found, skipping ESP sync.\n`);
  });

  return [smi, lspci, modprobe, rmmod, lsmod, updateInitramfs];
}

export { NVIDIA_BDF };
