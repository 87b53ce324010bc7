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

const API_ONLY = new Set(['node', 'vmid', 'digest', 'delete', 'revert', 'skiplock', 'force', 'background_delay']);

function skiplockCheck(ctx: Ctx): void {
  if (flag(ctx, 'skiplock') && !isRootPam(ctx)) throw paramError({ skiplock: 'Only root may use this option.' });
}

/** The update_vm checks and write; shared by PUT (answered directly) and POST (run in a qmconfig worker). */
function applyConfig(ctx: Ctx): void {
  const { host } = ctx;
  const vmid = vmidOf(ctx);
  const set: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.params)) if (!API_ONLY.has(k)) set[k] = Array.isArray(v) ? v.join(',') : v;
  const del = splitList(str(ctx, 'delete') ?? '');
  const g = host.requireGuest(vmid, 'qemu');
  if (g.config.lock && !flag(ctx, 'skiplock')) throw dieError(`VM is locked (${g.config.lock})`);
  const digest = str(ctx, 'digest');
  if (digest && digest !== host.digest(vmid)) throw dieError('detected modified configuration - file changed by other user? Try again.');
  const old = effectiveConfig(g);
  for (const opt of del) {
    if (set[opt] !== undefined) throw paramError({ delete: `you can't use '-${opt}' and -delete ${opt}' at the same time` });
    if (/^hostpci\d+$/.test(opt) && old[opt] !== undefined) checkHostpciPerm(ctx.caller.authid, opt, old[opt] ?? '');
  }
  for (const [opt, value] of Object.entries(set)) {
    if (!/^hostpci\d+$/.test(opt)) continue;
    if (old[opt] !== undefined) checkHostpciPerm(ctx.caller.authid, opt, old[opt] ?? '');
    checkHostpciPerm(ctx.caller.authid, opt, value);
  }
  if (Object.keys(set).length === 0 && del.length === 0) return;
  host.updateConfig(vmid, 'qemu', set, del, 'api', digest || undefined);
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
      applyConfig(ctx);
      return null;
    },
  },
  {
    method: 'POST', path: '/nodes/{node}/qemu/{vmid}/config', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.Config.Options'],
    handler: (ctx) => {
      checkNode(ctx);
      skiplockCheck(ctx);
      return ctx.tasks.start('qmconfig', String(vmidOf(ctx)), ctx.caller, async (t) => {
        await t.delay(300);
        applyConfig(ctx);
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
    handler: (ctx) => guestTask(ctx, 'qmshutdown', 6000, () => ctx.host.stopGuest(vmidOf(ctx), 'qemu', 'api', 'shutdown')),
  },
];
