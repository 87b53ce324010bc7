/**
 * `pct`, `qm` and `pveversion` with the output formats and error texts of pve-container 5.x / qemu-server 8.x
 * (see host-commands.md §0.1, §1, §2). Task-style commands print nothing on success; dies go to STDERR.
 */
import { defineCommand } from 'just-bash';
import type { Command } from 'just-bash';
import { LabError } from './host';
import { parseConfigFile, renderCliConfig } from './guest-config';
import { fail, isRoot, ok, parsePveArgs, stdinBytes, type Ctx, type Result } from './cmd-util';
import type { Machine, World } from './world';
import type { Guest } from './state';

const PCT_USAGE: Record<string, string> = {
  list: 'pct list', status: 'pct status <vmid> [OPTIONS]', config: 'pct config <vmid> [OPTIONS]',
  set: 'pct set <vmid> [OPTIONS]', start: 'pct start <vmid> [OPTIONS]', stop: 'pct stop <vmid> [OPTIONS]',
  shutdown: 'pct shutdown <vmid> [OPTIONS]', reboot: 'pct reboot <vmid> [OPTIONS]',
  exec: 'pct exec <vmid> [<extra-args>] [OPTIONS]', push: 'pct push <vmid> <file> <destination> [OPTIONS]',
  create: 'pct create <vmid> <ostemplate> [OPTIONS]', destroy: 'pct destroy <vmid> [OPTIONS]', unlock: 'pct unlock <vmid>',
};
const QM_USAGE: Record<string, string> = {
  list: 'qm list  [OPTIONS]', status: 'qm status <vmid> [OPTIONS]', config: 'qm config <vmid> [OPTIONS]',
  set: 'qm set <vmid> [OPTIONS]', start: 'qm start <vmid> [OPTIONS]', stop: 'qm stop <vmid> [OPTIONS]',
  shutdown: 'qm shutdown <vmid> [OPTIONS]',
};

/** A CT's config options (pct.1): what `pct set` takes, besides delete/revert/digest. */
const CT_CONF = 'arch|cmode|console|cores|cpulimit|cpuunits|debug|description|features|hookscript|hostname|lock|memory|nameserver|onboot|ostype|protection|searchdomain|startup|swap|tags|template|timezone|tty|unprivileged|unused\\d+|rootfs|mp\\d+|net\\d+|dev\\d+';
/** Options per subcommand (pct.1 / qm.1 synopsis); anything else is `Unknown option`. Create-only ones are not `set` options. */
const CT_OPT: Record<string, RegExp> = {
  set: new RegExp(`^(${CT_CONF}|delete|revert|digest)$`),
  create: new RegExp(`^(${CT_CONF}|storage|start|password|ssh-public-keys|pool|force|unique|restore|ignore-unpack-errors|bwlimit)$`),
  config: /^(current|snapshot)$/, status: /^(verbose)$/, start: /^(skiplock|debug)$/, stop: /^(skiplock|overrule-shutdown)$/,
  shutdown: /^(forceStop|timeout)$/, reboot: /^(timeout)$/, exec: /^(keep-env)$/, push: /^(perms|user|group)$/,
  destroy: /^(purge|force|destroy-unreferenced-disks)$/,
};
const VM_OPT: Record<string, RegExp> = {
  set: /^(acpi|agent|balloon|bios|boot|cores|cpu|cpulimit|description|efidisk0|hostpci\d+|machine|memory|name|net\d+|numa|onboot|ostype|protection|scsi\d+|scsihw|smbios1|sockets|startup|tags|vga|vmgenid|delete|revert|digest|skiplock|meta)$/,
  config: /^(current|snapshot)$/, status: /^(verbose)$/, start: /^(skiplock|timeout)$/, stop: /^(skiplock|timeout|keepActive|overrule-shutdown)$/,
  shutdown: /^(forceStop|timeout|keepActive|skiplock)$/, list: /^(full)$/,
};
/** How many positional arguments a subcommand takes (exec passes its extra ones on). */
const POSITIONAL: Record<string, number> = { list: 0, create: 2, push: 3 };

const BOOL = /^(1|0|yes|no|on|off|true|false)$/;
const INT = /^\d+$/;

