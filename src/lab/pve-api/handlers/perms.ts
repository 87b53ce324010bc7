/**
 * The root@pam-only rules of PVE (an API token `root@pam!x` is not root@pam, even without privilege
 * separation): pve-container `check_ct_modify_config_perm` and qemu-server `check_hostpci_perm`.
 */
import { dieError, paramError, permError } from '../errors';
import { parsePropertyString } from '../validate';
import { HASH_FORMATS } from '../formats';

function features(spec: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (spec ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** Mount point type as parse_volume classifies it: a path is a bind mount, `/dev/...` a device mount. */
function mountType(spec: string): 'volume' | 'bind' | 'device' {
  const volume = (spec.split(',')[0] ?? '').replace(/^volume=/, '');
  if (volume.startsWith('/dev/')) return 'device';
  if (volume.startsWith('/')) return 'bind';
  return 'volume';
}

/**
 * Throws PVE's 403 when a non-root@pam caller sets or deletes a root-only CT option.
 * `oldConf` is undefined for a create; `unprivileged` is the CT's (create default 1).
 */
export function checkCtModifyPerm(
  authid: string,
  oldConf: Record<string, string> | undefined,
  set: Record<string, string>,
  del: string[],
  unprivileged: boolean,
): void {
  if (authid === 'root@pam') return;
  const check = (opt: string, deleting: boolean): void => {
    if (opt === 'rootfs' || /^mp\d+$/.test(opt)) {
      if (deleting) return;
      const type = mountType(set[opt] ?? '');
      if (type !== 'volume') throw permError(`mount point type ${type} is only allowed for root@pam`);
    } else if (/^dev\d+$/.test(opt)) {
      throw permError('configuring device passthrough is only allowed for root@pam');
    } else if (opt === 'features') {
      if (!unprivileged) throw permError('changing feature flags for privileged container is only allowed for root@pam');
      let other = false;
      if (!deleting) {
        const next = features(set[opt]);
        if (oldConf?.features) {
          const prev = features(oldConf.features);
          for (const f of new Set([...Object.keys(prev), ...Object.keys(next)])) {
            if ((prev[f] ?? '') !== (next[f] ?? '') && f !== 'nesting') other = true;
          }
        } else {
          const keys = Object.keys(next);
          other = !(keys.length === 1 && keys[0] === 'nesting') && keys.length > 0;
        }
      } else {
        const keys = Object.keys(features(oldConf?.features));
        other = !(keys.length === 1 && keys[0] === 'nesting') && keys.length > 0;
      }
      if (other) throw permError('changing feature flags (except nesting) is only allowed for root@pam');
    } else if (opt === 'hookscript') {
      throw permError('changing the hookscript is only allowed for root@pam');
    }
  };
  for (const opt of Object.keys(set)) check(opt, false);
  for (const opt of del) check(opt, true);
}

/**
 * qemu-server check_hostpci_perm: a raw `host=` address is root@pam only. It is a plain `die`, so the API
 * answers 500 (not 403) with this text.
 */
export function checkHostpciPerm(authid: string, opt: string, value: string): void {
  if (authid === 'root@pam') return;
  const fmt = HASH_FORMATS['pve-qm-hostpci'] ?? {};
  const dev = parsePropertyString(fmt, value, opt);
  if (dev.host) throw dieError(`only root can set '${opt}' config for non-mapped devices`);
  if (!dev.mapping) throw dieError("either 'host' or 'mapping' must be set.");
  if (dev.romfile !== undefined) throw paramError({ [opt]: "only root@pam can set 'romfile' option" });
}
