/**
 * /nodes/{node}/lxc: list, create (vzcreate task), config GET/PUT, status current/start/stop/shutdown/reboot,
 * destroy. Checks run in PVE's order and with its texts (pve-container API2/LXC.pm, API2/LXC/Config.pm,
 * API2/LXC/Status.pm); the host model (LabHost) applies the change so `pct` over SSH sees the same state.
 */
import { effectiveConfig } from '../../guest-config';
import type { LabHost } from '../../host';
import { dieError, paramError } from '../errors';
import { splitList } from '../formats';
import { checkNode, flag, isRootPam, str, vmidOf, type Ctx, type Route } from '../routes';
import type { TaskContext } from '../tasks';
import { lxcStatus } from './guest-info';
import { checkCtModifyPerm } from './perms';
import { configOptionKeys, createLog, ensureStorage, normalizeNet } from './lxc-create';

const VMS = (p: Record<string, unknown>): [string, string] => [`/vms/${String(p.vmid)}`, 'VM.Audit'];

/** Create-only parameters: they steer the creation and are never written into the config. */
const CREATE_ONLY = new Set(['node', 'vmid', 'ostemplate', 'password', 'ssh-public-keys', 'start', 'storage', 'force', 'unique',
  'pool', 'restore', 'ignore-unpack-errors', 'bwlimit', 'ha-managed', 'unprivileged']);
const NEW_DISK = /^(?:([^/:\s]+):)?(\d+(?:\.\d+)?)$/;

function skiplockCheck(ctx: Ctx): void {
  if (flag(ctx, 'skiplock') && !isRootPam(ctx)) throw paramError({ skiplock: 'Only root may use this option.' });
}

function isRunningCt(host: LabHost, vmid: number): boolean {
  const g = host.guest(vmid);
  return g?.type === 'lxc' && g.status === 'running';
}

/** `STORAGE:SIZE` → a new volume `STORAGE:vm-<id>-disk-<n>,size=<SIZE>G` on that storage. */
function allocateVolumes(host: LabHost, vmid: number, conf: Record<string, string>, defaultStorage: string): Array<{ sid: string; name: string; bytes: number }> {
  const allocated: Array<{ sid: string; name: string; bytes: number }> = [];
  let n = 0;
  for (const key of ['rootfs', ...Object.keys(conf).filter((k) => /^mp\d+$/.test(k)).sort()]) {
    const spec = conf[key];
    if (spec === undefined) continue;
    const [first = '', ...rest] = spec.split(',');
    const volume = first.replace(/^volume=/, '');
    const m = NEW_DISK.exec(volume);
    if (!m) continue;
    const sid = m[1] ?? defaultStorage;
    ensureStorage(host, sid, 'rootdir');
    const name = `vm-${vmid}-disk-${n}`;
    n += 1;
    const gib = Number(m[2]);
    allocated.push({ sid, name, bytes: Math.round(gib * 1024 ** 3) });
    conf[key] = [`${sid}:${name}`, ...rest.filter((o) => !o.startsWith('size=')), `size=${gib}G`].join(',');
  }
  return allocated;
}

async function createCt(ctx: Ctx): Promise<string> {
  checkNode(ctx);
  const { host } = ctx;
  const vmid = vmidOf(ctx);
  const existing = host.guest(vmid);
  if (existing) {
    throw dieError(`${existing.type === 'qemu' ? 'VM' : 'CT'} ${vmid} already exists on node '${host.state.node.name}'`);
  }
  const unprivileged = str(ctx, 'unprivileged') !== '0'; // create defaults to unprivileged
  const conf: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.params)) if (!CREATE_ONLY.has(k)) conf[k] = Array.isArray(v) ? v.join(',') : v;
  checkCtModifyPerm(ctx.caller.authid, undefined, conf, [], unprivileged);

  const storage = str(ctx, 'storage') ?? 'local';
  if (conf.rootfs === undefined) conf.rootfs = `${storage}:4`; // pve-container default: 4 GiB on `storage`
  if (Object.keys(conf).some((k) => /^mp\d+$/.test(k)) && ctx.params.rootfs === undefined) {
    throw dieError("mount points configured, but 'rootfs' not set - aborting");
  }
  const volumes = allocateVolumes(host, vmid, conf, storage);
  for (const key of Object.keys(conf)) if (/^net\d+$/.test(key)) conf[key] = normalizeNet(conf[key] ?? '');
  const ostemplate = str(ctx, 'ostemplate') ?? '';
  conf.arch = conf.arch ?? 'amd64';
  conf.ostype = conf.ostype ?? (/(debian|ubuntu|alpine|centos|fedora|archlinux|devuan|opensuse|gentoo)/.exec(ostemplate)?.[1] ?? 'unmanaged');
  if (unprivileged) conf.unprivileged = '1';
  const startAfter = flag(ctx, 'start');

  const g = host.createCt(vmid, conf, 'api');
  g.config.lock = 'create';
  return ctx.tasks.start('vzcreate', String(vmid), ctx.caller, async (t: TaskContext) => {
    try {
      await createLog(host, t, vmid, ostemplate, volumes);
    } catch (err) {
      delete g.config.lock;
      host.destroyGuest(vmid, 'lxc', 'api'); // PVE removes the half-made config on failure
      throw err;
    }
    // create_vm sets these defaults when the worker finishes (after OS detection)
    if (!g.config.hostname) g.config.hostname = `CT${vmid}`;
    if (!g.config.memory || g.config.memory === '0') g.config.memory = '512';
    if (g.config.swap === undefined) g.config.swap = '512';
    delete g.config.lock;
    delete g.raw;
    if (startAfter) {
      await t.delay(1500);
      host.startGuest(vmid, 'lxc', 'api');
    }
  });
}

