/**
 * LabHost: the one object both sides of the lab (SSH commands here, the HTTPS PVE API in pve-api/) use to
 * read and change the host model. It owns the rules that must agree between `pct`/`qm` and the API:
 * config updates (pending vs applied), guest start/stop with the GPU rules, create/destroy, tasks, the
 * journal, faults and the scaled clock.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { configDigest, effectiveConfig, renderConfigFile } from './guest-config';
import {
  NVIDIA_BDF, templateRuntime, type FaultName, type Guest, type JournalEntry, type LabState, type PciDevice,
  type TaskRecord, type Via,
} from './state';

/** An operation refused the way PVE refuses it: `message` is the die text (no trailing newline). */
export class LabError extends Error {
  constructor(message: string, readonly exitCode = 255, readonly httpStatus = 500) {
    super(message);
    this.name = 'LabError';
  }
}

/** Options a running CT applies at once; the rest go to `[pve:pending]` until the next start. */
const CT_HOTPLUG = /^(cores|cpulimit|cpuunits|memory|swap|description|onboot|protection|tags|startup|hostname|nameserver|searchdomain|net\d+|mp\d+|hookscript|lock)$/;
/** Options qemu-server applies immediately even on a running VM ("fast plug" + default hotplug set). */
const VM_HOTPLUG = /^(name|description|onboot|protection|tags|startup|hookscript|lock|agent|net\d+)$/;

export interface HostEvents {
  /** Fired after every journaled mutation (index.ts saves the state file on it). */
  mutated: [JournalEntry];
  guestCreated: [Guest];
  guestDestroyed: [number];
  guestStarted: [Guest];
  guestStopped: [Guest];
}

export class LabHost extends EventEmitter<HostEvents> {
  readonly faults = new Set<FaultName>();
  /** GPU "in use" check is delegated to the container side (a running process holds /dev/nvidia*). */
  gpuInUse: () => number | null = () => null;

  constructor(public state: LabState, public timeScale = 1) {
    super();
  }

  // ---------- clock, faults, journal ----------

