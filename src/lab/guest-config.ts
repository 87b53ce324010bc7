/**
 * Guest config files as PVE writes and parses them (pve-container `write_pct_config`/`parse_pct_config`,
 * qemu-server `write_vm_config`): one rendering feeds `/etc/pve/...conf`, `pct/qm config` and the API GET.
 * The digest is sha1 hex of the raw file text, exactly what PVE puts in `digest`.
 */
import { createHash } from 'node:crypto';
import type { Guest } from './state';

/** PVE::Tools::encode_text: escape control/high-bit chars, `:` and `%` as %XX. */
export function encodeText(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\uffff:%]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export function decodeText(s: string): string {
  return s.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function section(conf: Record<string, string>): string {
  let raw = '';
  for (const key of Object.keys(conf).sort()) {
    if (key === 'digest' || key === 'description') continue;
    raw += `${key}: ${conf[key]}\n`;
  }
  return raw;
}

/** Render the normalized config file PVE writes after any PVE-side change. */
export function renderConfigFile(g: Guest): string {
  let raw = '';
  const descr = g.config.description ?? '';
  for (const line of descr.split('\n')) if (descr !== '') raw += `#${encodeText(line)}\n`;
  raw += section(g.config);
  for (const [k, v] of g.lxc) raw += `${k}: ${v}\n`;
  if (Object.keys(g.pending).length > 0) {
    raw += g.type === 'lxc' ? '\n[pve:pending]\n' : '\n[PENDING]\n';
    raw += section(g.pending);
  }
  return raw;
}

/** The text of the config file as it is now: the raw bytes last written by hand, else the normalized render. */
export function configFileText(g: Guest): string {
  return g.raw ?? renderConfigFile(g);
}

export function configDigest(g: Guest): string {
  return createHash('sha1').update(configFileText(g)).digest('hex');
}

/**
 * The effective config map (pending merged in unless `current`), as `pct config` / `qm config` / GET config
 * show it. Keys sorted; raw lxc lines are returned separately.
 */
export function effectiveConfig(g: Guest, current = false): Record<string, string> {
  const out: Record<string, string> = { ...g.config };
  if (!current) {
    for (const [k, v] of Object.entries(g.pending)) if (k !== 'delete') out[k] = v;
    for (const k of (g.pending.delete ?? '').split(',').filter(Boolean)) delete out[k];
  }
  return out;
}

/** `pct config` / `qm config` stdout. */
export function renderCliConfig(g: Guest, current = false): string {
  const conf = effectiveConfig(g, current);
  let out = '';
  for (const k of Object.keys(conf).sort()) {
    const v = k === 'description' ? encodeText(conf[k] ?? '') : conf[k];
    out += `${k}: ${v}\n`;
  }
  if (g.type === 'lxc') for (const [k, v] of g.lxc) out += `${k}: ${v}\n`;
  return out;
}

// pve-container LXC/Config.pm: keys accepted verbatim besides the cgroup/prlimit/net families.
const VALID_LXC_KEYS: Record<string, true | string> = {
  'lxc.apparmor.profile': true, 'lxc.apparmor.allow_incomplete': true, 'lxc.apparmor.allow_nesting': true,
  'lxc.apparmor.raw': true, 'lxc.selinux.context': true, 'lxc.include': true, 'lxc.arch': true,
  'lxc.uts.name': 'hostname is auto generated from hostname', 'lxc.signal.halt': true, 'lxc.signal.reboot': true,
  'lxc.signal.stop': true, 'lxc.init.cmd': true, 'lxc.pty.max': true, 'lxc.console.logfile': true,
  'lxc.console.path': true, 'lxc.tty.max': true, 'lxc.devtty.dir': true, 'lxc.hook.autodev': true, 'lxc.autodev': true,
  'lxc.kmsg': true, 'lxc.mount.fstab': true, 'lxc.mount.entry': true, 'lxc.mount.auto': true,
  'lxc.rootfs.path': 'lxc.rootfs.path is auto generated from rootfs', 'lxc.rootfs.mount': true,
  'lxc.rootfs.options': 'lxc.rootfs.options is not supported, please use mount point options in the "rootfs" key',
  'lxc.cap.drop': true, 'lxc.cap.keep': true, 'lxc.seccomp.profile': true, 'lxc.idmap': true,
  'lxc.hook.pre-start': true, 'lxc.hook.pre-mount': true, 'lxc.hook.mount': true, 'lxc.hook.start': true,
  'lxc.hook.stop': true, 'lxc.hook.post-stop': true, 'lxc.hook.clone': true, 'lxc.hook.destroy': true,
  'lxc.start.auto': true, 'lxc.start.delay': true, 'lxc.start.order': true, 'lxc.group': true,
  'lxc.environment': true, 'lxc.log.level': true, 'lxc.log.file': true, 'lxc.monitor.unshare': true,
};
const DEPRECATED_LXC_KEYS: Record<string, string> = {
  'lxc.aa_profile': 'lxc.apparmor.profile', 'lxc.init_cmd': 'lxc.init.cmd', 'lxc.id_map': 'lxc.idmap',
  'lxc.mount': 'lxc.mount.fstab', 'lxc.tty': 'lxc.tty.max', 'lxc.pts': 'lxc.pty.max', 'lxc.utsname': 'lxc.uts.name',
  'lxc.rootfs': 'lxc.rootfs.path', 'lxc.console': 'lxc.console.path', 'lxc.haltsignal': 'lxc.signal.halt',
};

/** is_valid_lxc_conf_key: true, or the error text PVE warns with. `null` = plainly unknown. */
export function lxcKeyValidity(key: string): true | string | null {
  if (/^lxc\.(cgroup2?|prlimit|net|sysctl)\./.test(key)) return true;
  const v = VALID_LXC_KEYS[key];
  if (v !== undefined) return v;
  return null;
}

/** Option keys a CT config may hold (pct.conf.5); anything else is "unable to parse config". */
const CT_KEY = /^(arch|cmode|console|cores|cpulimit|cpuunits|debug|description|entrypoint|env|features|hookscript|hostname|lock|memory|nameserver|onboot|ostype|protection|searchdomain|startup|swap|tags|template|timezone|tty|unprivileged|unused\d+|rootfs|mp\d+|net\d+|dev\d+|parent|snaptime|digest)$/;

export interface ParsedConfig {
  config: Record<string, string>;
  lxc: Array<[string, string]>;
  pending: Record<string, string>;
  warnings: string[]; // PVE prints these on STDERR on every read of the file
}

/** parse_pct_config / parse_vm_config, reduced to what the lab needs. Bad lines are warned about and skipped. */
export function parseConfigFile(vmid: number, type: Guest['type'], raw: string): ParsedConfig {
  const res: ParsedConfig = { config: {}, lxc: [], pending: {}, warnings: [] };
  let target = res.config;
  let inPending = false;
  let skipping = false;
  const descr: string[] = [];
  for (const line of raw.split('\n')) {
    if (/^\s*$/.test(line)) continue;
    const sect = /^\[([a-z][a-z0-9_\-:]*)\]\s*$/i.exec(line);
    if (sect) {
      const name = sect[1] ?? '';
      if ((type === 'lxc' && name === 'pve:pending') || (type === 'qemu' && name.toUpperCase() === 'PENDING')) {
        target = res.pending; inPending = true; skipping = false;
      } else {
        skipping = true; // snapshots / special sections: not modelled, kept out of the current config
      }
      continue;
    }
    if (skipping) continue;
    const comment = /^#(.*)$/.exec(line);
    if (comment) { if (!inPending) descr.push(decodeText(comment[1] ?? '')); continue; }
    const lxcLine = type === 'lxc' ? /^(lxc\.[a-z0-9_\-.]+)(:|\s*=)\s*(.*?)\s*$/.exec(line) : null;
    if (lxcLine) {
      let key = lxcLine[1] ?? '';
      const value = lxcLine[3] ?? '';
      const renamed = DEPRECATED_LXC_KEYS[key];
      if (renamed) { res.warnings.push(`vm ${vmid} - ${key} is deprecated and was renamed to ${renamed}`); key = renamed; }
      const validity = lxcKeyValidity(key);
      if (validity === true) { if (!inPending) res.lxc.push([key, value]); }
      else if (typeof validity === 'string') res.warnings.push(`vm ${vmid} - ${key}: ${validity}`);
      else res.warnings.push(`vm ${vmid} - unable to parse config: ${line}`);
      continue;
    }
    const kv = /^([a-z][a-z_]*\d*):\s*(.+?)\s*$/.exec(line);
    if (kv && (type === 'qemu' || CT_KEY.test(kv[1] ?? '') || (inPending && kv[1] === 'delete'))) {
      const key = kv[1] ?? '';
      if (key === 'digest') continue;
      target[key] = kv[2] ?? '';
      continue;
    }
    res.warnings.push(`vm ${vmid} - unable to parse config: ${line}`);
  }
  if (descr.length > 0) res.config.description = descr.join('\n');
  return res;
}
