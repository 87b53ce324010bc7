/**
 * Virtual files rendered from the host model: /etc/pve config files, /proc, /sys/bus/pci and /dev/nvidia*.
 * Kernel-side rules live here: bind/unbind answer `No such device` exactly when the kernel returns ENODEV.
 */
import type { VirtualFile, VirtualProvider } from './fs';
import type { LabHost } from './host';
import { parseConfigFile } from './guest-config';
import type { Guest } from './state';

/** Write failure the shell reports as `bash: line 1: echo: write error: <text>`. */
export class WriteError extends Error {
  constructor(readonly errnoText: string) {
    super(errnoText);
    this.name = 'WriteError';
  }
}

const ro = (read: () => string, mode = 0o444): VirtualFile => ({ read, mode });

/** `/etc/pve/lxc/<id>.conf`, `/etc/pve/qemu-server/<id>.conf` and the `nodes/<node>/` paths behind them. */
export function pveProvider(host: LabHost, onParseWarnings: (w: string[]) => void): VirtualProvider {
  const dirs = (): Record<string, Guest['type'] | null> => {
    const n = host.state.node.name;
    return {
      '/etc/pve': null, '/etc/pve/nodes': null, [`/etc/pve/nodes/${n}`]: null,
      '/etc/pve/lxc': 'lxc', [`/etc/pve/nodes/${n}/lxc`]: 'lxc',
      '/etc/pve/qemu-server': 'qemu', [`/etc/pve/nodes/${n}/qemu-server`]: 'qemu',
    };
  };
  return {
    dir(path) {
      const d = dirs();
      if (!(path in d)) return undefined;
      const type = d[path];
      if (path === '/etc/pve') return ['lxc', 'nodes', 'qemu-server', 'storage.cfg', 'user.cfg', 'datacenter.cfg'];
      if (path === '/etc/pve/nodes') return [host.state.node.name];
      if (type === null) return ['lxc', 'qemu-server'];
      return host.guests().filter((g) => g.type === type).map((g) => `${g.vmid}.conf`);
    },
    file(path) {
      const m = /^(.*)\/(\d+)\.conf$/.exec(path);
      if (!m) {
        if (path === '/etc/pve/storage.cfg') {
          return ro(() => 'dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\nlvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent rootdir,images\n\n', 0o640);
        }
        return undefined;
      }
      const type = dirs()[m[1] ?? ''];
      if (!type) return undefined;
      const vmid = Number(m[2]);
      const g = host.guest(vmid);
      if (!g || g.type !== type) return undefined;
      return {
        mode: 0o640,
        read: () => host.renderFile(vmid) ?? '',
        write: (content) => {
          if (content === host.renderFile(vmid)) return; // same bytes: pmxcfs changes nothing
          const parsed = parseConfigFile(vmid, type, content);
          onParseWarnings(parsed.warnings);
          host.replaceFromFile(vmid, parsed, content, 'ssh');
        },
      };
    },
  };
}

const CHAR_DEVICES_BASE: Array<[number, string]> = [
  [1, 'mem'], [4, '/dev/vc/0'], [4, 'tty'], [4, 'ttyS'], [5, '/dev/tty'], [5, '/dev/console'], [5, '/dev/ptmx'],
  [7, 'vcs'], [10, 'misc'], [13, 'input'], [29, 'fb'], [89, 'i2c'], [128, 'ptm'], [136, 'pts'], [180, 'usb'],
  [188, 'ttyUSB'], [189, 'usb_device'], [226, 'drm'], [241, 'vfio'], [250, 'ipmidev'], [251, 'aux'], [252, 'hidraw'],
  [253, 'rtc'], [254, 'gpiochip'],
];
const BLOCK_DEVICES = '  7 loop\n  8 sd\n  9 md\n 65 sd\n 66 sd\n 67 sd\n128 sd\n252 device-mapper\n253 zd\n254 mdp\n259 blkext\n';