function putConfig(ctx: Ctx): null {
  checkNode(ctx);
  const { host } = ctx;
  const vmid = vmidOf(ctx);
  const set: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.params)) {
    if (['node', 'vmid', 'digest', 'delete', 'revert'].includes(k)) continue;
    set[k] = Array.isArray(v) ? v.join(',') : v;
  }
  const del = splitList(str(ctx, 'delete') ?? '');
  const revert = splitList(str(ctx, 'revert') ?? '');
  if (Object.keys(set).length === 0 && del.length === 0 && revert.length === 0 && str(ctx, 'delete') === undefined && str(ctx, 'revert') === undefined) {
    throw dieError('no options specified');
  }
  const g = host.requireGuest(vmid, 'lxc');
  if (g.config.lock) throw dieError(`CT is locked (${g.config.lock})`);
  const digest = str(ctx, 'digest');
  if (digest && digest !== host.digest(vmid)) throw dieError('detected modified configuration - file changed by other user? Try again.');
  const old = effectiveConfig(g);
  const unprivileged = g.config.unprivileged === '1';
  checkCtModifyPerm(ctx.caller.authid, old, {}, del, unprivileged);
  checkCtModifyPerm(ctx.caller.authid, old, {}, revert, unprivileged);
  const known = configOptionKeys();
  for (const opt of revert) {
    if (!known(opt)) throw paramError({ revert: `unknown option '${opt}'` });
    if (set[opt] !== undefined) throw paramError({ revert: `you can't use '-${opt}' and '-revert ${opt}' at the same time` });
  }
  for (const opt of del) {
    if (!known(opt)) throw paramError({ delete: `unknown option '${opt}'` });
    // (sic) the missing quote is in pve-container's message
    if (set[opt] !== undefined) throw paramError({ delete: `you can't use '-${opt}' and -delete ${opt}' at the same time` });
    if (revert.includes(opt)) throw paramError({ delete: `you can't use '-delete ${opt}' and '-revert ${opt}' at the same time` });
    if (opt === 'rootfs') throw dieError(`unable to delete required option '${opt}'`);
  }
  checkCtModifyPerm(ctx.caller.authid, old, set, [], unprivileged);
  for (const key of Object.keys(set)) if (/^net\d+$/.test(key)) set[key] = normalizeNet(set[key] ?? '', old[key]);
  if (revert.length > 0) {
    for (const opt of revert) delete g.pending[opt];
    const pendingDel = splitList(g.pending.delete ?? '').filter((k) => !revert.includes(k));
    if (pendingDel.length > 0) g.pending.delete = pendingDel.join(',');
    else delete g.pending.delete;
    delete g.raw;
    host.record('api', 'ct.config', vmid, `revert ${revert.join(',')}`);
  }
  if (Object.keys(set).length > 0 || del.length > 0) host.updateConfig(vmid, 'lxc', set, del, 'api', digest || undefined);
  return null;
}

function startCt(ctx: Ctx): string {
  checkNode(ctx);
  skiplockCheck(ctx);
  const vmid = vmidOf(ctx);
  if (isRunningCt(ctx.host, vmid)) throw dieError(`CT ${vmid} already running`);
  return ctx.tasks.start('vzstart', String(vmid), ctx.caller, async (t) => {
    await t.delay(1500);
    ctx.host.startGuest(vmid, 'lxc', 'api');
  });
}

