/**
 * /nodes/{node}/qemu: list, config GET/PUT (sync) and POST (async qmconfig task), status current/start/stop/
 * shutdown. Start/stop/shutdown do all their checks inside the worker, as qemu-server does, so errors such as
 * `VM 151 already running` or a PCI device conflict surface as the task's exitstatus.
 */
import { effectiveConfig } from '../../guest-config';
import { dieError, paramError } from '../errors';
import { splitList } from '../formats';
import { checkNode, flag, isRootPam, str, vmidOf, type Ctx, type Route } from '../routes';
import { qemuStatus } from './guest-info';
import { checkHostpciPerm } from './perms';
import { vmOptionExists } from './lxc-create';

const API_ONLY = new Set(['node', 'vmid', 'digest', 'delete', 'revert', 'skiplock', 'force', 'background_delay']);

function skiplockCheck(ctx: Ctx): void {
  for (const opt of ['skiplock', 'keepActive']) {
    if (flag(ctx, opt) && !isRootPam(ctx)) throw paramError({ [opt]: 'Only root may use this option.' });
  }
}

interface VmUpdate {
  vmid: number;
  set: Record<string, string>;
  del: string[];
  revert: string[];
  digest?: string;
}

/** The part of qemu-server update_vm_api that runs before any worker: option sanity, then load_and_check_config. */
function precheck(ctx: Ctx): VmUpdate {
  const vmid = vmidOf(ctx);
  const set: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.params)) if (!API_ONLY.has(k)) set[k] = Array.isArray(v) ? v.join(',') : v;
  const delStr = str(ctx, 'delete') ?? '';
  const revStr = str(ctx, 'revert') ?? '';
  if (!delStr && !revStr && Object.keys(set).length === 0) throw dieError('no options specified');
  const known = vmOptionExists();
  const revert = splitList(revStr);
  for (const opt of revert) {
    if (!known(opt)) throw paramError({ revert: `unknown option '${opt}'` });
    if (set[opt] !== undefined) throw paramError({ delete: `you can't use '-${opt}' and -revert ${opt}' at the same time` });
  }
  const del = splitList(delStr).map((o) => (o === 'cdrom' ? 'ide2' : o));
  for (const opt of del) {
    // (sic) both messages lack the opening quote before -delete/-revert, as in qemu-server
    if (set[opt] !== undefined) throw paramError({ delete: `you can't use '-${opt}' and -delete ${opt}' at the same time` });
    if (revert.includes(opt)) throw paramError({ revert: `you can't use '-delete ${opt}' and -revert ${opt}' at the same time` });
    if (!known(opt)) throw paramError({ delete: `unknown option '${opt}'` });
  }
  const digest = str(ctx, 'digest') || undefined;
  checkLoaded(ctx, vmid, digest);
  return { vmid, set, del, revert, digest };
}

/** load_and_check_config: the VM must exist, the digest match (qemu-server's own text), no lock. */
function checkLoaded(ctx: Ctx, vmid: number, digest: string | undefined): void {
  const g = ctx.host.requireGuest(vmid, 'qemu');
  if (digest && digest !== ctx.host.digest(vmid)) throw dieError('checksum mismatch (file change by other user?)');
  if (g.config.lock && !flag(ctx, 'skiplock')) throw dieError(`VM is locked (${g.config.lock})`);
}

/** updatefn: re-check under the lock, the root-only hostpci rule, then write (pending when running). */
function update(ctx: Ctx, u: VmUpdate, log?: (line: string) => void): void {
  const { host } = ctx;
  checkLoaded(ctx, u.vmid, u.digest);
  const g = host.requireGuest(u.vmid, 'qemu');
  const paramarr = [...Object.keys(u.set).sort().map((k) => `-${k} ${u.set[k] ?? ''}`), ...(u.del.length ? [`-delete ${u.del.join(',')}`] : [])];
  log?.(`update VM ${u.vmid}: ${paramarr.join(' ')}`);
  const old = effectiveConfig(g);
  for (const opt of u.del) {
    if (/^hostpci\d+$/.test(opt) && old[opt] !== undefined) checkHostpciPerm(ctx.caller.authid, opt, old[opt] ?? '');
  }
  for (const [opt, value] of Object.entries(u.set)) {
    if (!/^hostpci\d+$/.test(opt)) continue;
    if (old[opt] !== undefined) checkHostpciPerm(ctx.caller.authid, opt, old[opt] ?? '');
    checkHostpciPerm(ctx.caller.authid, opt, value);
  }
  if (u.revert.length > 0) {
    for (const opt of u.revert) delete g.pending[opt];
    delete g.raw;
    host.record('api', 'vm.config', u.vmid, `revert ${u.revert.join(',')}`);
  }
  if (Object.keys(u.set).length > 0 || u.del.length > 0) host.updateConfig(u.vmid, 'qemu', u.set, u.del, 'api');
}