/** /proc/devices and /proc/driver/nvidia/version: the host kernel's view, shared by CTs (no lxcfs for these). */
export function procProvider(host: LabHost): VirtualProvider {
  const devices = (): string => {
    const mods = host.state.node.modules;
    const list = [...CHAR_DEVICES_BASE];
    if (mods.includes('nvidia')) list.push([195, 'nvidia'], [235, 'nvidia-caps']);
    if (mods.includes('nvidia_uvm')) list.push([508, 'nvidia-uvm']);
    list.sort((a, b) => a[0] - b[0]);
    return `Character devices:\n${list.map(([n, s]) => `${String(n).padStart(3)} ${s}`).join('\n')}\n\nBlock devices:\n${BLOCK_DEVICES}`;
  };
  return {
    dir(path) {
      if (path === '/proc') return ['cpuinfo', 'devices', 'driver', 'meminfo', 'modules', 'version'];
      if (path === '/proc/driver') return host.state.node.modules.includes('nvidia') ? ['nvidia', 'rtc'] : ['rtc'];
      if (path === '/proc/driver/nvidia' && host.state.node.modules.includes('nvidia')) return ['gpus', 'params', 'registry', 'version'];
      return undefined;
    },
    file(path) {
      if (path === '/proc/devices') return ro(devices);
      if (path === '/proc/version') return ro(() => `Linux version ${host.state.node.kernel} (build@proxmox) (gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-9 (2025-03-16T19:18Z)\n`);
      if (path === '/proc/modules') {
        return ro(() => host.state.node.modules.map((m) => `${m} 16384 0 - Live 0x0000000000000000\n`).join(''));
      }
      if (path === '/proc/driver/nvidia/version' && host.state.node.modules.includes('nvidia')) {
        const v = host.state.node.nvidiaDriver;
        return ro(() => `NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  ${v}  Release Build  (dvs-builder@U22-I3-AF03-09-1)  Wed Jan 14 21:33:45 UTC 2026\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n`);
      }
      return undefined;
    },
  };
}

/** Which drivers claim a device without an override (the kernel's id tables, reduced). */
function nativeDrivers(vendor: string, cls: string): string[] {
  if (vendor === '10de' && cls === '0300') return ['nouveau', 'nvidia'];
  if (cls === '0403') return ['snd_hda_intel'];
  if (vendor === '1002' && cls === '0300') return ['amdgpu'];
  return [];
}

/** Kernel module name -> PCI driver directory name. */
const DRIVER_DIR: Record<string, string> = { vfio_pci: 'vfio-pci', nvidia: 'nvidia', nouveau: 'nouveau', amdgpu: 'amdgpu', snd_hda_intel: 'snd_hda_intel' };