  /** Sleep for a realistic duration, scaled: timeScale 1 = the lab's default demo pace. */
  delay(realisticMs: number): Promise<void> {
    const ms = Math.max(0, Math.round(realisticMs * this.timeScale));
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  now(): number {
    return Math.floor(Date.now() / 1000);
  }

  armFault(name: FaultName): void {
    this.faults.add(name);
  }

  /** True once per arming: the caller then fails the way the fault describes. */
  takeFault(name: FaultName): boolean {
    return this.faults.delete(name);
  }

  /** Persistent faults (driver-mismatch, frontend-unreachable) are checked without being consumed. */
  hasFault(name: FaultName): boolean {
    return this.faults.has(name);
  }

  record(via: Via, op: string, guest: number | undefined, detail: string): JournalEntry {
    this.state.seq += 1;
    const entry: JournalEntry = { seq: this.state.seq, at: new Date().toISOString(), via, op, detail };
    if (guest !== undefined) entry.guest = guest;
    this.state.journal.push(entry);
    this.emit('mutated', entry);
    return entry;
  }

  // ---------- guests ----------

  guest(vmid: number): Guest | undefined {
    return this.state.guests[String(vmid)];
  }

  guests(): Guest[] {
    return Object.values(this.state.guests).sort((a, b) => a.vmid - b.vmid);
  }

  /** load_config: the die text when the guest does not exist (exit 2 from the CLI). */
  requireGuest(vmid: number, type: Guest['type']): Guest {
    const g = this.guest(vmid);
    if (!g || g.type !== type) {
      const dir = type === 'lxc' ? 'lxc' : 'qemu-server';
      throw new LabError(`Configuration file 'nodes/${this.state.node.name}/${dir}/${vmid}.conf' does not exist`, 2);
    }
    return g;
  }

  digest(vmid: number): string {
    const g = this.guest(vmid);
    return g ? configDigest(g) : '';
  }

  /** Config as GET .../config returns it: effective keys + `digest` (+ `lxc` pairs for CTs). */
  apiConfig(vmid: number, type: Guest['type'], current = false): Record<string, unknown> {
    const g = this.requireGuest(vmid, type);
    const out: Record<string, unknown> = { ...effectiveConfig(g, current), digest: configDigest(g) };
    if (type === 'lxc' && g.lxc.length > 0) out.lxc = g.lxc.map(([k, v]) => [k, v]);
    return out;
  }

  /**
   * Apply a PVE-side config change (pct/qm set, API PUT/POST config). Values are stored as given; non-hotplug
   * keys of a running guest go to pending. Returns warnings (`cannot delete ... not set`), which the CLI prints
   * on STDERR. Throws LabError for digest mismatch or a locked guest.
   */
  updateConfig(vmid: number, type: Guest['type'], set: Record<string, string>, del: string[], via: Via, digest?: string): string[] {
    const g = this.requireGuest(vmid, type);
    if (digest !== undefined && digest !== configDigest(g)) {
      throw new LabError('detected modified configuration - file changed by other user? Try again.', 255);
    }
    if (g.config.lock) throw new LabError(`${type === 'lxc' ? 'CT' : 'VM'} is locked (${g.config.lock})`);
    const warnings: string[] = [];
    const hot = type === 'lxc' ? CT_HOTPLUG : VM_HOTPLUG;
    const running = g.status === 'running';
    const eff = effectiveConfig(g);
    for (const key of del) {
      if (!(key in eff)) { warnings.push(`cannot delete '${key}' - not set in current configuration!`); continue; }
      if (running && !hot.test(key)) {
        const pendingDel = new Set((g.pending.delete ?? '').split(',').filter(Boolean));
        pendingDel.add(key);
        g.pending.delete = [...pendingDel].join(',');
        delete g.pending[key];
      } else {
        delete g.config[key];
        delete g.pending[key];
      }
    }
    for (const [key, value] of Object.entries(set)) {
      if (running && !hot.test(key)) {
        g.pending[key] = value;
      } else {
        g.config[key] = value;
        delete g.pending[key];
      }
    }
    if (g.pending.delete === '') delete g.pending.delete;
    delete g.raw; // a PVE write rewrites the file in normalized form
    const parts = [...Object.entries(set).map(([k, v]) => `${k}=${v}`), ...del.map((k) => `delete ${k}`)];
    this.record(via, type === 'lxc' ? 'ct.config' : 'vm.config', vmid, parts.join(' '));
    return warnings;
  }

  /** Replace a CT/VM config from a hand-edited file (the file and the state stay one truth). */
  replaceFromFile(vmid: number, parsed: { config: Record<string, string>; lxc: Array<[string, string]>; pending: Record<string, string> }, raw: string, via: Via): void {
    const g = this.guest(vmid);
    if (!g) return;
    g.config = parsed.config;
    g.lxc = g.type === 'lxc' ? parsed.lxc : [];
    g.pending = parsed.pending;
    g.raw = raw;
    this.record(via, 'file.write', vmid, `/etc/pve/${g.type === 'lxc' ? 'lxc' : 'qemu-server'}/${vmid}.conf`);
  }

  private applyPending(g: Guest): void {
    for (const [k, v] of Object.entries(g.pending)) if (k !== 'delete') g.config[k] = v;
    for (const k of (g.pending.delete ?? '').split(',').filter(Boolean)) delete g.config[k];
    if (Object.keys(g.pending).length > 0) delete g.raw;
    g.pending = {};
  }

  /** vmid -> the PCI addresses its hostpciN entries name (`0000:01:00` = all functions). */
  hostpciDevices(g: Guest): PciDevice[] {
    const conf = effectiveConfig(g);
    const out: PciDevice[] = [];
    for (const [k, v] of Object.entries(conf)) {
      if (!/^hostpci\d+$/.test(k)) continue;
      const first = v.split(',')[0] ?? '';
      const hosts = first.replace(/^host=/, '').split(';');
      for (const h of hosts) {
        const full = /^[0-9a-f]{4}:/i.test(h) ? h : `0000:${h}`;
        for (const d of this.state.pci) if (d.bdf === full || d.bdf.startsWith(`${full}.`)) out.push(d);
      }
    }
    return out;
  }

  pci(bdf: string): PciDevice | undefined {
    return this.state.pci.find((d) => d.bdf === bdf);
  }

  /** Start a guest (pct start / qm start / API status/start). Rules mirror qemu-server and pve-container. */
  startGuest(vmid: number, type: Guest['type'], via: Via): void {
    const g = this.requireGuest(vmid, type);
    const label = type === 'lxc' ? 'CT' : 'VM';
    if (g.status === 'running') throw new LabError(`${label} ${vmid} already running`);
    if (g.config.lock) throw new LabError(`${label} is locked (${g.config.lock})`);
    if (g.config.template === '1') throw new LabError("you can't start a CT if it's a template");
    this.applyPending(g);
    if (type === 'qemu') {
      for (const dev of this.hostpciDevices(g)) {
        for (const other of this.guests()) {
          if (other.vmid === vmid || other.type !== 'qemu' || other.status !== 'running') continue;
          if (this.hostpciDevices(other).some((d) => d.bdf === dev.bdf)) {
            throw new LabError(`PCI device '${dev.bdf}' already in use by VMID '${other.vmid}'`);
          }
        }
        // qemu-server rebinds the group to vfio-pci; that fails while a process holds the nvidia device.
        if (dev.driver === 'nvidia' && this.gpuInUse() !== null) {
          throw new LabError(`can't unbind/bind PCI group to VFIO '${dev.bdf}'`);
        }
        if (dev.driver !== 'vfio-pci') dev.driver = 'vfio-pci';
      }
    } else {
      for (const [k, v] of Object.entries(g.config)) {
        if (!/^dev\d+$/.test(k)) continue;
        const path = (v.split(',')[0] ?? '').replace(/^path=/, '');
        if (!this.hostDeviceExists(path)) {
          throw new LabError(`/${path} is not a device\nstartup for container '${vmid}' failed`);
        }
      }
    }
    g.status = 'running';
    if (type === 'lxc') g.appliedLxc = g.lxc.map(([k, v]) => [k, v]);
    g.startedAt = this.now();
    g.pid = 10000 + Math.floor(Math.random() * 50000);
    this.record(via, type === 'lxc' ? 'ct.start' : 'vm.start', vmid, 'start');
    this.emit('guestStarted', g);
  }

  stopGuest(vmid: number, type: Guest['type'], via: Via, mode: 'stop' | 'shutdown' = 'stop'): void {
    const g = this.requireGuest(vmid, type);
    if (g.status !== 'running') {
      if (type === 'lxc') throw new LabError(`CT ${vmid} not running`);
      return; // qm stop/shutdown of a stopped VM returns silently
    }
    if (g.config.lock) throw new LabError(`${type === 'lxc' ? 'CT' : 'VM'} is locked (${g.config.lock})`);
    g.status = 'stopped';
    g.startedAt = 0;
    g.pid = 0;
    // A stopped VM leaves its passthrough devices on vfio-pci: nothing to rebind here.
    this.record(via, type === 'lxc' ? `ct.${mode}` : `vm.${mode}`, vmid, mode);
    this.emit('guestStopped', g);
  }

  /** The raw lxc lines in force for a CT: those read at its last start (edits apply on the next start). */
  effectiveLxc(g: Guest): Array<[string, string]> {
    return g.status === 'running' && g.appliedLxc ? g.appliedLxc : g.lxc;
  }

  /** Whether /dev/<node> of the NVIDIA driver exists on the host (set by the machine layer). */
  nvidiaNodeExists: (node: string) => boolean = () => this.nvidiaLoaded();

  /** Whether a device node exists on the host (nvidia nodes only while the driver is loaded and bound). */
  hostDeviceExists(path: string): boolean {
    if (/^\/dev\/nvidia/.test(path)) return this.nvidiaNodeExists(path.slice(5));
    if (/^\/dev\/dri\//.test(path)) return true;
    return /^\/dev\/(null|zero|random|urandom|tty|fuse|net\/tun|kvm)$/.test(path);
  }

  /** The host nvidia driver is usable: module loaded and the GPU bound to it. */
  nvidiaLoaded(): boolean {
    const gpu = this.pci(NVIDIA_BDF);
    return this.state.node.modules.includes('nvidia') && gpu?.driver === 'nvidia';
  }

  /** Create a CT (pct create / API POST lxc). The caller validated the parameters. */
  createCt(vmid: number, config: Record<string, string>, via: Via): Guest {
    const existing = this.guest(vmid);
    if (existing) {
      throw new LabError(`${existing.type === 'qemu' ? 'VM' : 'CT'} ${vmid} already exists on node '${this.state.node.name}'`);
    }
    const g: Guest = { vmid, type: 'lxc', status: 'stopped', config: { ...config }, lxc: [], pending: {}, startedAt: 0, pid: 0 };
    this.state.guests[String(vmid)] = g;
    this.state.runtimes[String(vmid)] = templateRuntime();
    this.record(via, 'ct.create', vmid, `create ${config.hostname ?? ''}`.trim());
    this.emit('guestCreated', g);
    return g;
  }

  destroyGuest(vmid: number, type: Guest['type'], via: Via): void {
    const g = this.requireGuest(vmid, type);
    if (g.status === 'running') throw new LabError(`unable to destroy ${type === 'lxc' ? 'CT' : 'VM'} ${vmid} - container is running`);
    if (g.config.protection === '1') throw new LabError(`can't remove CT ${vmid} - protection mode enabled`);
    delete this.state.guests[String(vmid)];
    delete this.state.runtimes[String(vmid)];
    delete this.state.files[String(vmid)];
    for (const s of this.state.storage) s.items = s.items.filter((i) => i.vmid !== vmid);
    this.record(via, type === 'lxc' ? 'ct.destroy' : 'vm.destroy', vmid, 'destroy');
    this.emit('guestDestroyed', vmid);
  }

  /** The rendered config file (what `/etc/pve/lxc/<id>.conf` contains after a PVE write). */
  renderFile(vmid: number): string | undefined {
    const g = this.guest(vmid);
    return g ? (g.raw ?? renderConfigFile(g)) : undefined;
  }

  // ---------- tasks ----------

  /** UPID:node:pid:pstart:starttime:type:id:user: (hex fields, as PVE formats them). */
  newTask(type: string, id: string, user: string): TaskRecord {
    const pid = 100000 + Math.floor(Math.random() * 800000);
    const pstart = 1000000 + Math.floor(Math.random() * 9000000);
    const starttime = this.now();
    const hex = (n: number, w: number): string => n.toString(16).toUpperCase().padStart(w, '0');
    const upid = `UPID:${this.state.node.name}:${hex(pid, 8)}:${hex(pstart, 8)}:${hex(starttime, 8)}:${type}:${id}:${user}:`;
    const task: TaskRecord = { upid, node: this.state.node.name, pid, pstart, starttime, type, id, user, status: 'running', log: [] };
    this.state.tasks.push(task);
    if (this.state.tasks.length > 200) this.state.tasks.splice(0, this.state.tasks.length - 200);
    return task;
  }

  task(upid: string): TaskRecord | undefined {
    return this.state.tasks.find((t) => t.upid === upid);
  }

  taskLog(task: TaskRecord, line: string): void {
    task.log.push(line);
  }

  /** Finish a task: `OK`, `WARNINGS: n`, or the error text (collapsed to one line as fork_worker does). */
  finishTask(task: TaskRecord, exitstatus: string): void {
    task.status = 'stopped';
    task.exitstatus = exitstatus.replace(/\n/g, ' ');
    task.endtime = this.now();
    task.log.push(exitstatus === 'OK' ? 'TASK OK' : /^WARNINGS: /.test(exitstatus) ? `TASK ${exitstatus}` : `TASK ERROR: ${task.exitstatus}`);
  }

  static randomHex(bytes: number): string {
    return randomBytes(bytes).toString('hex');
  }
}
