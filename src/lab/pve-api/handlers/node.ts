/**
 * Node- and cluster-level endpoints: version, node list/status, hardware/pci, storage and its content,
 * cluster/nextid, tasks (list, status, log) and vzdump (backup as a task).
 */
import { dieError, paramError, permError } from '../errors';
import { splitList } from '../formats';
import { checkNode, num, str, type Ctx, type Route } from '../routes';
import { taskLogLines, taskStatus } from '../tasks';
import { ensureStorage } from './lxc-create';

// pve-common UPID.pm decode: hex fields are printed with %08X, so at least 8 digits.
const UPID_RE = /^UPID:[^:]+:[0-9A-F]{8,}:[0-9A-F]{8,}:[0-9A-F]{8,}:[^:]+:[^:]*:[^:]+:$/;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const HOST = { cpus: 32, model: 'AMD Ryzen 9 7950X 16-Core Processor', memTotal: 128 * GiB, bootedAgo: 86400 * 12 };

/** Tasks.pm check_task_user: the task's owner may read it; anyone else needs Sys.Audit on the node. */
function checkTaskUser(ctx: Ctx, owner: string): void {
  if (ctx.caller.privileged || owner === ctx.caller.authid) return;
  throw permError(`/nodes/${ctx.host.state.node.name}, Sys.Audit`);
}

function versionOf(ctx: Ctx): { version: string; release: string; repoid: string } {
  // node.pveManager is `pve-manager/8.4.1/2a5fa54a8503f96d`
  const [, version = '8.4.1', repoid = ''] = ctx.host.state.node.pveManager.split('/');
  return { version, release: version.split('.').slice(0, 2).join('.'), repoid };
}

function pciList(ctx: Ctx): Array<Record<string, unknown>> {
  const blacklist = splitList(str(ctx, 'pci-class-blacklist') ?? '05;06;0b');
  return ctx.host.state.pci
    .filter((d) => !blacklist.some((prefix) => d.classCode.startsWith(prefix)))
    .map((d) => {
      const sub = /\[([0-9a-f]{4}):([0-9a-f]{4})\]\s*$/i.exec(d.subsystem);
      const subName = d.subsystem.replace(/\s*Device\s*\[[0-9a-f:]+\]\s*$/i, '').replace(/\s*\[[0-9a-f:]+\]\s*$/i, '');
      const item: Record<string, unknown> = {
        id: d.bdf,
        class: `0x${d.classCode}00`,
        vendor: `0x${d.vendorId}`,
        device: `0x${d.deviceId}`,
        vendor_name: d.vendorName,
        device_name: d.deviceName,
        subsystem_vendor: `0x${sub?.[1] ?? '0000'}`,
        subsystem_device: `0x${sub?.[2] ?? '0000'}`,
        subsystem_vendor_name: subName,
        iommugroup: d.iommuGroup,
      };
      return item;
    });
}

function storageEntry(ctx: Ctx, sid: string): Record<string, unknown> {
  const st = ctx.host.state.storage.find((s) => s.storage === sid);
  if (!st) throw dieError(`storage '${sid}' does not exist`);
  const used = st.used + st.items.filter((i) => st.type === 'dir' || i.content !== 'vztmpl').reduce((a, i) => a + i.size, 0);
  return {
    storage: st.storage, type: st.type, content: st.content.join(','), active: 1, enabled: 1, shared: 0,
    total: st.total, used, avail: Math.max(0, st.total - used), used_fraction: used / st.total,
  };
}