export function sysProvider(host: LabHost): VirtualProvider {
  const loadedDrivers = (): string[] => host.state.node.modules.map((m) => DRIVER_DIR[m]).filter((d): d is string => !!d);
  const bind = (drv: string, bdf: string): void => {
    const dev = host.pci(bdf.trim());
    if (!dev || dev.driver !== null) throw new WriteError('No such device');
    const matches = dev.driverOverride ? dev.driverOverride === drv : nativeDrivers(dev.vendorId, dev.classCode).includes(drv);
    if (!matches) throw new WriteError('No such device');
    dev.driver = drv;
    host.record('ssh', 'pci.bind', undefined, `${dev.bdf} -> ${drv}`);
  };
  const unbind = (drv: string, bdf: string): void => {
    const dev = host.pci(bdf.trim());
    if (!dev || dev.driver !== drv) throw new WriteError('No such device');
    dev.driver = null;
    host.record('ssh', 'pci.unbind', undefined, `${dev.bdf} from ${drv}`);
  };
  const probe = (bdf: string): void => {
    const dev = host.pci(bdf.trim());
    if (!dev) throw new WriteError('No such device');
    if (dev.driver !== null) return;
    const loaded = loadedDrivers();
    const cand = dev.driverOverride ? [dev.driverOverride] : nativeDrivers(dev.vendorId, dev.classCode);
    const drv = cand.find((d) => loaded.includes(d));
    if (drv) {
      dev.driver = drv;
      host.record('ssh', 'pci.bind', undefined, `${dev.bdf} -> ${drv} (probe)`);
    }
  };
  const devDir = (bdf: string): string[] => {
    const dev = host.pci(bdf);
    if (!dev) return [];
    return ['class', 'device', 'vendor', 'driver_override', 'iommu_group', 'enable', ...(dev.driver ? ['driver'] : [])];
  };
  return {
    dir(path) {
      if (path === '/sys' ) return ['bus', 'class', 'devices', 'module'];
      if (path === '/sys/bus') return ['pci'];
      if (path === '/sys/bus/pci') return ['devices', 'drivers', 'drivers_probe', 'rescan'];
      if (path === '/sys/bus/pci/devices') return host.state.pci.map((d) => d.bdf);
      if (path === '/sys/bus/pci/drivers') return loadedDrivers();
      const dm = /^\/sys\/bus\/pci\/devices\/([0-9a-f:.]+)$/.exec(path);
      if (dm) return host.pci(dm[1] ?? '') ? devDir(dm[1] ?? '') : undefined;
      const ddm = /^\/sys\/bus\/pci\/devices\/([0-9a-f:.]+)\/driver$/.exec(path);
      if (ddm) return host.pci(ddm[1] ?? '')?.driver ? ['bind', 'unbind', 'new_id', 'remove_id'] : undefined;
      const drm = /^\/sys\/bus\/pci\/drivers\/([a-z_-]+)$/.exec(path);
      if (drm && loadedDrivers().includes(drm[1] ?? '')) {
        const drv = drm[1] ?? '';
        return ['bind', 'unbind', 'new_id', 'remove_id', ...host.state.pci.filter((d) => d.driver === drv).map((d) => d.bdf)];
      }
      return undefined;
    },
    file(path) {
      if (path === '/sys/bus/pci/drivers_probe') return { read: () => '', mode: 0o200, write: (c) => probe(c) };
      if (path === '/sys/bus/pci/rescan') return { read: () => '', mode: 0o200, write: () => undefined };
      const drv = /^\/sys\/bus\/pci\/drivers\/([a-z_-]+)\/(bind|unbind|new_id|remove_id)$/.exec(path);
      if (drv && loadedDrivers().includes(drv[1] ?? '')) {
        const name = drv[1] ?? '';
        const op = drv[2];
        return {
          read: () => '', mode: 0o200,
          write: (c) => { if (op === 'bind') bind(name, c); else if (op === 'unbind') unbind(name, c); },
        };
      }
      // A bound device's entry in its driver's directory (a symlink to the device in real sysfs).
      const entry = /^\/sys\/bus\/pci\/drivers\/([a-z_-]+)\/([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])$/.exec(path);
      if (entry) return host.pci(entry[2] ?? '')?.driver === entry[1] ? { read: () => '', symlink: `../../../../devices/pci0000:00/${entry[2] ?? ''}` } : undefined;
      const viaDev = /^\/sys\/bus\/pci\/devices\/([0-9a-f:.]+)\/driver\/(bind|unbind)$/.exec(path);
      if (viaDev) {
        const dev = host.pci(viaDev[1] ?? '');
        if (!dev?.driver) return undefined;
        const name = dev.driver;
        return { read: () => '', mode: 0o200, write: (c) => { if (viaDev[2] === 'bind') bind(name, c); else unbind(name, c); } };
      }
      const attr = /^\/sys\/bus\/pci\/devices\/([0-9a-f:.]+)\/(class|device|vendor|driver_override|iommu_group|enable|driver)$/.exec(path);
      if (!attr) return undefined;
      const dev = host.pci(attr[1] ?? '');
      if (!dev) return undefined;
      switch (attr[2]) {
        case 'class': return ro(() => `0x${dev.classCode}00\n`);
        case 'vendor': return ro(() => `0x${dev.vendorId}\n`);
        case 'device': return ro(() => `0x${dev.deviceId}\n`);
        case 'enable': return ro(() => (dev.driver ? '1\n' : '0\n'));
        case 'iommu_group': return { read: () => '', symlink: `../../../kernel/iommu_groups/${dev.iommuGroup}` };
        case 'driver': return dev.driver ? { read: () => '', symlink: `../../../bus/pci/drivers/${dev.driver}` } : undefined;
        default:
          return {
            mode: 0o644,
            read: () => `${dev.driverOverride ?? '(null)'}\n`,
            write: (c) => {
              const v = c.trim();
              const next = v === '' ? null : v;
              if (next !== dev.driverOverride) {
                dev.driverOverride = next;
                host.record('ssh', 'pci.driver_override', undefined, `${dev.bdf} = ${next ?? '(null)'}`);
              }
            },
          };
      }
    },
  };
}

/** NVIDIA device nodes; `visible` decides per machine (host: driver state; CT: also its passthrough config). */
export const NVIDIA_NODES = ['nvidia0', 'nvidiactl', 'nvidia-modeset', 'nvidia-uvm', 'nvidia-uvm-tools'];

export function devProvider(visible: (node: string) => boolean): VirtualProvider {
  return {
    dir(path) {
      if (path === '/dev') return NVIDIA_NODES.filter(visible);
      return undefined;
    },
    file(path) {
      const m = /^\/dev\/(nvidia[a-z0-9-]*)$/.exec(path);
      if (m && NVIDIA_NODES.includes(m[1] ?? '') && visible(m[1] ?? '')) return { read: () => '', mode: 0o666, write: () => undefined };
      return undefined;
    },
  };
}