function guestTask(ctx: Ctx, type: string, ms: number, act: () => void): string {
  checkNode(ctx);
  skiplockCheck(ctx);
  const vmid = vmidOf(ctx);
  return ctx.tasks.start(type, String(vmid), ctx.caller, async (t) => {
    await t.delay(ms);
    act();
  });
}

export const qemuRoutes: Route[] = [
  {
    method: 'GET', path: '/nodes/{node}/qemu',
    handler: (ctx) => {
      checkNode(ctx);
      // The index lists only guests the caller may audit; a caller without root's privileges sees none.
      if (!ctx.caller.privileged) return [];
      return ctx.host.guests().filter((g) => g.type === 'qemu').map((g) => qemuStatus(ctx.host, g));
    },
  },
  {
    method: 'GET', path: '/nodes/{node}/qemu/{vmid}/config', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.Audit'],
    handler: (ctx) => {
      checkNode(ctx);
      return ctx.host.apiConfig(vmidOf(ctx), 'qemu', flag(ctx, 'current'));
    },
  },
  {
    method: 'PUT', path: '/nodes/{node}/qemu/{vmid}/config', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.Config.Options'],
    handler: (ctx) => {
      checkNode(ctx);
      skiplockCheck(ctx);
      update(ctx, precheck(ctx));
      return null;
    },
  },
  {
    method: 'POST', path: '/nodes/{node}/qemu/{vmid}/config', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.Config.Options'],
    handler: (ctx) => {
      checkNode(ctx);
      skiplockCheck(ctx);
      const u = precheck(ctx);
      return ctx.tasks.start('qmconfig', String(u.vmid), ctx.caller, async (t) => {
        await t.delay(300);
        update(ctx, u, (line) => t.log(line));
      });
    },
  },
  {
    method: 'GET', path: '/nodes/{node}/qemu/{vmid}/status/current', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.Audit'],
    handler: (ctx) => {
      checkNode(ctx);
      const g = ctx.host.requireGuest(vmidOf(ctx), 'qemu');
      const out: Record<string, unknown> = { ...qemuStatus(ctx.host, g), ha: { managed: 0 }, qmpstatus: g.status };
      if (g.status === 'running') {
        const machine = effectiveConfig(g, true).machine ?? 'pc';
        out['running-machine'] = `${machine === 'q35' ? 'pc-q35' : 'pc-i440fx'}-9.0+pve0`;
        out['running-qemu'] = '9.0.2';
      }
      return out;
    },
  },
  {
    method: 'POST', path: '/nodes/{node}/qemu/{vmid}/status/start', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.PowerMgmt'],
    handler: (ctx) => guestTask(ctx, 'qmstart', 3000, () => ctx.host.startGuest(vmidOf(ctx), 'qemu', 'api')),
  },
  {
    method: 'POST', path: '/nodes/{node}/qemu/{vmid}/status/stop', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.PowerMgmt'],
    handler: (ctx) => guestTask(ctx, 'qmstop', 1500, () => ctx.host.stopGuest(vmidOf(ctx), 'qemu', 'api', 'stop')),
  },
  {
    method: 'POST', path: '/nodes/{node}/qemu/{vmid}/status/shutdown', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.PowerMgmt'],
    handler: (ctx) => guestTask(ctx, 'qmshutdown', 5000, () => ctx.host.stopGuest(vmidOf(ctx), 'qemu', 'api', 'shutdown')),
  },
];