function vzdump(ctx: Ctx): string {
  checkNode(ctx);
  const { host } = ctx;
  const ids = splitList(str(ctx, 'vmid') ?? '').map(Number);
  if (ids.length === 0 && str(ctx, 'all') !== '1') throw paramError({ vmid: 'property is missing and it is not optional' });
  const storage = str(ctx, 'storage') ?? 'local';
  ensureStorage(host, storage, 'backup');
  const mode = str(ctx, 'mode') ?? 'snapshot';
  const compress = str(ctx, 'compress') ?? '0';
  for (const id of ids) if (!host.guest(id)) throw dieError(`Unable to find VM ${id}`);
  host.record('api', 'vzdump', ids.length === 1 ? ids[0] : undefined, `backup ${ids.join(',')} to ${storage}`);
  return ctx.tasks.start('vzdump', ids.length === 1 ? String(ids[0]) : '', ctx.caller, async (t) => {
    const argv = ['vzdump', ...ids.map(String), '--storage', storage, '--mode', mode, ...(compress !== '0' ? ['--compress', compress] : []), '--node', host.state.node.name];
    t.log(`INFO: starting new backup job: ${argv.join(' ')}`);
    for (const id of ids) {
      const g = host.guest(id);
      if (!g) continue;
      const kind = g.type === 'lxc' ? 'lxc' : 'qemu';
      const stamp = new Date().toISOString().replace(/[-:]/g, '_').replace('T', '-').slice(0, 19);
      const ext = g.type === 'lxc' ? 'tar' : 'vma';
      const suffix = compress === 'zstd' || compress === '1' ? '.zst' : compress === 'gzip' ? '.gz' : compress === 'lzo' ? '.lzo' : '';
      const file = `vzdump-${kind}-${id}-${stamp}.${ext}${suffix}`;
      t.log(`INFO: Starting Backup of VM ${id} (${kind})`);
      t.log(`INFO: Backup started at ${new Date().toISOString().replace('T', ' ').slice(0, 19)}`);
      t.log(`INFO: status = ${g.status}`);
      t.log(`INFO: backup mode: ${g.status === 'running' ? mode : 'stop'}`);
      t.log('INFO: ionice priority: 7');
      if (g.type === 'lxc') t.log(`INFO: CT Name: ${g.config.hostname ?? `CT${id}`}`);
      t.log(`INFO: creating vzdump archive '/var/lib/vz/dump/${file}'`);
      await t.delay(4000);
      const size = 900 * MiB;
      t.log(`INFO: archive file size: ${Math.round(size / MiB)}MB`);
      t.log(`INFO: Finished Backup of VM ${id} (00:00:08)`);
      host.state.storage.find((s) => s.storage === storage)?.items.push({
        volid: `${storage}:backup/${file}`, content: 'backup', format: `${ext}${suffix ? `.${suffix.slice(1)}` : ''}`, size, ctime: host.now(), vmid: id,
      });
    }
    t.log('INFO: Backup job finished successfully');
  });
}