/** PVE's format checks for the values the deploy sets (400 Parameter verification failed otherwise). */
function checkValue(key: string, v: string): string | null {
  if (/^(onboot|protection|unprivileged|template|start|force)$/.test(key) && !BOOL.test(v)) return `type check ('boolean') failed - got '${v}'`;
  if (/^(cores|cpuunits|swap|sockets)$/.test(key) && !INT.test(v)) return `type check ('integer') failed - got '${v}'`;
  if (key === 'memory') {
    if (!INT.test(v)) return `type check ('integer') failed - got '${v}'`;
    if (Number(v) < 16) return `value must have a minimum value of 16`;
  }
  if (key === 'features') {
    for (const part of v.split(',')) {
      const m = /^(fuse|keyctl|mknod|nesting|force_rw_sys)=(.*)$/.exec(part) ?? /^(mount)=(.*)$/.exec(part);
      if (!m) return `invalid format - format error\nfeatures.${part.split('=')[0]}: property is not defined in schema and the schema does not allow additional properties`;
      if (m[1] !== 'mount' && !BOOL.test(m[2] ?? '')) return `invalid format - format error\nfeatures.${m[1]}: type check ('boolean') failed - got '${m[2]}'`;
    }
  }
  if (/^dev\d+$/.test(key) && !/^(path=)?\/dev\//.test(v)) return `invalid format - format error\n${key}.path: value does not match the regex pattern`;
  return null;
}

const normBool = (v: string): string => (/^(1|yes|on|true)$/.test(v) ? '1' : /^(0|no|off|false)$/.test(v) ? '0' : v);

function usageError(usage: string, msg: string): Result {
  return fail(`400 ${msg}\n${usage}\n`, 255);
}

function paramError(usage: string, errors: Record<string, string>): Result {
  const lines = Object.entries(errors).map(([k, v]) => `${k}: ${v}`).join('\n');
  return fail(`400 Parameter verification failed.\n${lines}\n${usage}\n`, 255);
}

function dieText(e: unknown): Result {
  if (e instanceof LabError) return fail(`${e.message}\n`, e.exitCode);
  throw e;
}

/** Warnings PVE's parser prints (on STDERR) every time it reads a hand-edited config. */
function parseWarnings(g: Guest): string {
  if (g.raw === undefined) return '';
  const w = parseConfigFile(g.vmid, g.type, g.raw).warnings;
  return w.map((l) => `${l}\n`).join('');
}

export function pveCommands(world: World, m: Machine): Command[] {
  if (m.vmid !== null) return [];
  const host = world.host;

  const vmidArg = (p: string[], usage: string): number | Result => {
    const v = p[0];
    if (v === undefined) return usageError(usage, 'not enough arguments');
    if (!/^\d+$/.test(v) || Number(v) < 100) return paramError(usage, { vmid: `type check ('integer') failed - got '${v}'` });
    return Number(v);
  };

  const pct = defineCommand('pct', async (args, ctx): Promise<Result> => {
    // UNVERIFIED text: the PVE CLI needs root to talk to pmxcfs/the ACL.
    if (!isRoot(ctx)) return fail('Unable to load access control list: Permission denied\n', 255);
    const sub = args[0] ?? '';
    const usage = PCT_USAGE[sub];
    if (!usage) return fail(`400 unknown command 'pct ${sub}'\nUSAGE: pct <COMMAND> [ARGS] [OPTIONS]\n`, 255);
    const rest = args.slice(1);
    const pa = parsePveArgs(rest, (n: string) => CT_OPT[sub]?.test(n) ?? false);
    if (pa.unknown.length > 0) return fail(`${pa.unknown.map((u) => `Unknown option: ${u}\n`).join('')}400 unable to parse option\n${usage}\n`, 255);
    if (sub !== 'exec' && pa.positional.length > (POSITIONAL[sub] ?? 1)) return usageError(usage, 'too many arguments');
    if (sub === 'list') return ok(pctList());
    const vmid = vmidArg(pa.positional, usage);
    if (typeof vmid !== 'number') return vmid;
    try {
      switch (sub) {
        case 'status': {
          const g = host.requireGuest(vmid, 'lxc');
          return ok(`status: ${g.status}\n`, parseWarnings(g));
        }
        case 'config': {
          const g = host.requireGuest(vmid, 'lxc');
          return ok(renderCliConfig(g, normBool(pa.opts.current ?? '0') === '1'), parseWarnings(g));
        }
        case 'set': return setGuest('lxc', vmid, pa.opts, usage);
        case 'start': {
          await host.delay(1500);
          host.startGuest(vmid, 'lxc', 'ssh');
          return ok();
        }
        case 'stop': case 'shutdown': {
          host.requireGuest(vmid, 'lxc');
          await host.delay(sub === 'shutdown' ? 2500 : 1000);
          host.stopGuest(vmid, 'lxc', 'ssh', sub);
          return ok();
        }
        case 'reboot': {
          const g = host.requireGuest(vmid, 'lxc');
          if (g.status !== 'running') return fail(`VM ${vmid} not running\n`, 255);
          host.stopGuest(vmid, 'lxc', 'ssh', 'shutdown');
          await host.delay(2000);
          host.startGuest(vmid, 'lxc', 'ssh');
          return ok();
        }
        case 'exec': return pctExec(vmid, pa.extra.length > 0 ? pa.extra : pa.positional.slice(1), ctx);
        case 'push': return pctPush(vmid, pa.positional, pa.opts, ctx, usage);
        case 'create': return pctCreate(vmid, pa.positional[1], pa.opts, usage);
        case 'destroy': {
          await host.delay(1500);
          host.destroyGuest(vmid, 'lxc', 'ssh');
          world.machines.delete(String(vmid));
          return ok(`  Logical volume "vm-${vmid}-disk-0" successfully removed.\n${normBool(pa.opts.purge ?? '0') === '1' ? `purging CT ${vmid} from related configurations..\n` : ''}`);
        }
        case 'unlock': {
          const g = host.requireGuest(vmid, 'lxc');
          if (!g.config.lock) return fail('no lock found trying to remove any lock\n', 255);
          host.updateConfig(vmid, 'lxc', {}, ['lock'], 'ssh');
          return ok();
        }
        default: return fail(`400 unknown command 'pct ${sub}'\n`, 255);
      }
    } catch (e) {
      return dieText(e);
    }
  });

  function pctList(): string {
    const cts = host.guests().filter((g) => g.type === 'lxc');
    if (cts.length === 0) return '';
    const row = (a: string, b: string, c: string, d: string): string => `${a.padEnd(10)} ${b.padEnd(10)} ${c.padEnd(12)} ${d.padEnd(20)}\n`;
    return row('VMID', 'Status', 'Lock', 'Name') + cts.map((g) => row(String(g.vmid), g.status, g.config.lock ?? '', (g.config.hostname ?? `CT${g.vmid}`).replace(/\s/g, ''))).join('');
  }

  function setGuest(type: Guest['type'], vmid: number, opts: Record<string, string>, usage: string): Result {
    const g = host.requireGuest(vmid, type);
    const { delete: del, digest, revert: _revert, skiplock: _skip, ...set } = opts;
    if (Object.keys(set).length === 0 && !del) return fail('no options specified\n', 255);
    const errors: Record<string, string> = {};
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(set)) {
      const err = checkValue(k, v);
      if (err) errors[k] = err;
      else values[k] = /^(onboot|protection|unprivileged|template)$/.test(k) ? normBool(v) : v;
    }
    const dels = (del ?? '').split(/[,;\s]+/).filter(Boolean);
    const valid = (type === 'lxc' ? CT_OPT : VM_OPT).set as RegExp;
    for (const d of dels) if (!valid.test(d) || /^(delete|revert|digest)$/.test(d)) errors.delete = `unknown option '${d}'`;
    if (type === 'lxc' && dels.includes('rootfs')) return fail("unable to delete required option 'rootfs'\n", 255);
    if (Object.keys(errors).length > 0) return paramError(usage, errors);
    const warnings = host.updateConfig(vmid, type, values, dels, 'ssh', digest);
    const stderr = warnings.map((w) => `${w}\n`).join('');
    if (type === 'qemu') {
      const parts = Object.keys(values).sort().map((k) => `-${k} ${values[k]}`);
      if (dels.length) parts.unshift(`-delete ${dels.join(',')}`);
      const all = [...parts].sort();
      return ok(`update VM ${vmid}: ${all.join(' ')}\n`, stderr);
    }
    void g;
    return ok('', stderr);
  }

  async function pctExec(vmid: number, argv: string[], ctx: Ctx): Promise<Result> {
    const g = host.requireGuest(vmid, 'lxc');
    if (g.status !== 'running') return fail(`container '${vmid}' not running!\n`, 255);
    if (argv.length === 0) return fail('missing command at /usr/share/perl5/PVE/CLI/pct.pm line 254.\n', 255);
    const ct = world.machine(String(vmid));
    if (!ct) return fail(`container '${vmid}' not running!\n`, 255);
    // --keep-env 1 (PVE 8 default): the caller's environment goes into the CT; HOME stays root's.
    const env: Record<string, string> = { ...Object.fromEntries(ctx.env), USER: 'root', HOME: '/root', LOGNAME: 'root' };
    // lxc-attach execs argv itself (host-commands.md §1.7: no shell); its message when there is no such program is
    // the reference's (unverified there), its status execvp's ENOENT 127.
    const res = await world.runProgram(ct, argv, { stdin: stdinBytes(ctx), env, cwd: '/' });
    if (!('notFound' in res)) return res;
    return fail(`lxc-attach: ${vmid}: ../src/lxc/attach.c: lxc_attach_run_command: 1841 No such file or directory - Failed to exec "${res.notFound}"\n`, 127);
  }

  async function pctPush(vmid: number, pos: string[], opts: Record<string, string>, ctx: Ctx, usage: string): Promise<Result> {
    const [, file, dest] = pos;
    if (file === undefined || dest === undefined) return usageError(usage, 'not enough arguments');
    const g = host.requireGuest(vmid, 'lxc');
    if (g.status !== 'running') return fail('can only push files to a running CT\n', 255);
    let content: Uint8Array;
    try {
      content = await ctx.fs.readFileBuffer(ctx.fs.resolvePath(ctx.cwd, file));
    } catch {
      return fail(`failed to open ${file} for reading\n`, 0); // inside the worker, and push has no upid_exit
    }
    const ct = world.machine(String(vmid));
    if (!ct) return fail('can only push files to a running CT\n', 255);
    const dir = dest.replace(/\/[^/]*$/, '') || '/';
    if (!(await ct.fs.exists(dir))) return fail(`failed to create file: ${dest}: No such file or directory\n`, 0);
    await ct.fs.writeFile(dest, content);
    if (opts.perms) {
      const perms = opts.perms.startsWith('0') ? opts.perms : `0${opts.perms}`;
      if (!/^0[0-7]{1,4}$/.test(perms)) return fail(`invalid mode: '${opts.perms}'\n`, 0);
      await ct.fs.chmod(dest, parseInt(perms, 8));
    }
    host.record('ssh', 'pct push', vmid, dest);
    return ok();
  }

  async function pctCreate(vmid: number, template: string | undefined, opts: Record<string, string>, usage: string): Promise<Result> {
    if (template === undefined) return usageError(usage, 'not enough arguments');
    const errors: Record<string, string> = {};
    // `--storage` (default `local`) only matters when rootfs names no storage of its own.
    const storage = /^([\w-]+):\d+/.exec(opts.rootfs ?? '')?.[1] ?? opts.storage ?? 'local';
    const tpl = host.state.storage.flatMap((s) => s.items).find((i) => i.volid === template && i.content === 'vztmpl');
    if (!tpl) return fail(`unable to create CT ${vmid} - volume '${template}' does not exist\n`, 255);
    const st = host.state.storage.find((s) => s.storage === storage);
    if (!st) errors.storage = `storage '${storage}' does not exist`;
    else if (!st.content.includes('rootdir')) errors.storage = `storage '${storage}' does not support container directories`;
    const config: Record<string, string> = { arch: 'amd64', ostype: 'debian' };
    for (const [k, v] of Object.entries(opts)) {
      if (/^(storage|start|password|ssh-public-keys|pool|unique|restore|force|ignore-unpack-errors|digest)$/.test(k)) continue;
      const err = checkValue(k, v);
      if (err) errors[k] = err;
      else config[k] = /^(onboot|protection|unprivileged|template)$/.test(k) ? normBool(v) : v;
    }
    if (Object.keys(errors).length > 0) return paramError(usage, errors);
    const sizeSpec = /^([\w-]+):(\d+)$/.exec(config.rootfs ?? '');
    const rootStorage = sizeSpec?.[1] ?? storage;
    const sizeG = sizeSpec?.[2] ?? '8';
    config.rootfs = `${rootStorage}:vm-${vmid}-disk-0,size=${sizeG}G`;
    if (!config.memory) config.memory = '512';
    if (!config.swap) config.swap = '512';
    if (!config.hostname) config.hostname = `CT${vmid}`;
    host.createCt(vmid, config, 'ssh');
    const st2 = host.state.storage.find((s) => s.storage === rootStorage);
    st2?.items.push({ volid: `${rootStorage}:vm-${vmid}-disk-0`, content: 'rootdir', format: 'raw', size: Number(sizeG) * 1073741824, ctime: host.now(), vmid });
    world.createMachine(String(vmid));
    await host.delay(4000);
    let out = `Logical volume "vm-${vmid}-disk-0" created.\n`;
    out += `Creating filesystem with ${Number(sizeG) * 262144} 4k blocks and ${Number(sizeG) * 65536} inodes\n`;
    out += `Filesystem UUID: ${cryptoUuid()}\nSuperblock backups stored on blocks: \n\t32768, 98304, 163840, 229376, 294912, 819200, 884736, 1605632\n`;
    out += `extracting archive '/var/lib/vz/template/cache/${template.replace(/^.*\//, '')}'\n`;
    out += 'Total bytes read: 523837440 (500MiB, 142MiB/s)\nDetected container architecture: amd64\n';
    for (const k of ['rsa', 'dsa', 'ecdsa', 'ed25519']) {
      out += `Creating SSH host key 'ssh_host_${k}_key' - this may take some time ...\ndone: SHA256:${Buffer.from(cryptoUuid()).toString('base64').slice(0, 43)} root@localhost\n`;
    }
    if (normBool(opts.start ?? '0') === '1') host.startGuest(vmid, 'lxc', 'ssh');
    return ok(out);
  }

  const qm = defineCommand('qm', async (args, ctx): Promise<Result> => {
    if (!isRoot(ctx)) return fail('Unable to load access control list: Permission denied\n', 255);
    const sub = args[0] ?? '';
    const usage = QM_USAGE[sub];
    if (!usage) return fail(`400 unknown command 'qm ${sub}'\nUSAGE: qm <COMMAND> [ARGS] [OPTIONS]\n`, 255);
    const pa = parsePveArgs(args.slice(1), (n) => VM_OPT[sub]?.test(n) ?? false);
    if (pa.unknown.length > 0) return fail(`${pa.unknown.map((u) => `Unknown option: ${u}\n`).join('')}400 unable to parse option\n${usage}\n`, 255);
    if (pa.positional.length > (POSITIONAL[sub] ?? 1)) return usageError(usage, 'too many arguments');
    if (sub === 'list') return ok(qmList());
    const vmid = vmidArg(pa.positional, usage);
    if (typeof vmid !== 'number') return vmid;
    try {
      switch (sub) {
        case 'status': return ok(`status: ${host.requireGuest(vmid, 'qemu').status}\n`);
        case 'config': return ok(renderCliConfig(host.requireGuest(vmid, 'qemu'), normBool(pa.opts.current ?? '0') === '1'));
        case 'set': return setGuest('qemu', vmid, pa.opts, usage);
        case 'start': {
          host.requireGuest(vmid, 'qemu');
          await host.delay(3000);
          host.startGuest(vmid, 'qemu', 'ssh');
          return ok();
        }
        case 'stop': case 'shutdown': {
          const g = host.requireGuest(vmid, 'qemu');
          if (g.status === 'running') await host.delay(sub === 'shutdown' ? 5000 : 1500);
          host.stopGuest(vmid, 'qemu', 'ssh', sub);
          return ok();
        }
        default: return fail(`400 unknown command 'qm ${sub}'\n`, 255);
      }
    } catch (e) {
      return dieText(e);
    }
  });

  function qmList(): string {
    const vms = host.guests().filter((g) => g.type === 'qemu');
    if (vms.length === 0) return '';
    const row = (a: string, b: string, c: string, d: string, e: string, f: string): string =>
      `${a.padStart(10)} ${b.padEnd(20)} ${c.padEnd(10)} ${d.padEnd(10)} ${e.padStart(12)} ${f.padEnd(10)}\n`;
    let out = row('VMID', 'NAME', 'STATUS', 'MEM(MB)', 'BOOTDISK(GB)', 'PID');
    for (const g of vms) {
      const disk = /size=(\d+)G/.exec(g.config.scsi0 ?? g.config.virtio0 ?? g.config.sata0 ?? '')?.[1] ?? '0';
      out += row(String(g.vmid), g.config.name ?? `VM${g.vmid}`, g.status, g.config.memory ?? '512', Number(disk).toFixed(2), String(g.pid || 0));
    }
    return out;
  }

  const pveversion = defineCommand('pveversion', async () => ok(`${host.state.node.pveManager} (running kernel: ${host.state.node.kernel})\n`));

  return [pct, qm, pveversion];
}

function cryptoUuid(): string {
  return (globalThis.crypto as { randomUUID(): string }).randomUUID();
}