function stopCt(ctx: Ctx, mode: 'stop' | 'shutdown'): string {
  checkNode(ctx);
  skiplockCheck(ctx);
  const vmid = vmidOf(ctx);
  // check_running only: a CT that does not exist is simply "not running" here
  if (!isRunningCt(ctx.host, vmid)) throw dieError(`CT ${vmid} not running`);
  return ctx.tasks.start(mode === 'stop' ? 'vzstop' : 'vzshutdown', String(vmid), ctx.caller, async (t) => {
    await t.delay(mode === 'stop' ? 1000 : 2500);
    ctx.host.stopGuest(vmid, 'lxc', 'api', mode);
  });
}

function rebootCt(ctx: Ctx): string {
  checkNode(ctx);
  const vmid = vmidOf(ctx);
  if (!isRunningCt(ctx.host, vmid)) throw dieError(`VM ${vmid} not running`); // (sic) "VM" in vm_reboot
  return ctx.tasks.start('vzreboot', String(vmid), ctx.caller, async (t) => {
    await t.delay(2500);
    ctx.host.stopGuest(vmid, 'lxc', 'api', 'shutdown');
    await t.delay(2000);
    ctx.host.startGuest(vmid, 'lxc', 'api');
  });
}

function destroyCt(ctx: Ctx): string {
  checkNode(ctx);
  const { host } = ctx;
  const vmid = vmidOf(ctx);
  const g = host.requireGuest(vmid, 'lxc');
  if (g.config.protection === '1') throw dieError(`can't remove CT ${vmid} - protection mode enabled`);
  const force = flag(ctx, 'force');
  if (g.status === 'running' && !force) throw dieError(`unable to destroy CT ${vmid} - container is running`);
  const volumes = Object.entries(g.config)
    .filter(([k]) => k === 'rootfs' || /^mp\d+$/.test(k))
    .map(([, v]) => (v.split(',')[0] ?? '').replace(/^volume=/, ''))
    .filter((v) => /^local-lvm:/.test(v));
  return ctx.tasks.start('vzdestroy', String(vmid), ctx.caller, async (t) => {
    if (g.status === 'running') {
      t.warn(`forced to stop CT ${vmid} before destroying!`);
      await t.delay(1000);
      host.stopGuest(vmid, 'lxc', 'api');
    }
    await t.delay(1200);
    for (const v of volumes) t.log(`  Logical volume "${v.replace(/^local-lvm:/, '')}" successfully removed.`);
    if (flag(ctx, 'purge')) t.log(`purging CT ${vmid} from related configurations..`);
    host.destroyGuest(vmid, 'lxc', 'api');
  });
}

export const lxcRoutes: Route[] = [
  {
    method: 'GET', path: '/nodes/{node}/lxc',
    handler: (ctx) => {
      checkNode(ctx);
      // The index lists only guests the caller may audit; a caller without root's privileges sees none.
      if (!ctx.caller.privileged) return [];
      return ctx.host.guests().filter((g) => g.type === 'lxc').map((g) => lxcStatus(ctx.host, g));
    },
  },
  { method: 'POST', path: '/nodes/{node}/lxc', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.Allocate'], handler: createCt },
  {
    method: 'GET', path: '/nodes/{node}/lxc/{vmid}/config', perm: VMS,
    handler: (ctx) => {
      checkNode(ctx);
      return ctx.host.apiConfig(vmidOf(ctx), 'lxc', flag(ctx, 'current'));
    },
  },
  {
    method: 'PUT', path: '/nodes/{node}/lxc/{vmid}/config',
    perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.Config.Disk|VM.Config.CPU|VM.Config.Memory|VM.Config.Network|VM.Config.Options'],
    handler: putConfig,
  },
  {
    method: 'GET', path: '/nodes/{node}/lxc/{vmid}/status/current', perm: VMS,
    handler: (ctx) => {
      checkNode(ctx);
      const g = ctx.host.requireGuest(vmidOf(ctx), 'lxc');
      return { ...lxcStatus(ctx.host, g), ha: { managed: 0 } };
    },
  },
  { method: 'POST', path: '/nodes/{node}/lxc/{vmid}/status/start', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.PowerMgmt'], handler: startCt },
  { method: 'POST', path: '/nodes/{node}/lxc/{vmid}/status/stop', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.PowerMgmt'], handler: (ctx) => stopCt(ctx, 'stop') },
  { method: 'POST', path: '/nodes/{node}/lxc/{vmid}/status/shutdown', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.PowerMgmt'], handler: (ctx) => stopCt(ctx, 'shutdown') },
  { method: 'POST', path: '/nodes/{node}/lxc/{vmid}/status/reboot', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.PowerMgmt'], handler: rebootCt },
  { method: 'DELETE', path: '/nodes/{node}/lxc/{vmid}', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.Allocate'], handler: destroyCt },
];