export const nodeRoutes: Route[] = [
  { method: 'GET', path: '/version', handler: (ctx) => versionOf(ctx) },
  {
    method: 'GET', path: '/nodes',
    handler: (ctx) => [{
      node: ctx.host.state.node.name, status: 'online', type: 'node', id: `node/${ctx.host.state.node.name}`, level: '',
      cpu: 0.031, maxcpu: HOST.cpus, mem: 41 * GiB, maxmem: HOST.memTotal, disk: 12 * GiB, maxdisk: 94 * GiB, uptime: HOST.bootedAgo,
    }],
  },
  {
    method: 'GET', path: '/nodes/{node}/status', perm: (p) => [`/nodes/${String(p.node)}`, 'Sys.Audit'],
    handler: (ctx) => {
      checkNode(ctx);
      const n = ctx.host.state.node;
      return {
        // `Linux 6.8.12-9-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-9 (<build time>)`: PMX carries the version without -pve
        pveversion: n.pveManager, kversion: `Linux ${n.kernel} #1 SMP PREEMPT_DYNAMIC PMX ${n.kernel.replace(/-pve$/, '')} (2025-03-13T12:00Z)`,
        'current-kernel': { sysname: 'Linux', release: n.kernel, machine: 'x86_64', version: `#1 SMP PREEMPT_DYNAMIC PMX ${n.kernel.replace(/-pve$/, '')} (2025-03-13T12:00Z)` },
        cpuinfo: { model: HOST.model, cpus: HOST.cpus, sockets: 1, cores: HOST.cpus / 2, mhz: '4500.000', hvm: '1', user_hz: 100, flags: 'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov svm avx2 avx512f' },
        memory: { total: HOST.memTotal, used: 41 * GiB, free: HOST.memTotal - 41 * GiB },
        swap: { total: 8 * GiB, used: 0, free: 8 * GiB },
        rootfs: { total: 94 * GiB, used: 12 * GiB, free: 82 * GiB, avail: 77 * GiB },
        uptime: HOST.bootedAgo, loadavg: ['0.42', '0.51', '0.48'], cpu: 0.031, wait: 0.0004, idle: 0,
        ksm: { shared: 0 }, 'boot-info': { mode: 'efi', secureboot: 0 },
      };
    },
  },
  {
    method: 'GET', path: '/nodes/{node}/hardware/pci', perm: () => ['/', 'Sys.Audit'],
    handler: (ctx) => {
      checkNode(ctx);
      return pciList(ctx);
    },
  },
  {
    method: 'GET', path: '/nodes/{node}/storage',
    handler: (ctx) => {
      checkNode(ctx);
      const want = str(ctx, 'content');
      return ctx.host.state.storage.filter((s) => !want || s.content.includes(want)).map((s) => storageEntry(ctx, s.storage));
    },
  },
  {
    method: 'GET', path: '/nodes/{node}/storage/{storage}/content', perm: (p) => [`/storage/${String(p.storage)}`, 'Datastore.Audit|Datastore.AllocateSpace'],
    handler: (ctx) => {
      checkNode(ctx);
      const sid = str(ctx, 'storage') ?? '';
      storageEntry(ctx, sid);
      const st = ctx.host.state.storage.find((s) => s.storage === sid);
      const content = str(ctx, 'content');
      const vmid = num(ctx, 'vmid');
      return (st?.items ?? [])
        .filter((i) => (!content || i.content === content) && (vmid === undefined || i.vmid === vmid))
        .map((i) => ({ volid: i.volid, content: i.content, format: i.format, size: i.size, ctime: i.ctime, ...(i.vmid !== undefined ? { vmid: i.vmid } : {}) }));
    },
  },
  {
    method: 'GET', path: '/cluster/nextid',
    handler: (ctx) => {
      const want = str(ctx, 'vmid');
      if (want !== undefined) {
        if (ctx.host.guest(Number(want))) throw paramError({ vmid: `VM ${want} already exists` });
        return want;
      }
      for (let id = 100; id < 1000000; id++) if (!ctx.host.guest(id)) return String(id);
      throw dieError('unable to get any free VMID in range [100, 1000000]');
    },
  },
  {
    method: 'GET', path: '/nodes/{node}/tasks',
    handler: (ctx) => {
      checkNode(ctx);
      const vmid = str(ctx, 'vmid');
      const limit = num(ctx, 'limit') ?? 50;
      return ctx.host.state.tasks
        .filter((t) => vmid === undefined || t.id === vmid)
        .slice(-limit)
        .reverse()
        .map((t) => ({ ...taskStatus(t), ...(t.endtime ? { endtime: t.endtime } : {}), status: t.status === 'stopped' ? t.exitstatus : 'running' }));
    },
  },
  {
    method: 'GET', path: '/nodes/{node}/tasks/{upid}/status',
    handler: (ctx) => {
      checkNode(ctx);
      const upid = str(ctx, 'upid') ?? '';
      if (!UPID_RE.test(upid)) throw paramError({ upid: 'unable to parse worker upid' });
      const task = ctx.host.task(upid);
      if (!task) throw paramError({ upid: 'no such task' });
      checkTaskUser(ctx, task.user);
      return taskStatus(task);
    },
  },
  {
    method: 'GET', path: '/nodes/{node}/tasks/{upid}/log',
    handler: (ctx) => {
      checkNode(ctx);
      const upid = str(ctx, 'upid') ?? '';
      if (!UPID_RE.test(upid)) throw paramError({ upid: 'unable to parse worker upid' });
      const task = ctx.host.task(upid);
      if (!task) return [{ n: 1, t: 'unable to open file - No such file or directory' }];
      checkTaskUser(ctx, task.user);
      const { lines, total } = taskLogLines(task, num(ctx, 'start') ?? 0, num(ctx, 'limit') ?? 50);
      ctx.attribs.total = total;
      return lines;
    },
  },
  { method: 'POST', path: '/nodes/{node}/vzdump', perm: (p) => [`/vms/${String(p.vmid)}`, 'VM.Backup'], handler: vzdump },
];
