// Host-level steps over SSH and the API: facts, the admin user, Claude Code, the vLLM repo, the GPU driver.
import type { DeployConfig } from '../config/schema';
import { quote } from '../adapters/quote';
import type {
  AccessEvidence,
  AdminUserResult,
  Changed,
  ClaudeCodeResult,
  GpuFact,
  HostDriverResult,
  HostFacts,
  RepoResult,
  UndoResult,
} from './contract';
import { ActivityDeps, CommandFailedError, Host, lookAgain, permanent, runRecord, savedRecord, thisRunsRecord } from './deps';
import { parseDriverVersion, parseLspciDriver, parseProcDevices, shortBdf } from './parse';

/** Pinned like everything else: the version the design document ran. */
export const CLAUDE_CODE_VERSION = '2.1.12';
export const NOUVEAU_BLACKLIST = '/etc/modprobe.d/blacklist-nouveau.conf';
export const NOUVEAU_BLACKLIST_TEXT = 'blacklist nouveau\noptions nouveau modeset=0\n';
export const BOOT_UNIT_NAME = 'pve-vllm-gpu.service';
const BOOT_UNIT = `/etc/systemd/system/${BOOT_UNIT_NAME}`;
/** What the boot unit was before a run's first change to it (null: absent), saved on the host for the undo. */
export const BOOT_UNIT_BEFORE = '/root/.pve-vllm-gpu-unit-before.json';
/** The boot unit before pve-vllm's first deploy, kept for a teardown (recordDeployment). */
export const BOOT_UNIT_BEFORE_DEPLOY = '/root/.pve-vllm-gpu-unit-before-deploy.json';

/**
 * A oneshot unit that puts the GPU back on nvidia at boot and makes /dev/nvidia-uvm, before pve-guests starts the
 * vLLM CT: the sysfs binding and the modules loaded by ensureHostGpuDriver do not survive a reboot, and an LXC
 * `optional` bind mount of a node missing at CT start is silently skipped (CUDA then fails with error 999).
 */
export function bootUnitText(bdf: string): string {
  const dev = `/sys/bus/pci/devices/${bdf}`;
  const bound = `/sys/bus/pci/drivers/nvidia/${bdf}`;
  return [
    '[Unit]',
    `Description=pve-vllm: GPU ${bdf} on nvidia with its device nodes, before guests start`,
    'After=systemd-modules-load.service',
    'Before=pve-guests.service',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=/bin/sh -c 'echo nvidia > ${dev}/driver_override'`,
    `ExecStart=/bin/sh -c 'test ! -e ${dev}/driver || test -e ${bound} || echo ${bdf} > ${dev}/driver/unbind'`,
    'ExecStart=/sbin/modprobe nvidia',
    `ExecStart=/bin/sh -c 'test -e ${bound} || echo ${bdf} > /sys/bus/pci/drivers/nvidia/bind'`,
    // The driver makes its nodes when asked: nvidia-smi (through nvidia-modprobe) /dev/nvidiactl and /dev/nvidia0,
    // nvidia-modprobe -u the uvm ones. Then the unit fails, visibly in `systemctl status`, if one is still missing.
    'ExecStart=/usr/bin/nvidia-smi -L',
    'ExecStart=/sbin/modprobe nvidia-uvm',
    "ExecStart=/bin/sh -c 'test -c /dev/nvidia-uvm || nvidia-modprobe -u -c=0'",
    "ExecStart=/bin/sh -c 'test -c /dev/nvidiactl && test -c /dev/nvidia0 && test -c /dev/nvidia-uvm'",
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

interface PciEntry { id: string; class: string; vendor: string; device_name?: string; vendor_name?: string }

export function createHostActivities(deps: ActivityDeps) {
  const h = (cfg: DeployConfig) => new Host(deps, cfg);

  return {
    async inspectHost(cfg: DeployConfig): Promise<HostFacts> {
      const host = h(cfg);
      const api = host.api();
      const version = (await api.get('/version')) as { version: string };
      const pci = (await api.get(`/nodes/${host.node}/hardware/pci`)) as PciEntry[];
      const gpus: GpuFact[] = [];
      for (const d of pci.filter((p) => p.class.startsWith('0x03'))) {
        const lspci = await host.run(['lspci', '-nnk', '-s', shortBdf(d.id)]);
        gpus.push({
          bdf: d.id,
          vendor: d.vendor === '0x10de' ? 'nvidia' : d.vendor === '0x1002' ? 'amd' : 'other',
          name: d.device_name ?? d.id,
          driver: parseLspciDriver(lspci.stdout),
        });
      }
      const gpu = gpus.find((g) => g.bdf === cfg.gpu.pciAddress);
      if (!gpu || gpu.vendor !== 'nvidia') {
        throw permanent(
          `gpu.pciAddress ${cfg.gpu.pciAddress} is not an NVIDIA GPU on node ${host.node}; GPUs found: ` +
            (gpus.map((g) => `${g.bdf} ${g.name} (${g.vendor})`).join(', ') || 'none'),
          'GpuNotFound',
        );
      }
      const vm = cfg.guests.vm.id;
      const vmCfg = (await api.get(`/nodes/${host.node}/qemu/${vm}/config`)) as Record<string, unknown>;
      const vmStatus = (await api.get(`/nodes/${host.node}/qemu/${vm}/status/current`)) as { status: 'running' | 'stopped' };
      const holds = Object.entries(vmCfg).some(([k, v]) => /^hostpci\d+$/.test(k) && String(v).includes(shortBdf(cfg.gpu.pciAddress).replace(/\.\d$/, '')));
      const nvVersion = await host.run(['cat', '/proc/driver/nvidia/version']);
      const modinfo = await host.run(['modinfo', '-F', 'version', 'nvidia']);
      const lsmod = await host.run(['lsmod']);
      const cts = (await api.get(`/nodes/${host.node}/lxc`)) as Array<{ vmid: number | string; status?: string }>;
      const adminUser = await host.run(['id', '-u', cfg.admin.user]);
      return {
        pveVersion: version.version,
        nodeName: host.node,
        gpus,
        gpu,
        gpuHolder: holds ? { vmid: vm, status: vmStatus.status, onboot: Number(vmCfg.onboot ?? 0) === 1 } : null,
        hostDriverVersion: nvVersion.code === 0 ? parseDriverVersion(nvVersion.stdout) : null,
        hostDriverPackageVersion: modinfo.code === 0 ? modinfo.stdout.trim() || null : null,
        nouveauLoaded: /^nouveau\s/m.test(lsmod.stdout),
        vllmCtExists: cts.some((c) => Number(c.vmid) === cfg.guests.vllm.id),
        adminUserExists: adminUser.code === 0,
        runningCts: cts.filter((c) => c.status === 'running').map((c) => Number(c.vmid)).sort((a, b) => a - b),
      };
    },

    async ensureAdminUser(cfg: DeployConfig): Promise<AdminUserResult> {
      const host = h(cfg);
      const user = cfg.admin.user;
      let changed = false;
      const did: Omit<AdminUserResult, 'changed' | 'user'> = {};
      if (!(await host.has('sudo'))) {
        // Not undone: the package is harmless, and other users may come to rely on it.
        await host.must(['apt-get', 'install', '-y', 'sudo'], { timeoutMs: 600_000 });
        changed = true;
      }
      const recorded = thisRunsRecord<UserBefore>(await host.read(userBeforePath(user)));
      const existed = (await host.run(['id', '-u', user])).code === 0;
      if (!existed) {
        // Noted first: a retry after the useradd must not take the user this run made for one that was there.
        if (!recorded) await host.write(userBeforePath(user), runRecord({ existed: false } satisfies UserBefore), '0600');
        await host.must(['useradd', '-m', '-s', '/bin/bash', user]);
        changed = did.created = true;
      }
      const sudoers = `/etc/sudoers.d/pve-vllm-${user}`;
      const rule = `${user} ALL=(ALL) NOPASSWD:ALL\n`;
      const home = `/home/${user}`;
      const keys = `${home}/.ssh/authorized_keys`;
      const pub = cfg.admin.publicKey.trim();
      const inSudo = (await host.must(['id', '-nG', user])).trim().split(/\s+/).includes('sudo');
      const sudoersBefore = await host.read(sudoers);
      const existing = await host.read(keys);
      const current = existing ?? '';
      const hasKey = current.split('\n').some((l) => l.trim() === pub);
      // A user that was there: before this run's first change to it, what it was, for the undo (a retry keeps it).
      if (existed && !recorded && (!inSudo || sudoersBefore !== rule || !hasKey)) {
        const before: UserBefore = { existed: true, inSudo, sudoers: sudoersBefore ?? null, hasKey, keysFileExisted: existing !== undefined };
        await host.write(userBeforePath(user), runRecord(before), '0600');
      }
      if (!inSudo) {
        await host.must(['usermod', '-aG', 'sudo', user]);
        changed = did.addedToSudo = true;
      }
      if (sudoersBefore !== rule) {
        did.sudoersBefore = sudoersBefore ?? null;
        // validated as visudo would before it goes live: a broken sudoers file locks out sudo for everyone
        const tmp = `/tmp/pve-vllm-sudoers-${user}`;
        await host.write(tmp, rule, '0440');
        const check = await host.run(['visudo', '-cf', tmp]);
        if (check.code !== 0) throw permanent(`sudoers rule for ${user} rejected by visudo: ${check.stdout}${check.stderr}`, 'SudoersInvalid');
        await host.must(['mv', tmp, sudoers]);
        // read back: an empty file passes visudo too, and would leave sudo asking for a password
        if ((await host.read(sudoers)) !== rule) throw new Error(`${sudoers} does not hold the rule after writing it`);
        changed = true;
      }
      if (!hasKey) {
        await host.must(['mkdir', '-p', `${home}/.ssh`]);
        await host.write(keys, `${current}${current && !current.endsWith('\n') ? '\n' : ''}${pub}\n`, '0600');
        await host.must(['chmod', '700', `${home}/.ssh`]);
        await host.must(['chown', '-R', `${user}:${user}`, `${home}/.ssh`]);
        changed = did.addedKey = true;
        did.keysFileExisted = existing !== undefined;
      }
      // A retry whose first attempt made the changes finds nothing to do, but this run did change the user.
      return { changed: changed || recorded?.existed === true, user, ...did };
    },

    /**
     * Undo of ensureAdminUser for a user that was there before the run: puts back what this run recorded before
     * its first change to it (the sudo group, the sudoers drop-in, the key), never removing the user or its home.
     * Runs recorded before that record existed pass what their step reported instead.
     */
    async revertAdminUser(cfg: DeployConfig, change: AdminUserResult): Promise<UndoResult> {
      const host = h(cfg);
      const user = cfg.admin.user;
      const done: string[] = [];
      if ((await host.run(['id', '-u', user])).code !== 0) return { changed: false, detail: `user ${user} absent; nothing to take back` };
      const recorded = thisRunsRecord<UserBefore>(await host.read(userBeforePath(user)));
      const was = recorded?.existed
        ? recorded
        : { inSudo: !change.addedToSudo, sudoers: change.sudoersBefore, hasKey: !change.addedKey, keysFileExisted: change.keysFileExisted };
      const keys = `/home/${user}/.ssh/authorized_keys`;
      const pub = cfg.admin.publicKey.trim();
      const current = await host.read(keys);
      if (!was.hasKey && current !== undefined && current.split('\n').some((l) => l.trim() === pub)) {
        const rest = current.split('\n').filter((l) => l.trim() !== pub).join('\n');
        if (rest.trim() === '' && !was.keysFileExisted) await host.must(['rm', '-f', keys]);
        else await host.write(keys, rest, '0600');
        done.push('its SSH key removed');
      }
      if (was.sudoers !== undefined) {
        const sudoers = `/etc/sudoers.d/pve-vllm-${user}`;
        const now = await host.read(sudoers);
        if (was.sudoers === null && now !== undefined) {
          await host.must(['rm', '-f', sudoers]);
          done.push(`${sudoers} removed`);
        } else if (was.sudoers !== null && now !== was.sudoers) {
          await host.write(sudoers, was.sudoers, '0440');
          done.push(`${sudoers} as before`);
        }
      }
      if (!was.inSudo && (await host.must(['id', '-nG', user])).trim().split(/\s+/).includes('sudo')) {
        await host.must(['gpasswd', '-d', user, 'sudo']);
        done.push('out of group sudo again');
      }
      if (recorded) await host.must(['rm', '-f', userBeforePath(user)]);
      return { changed: done.length > 0, detail: done.length ? `user ${user} kept; ${done.join(', ')}` : `user ${user} already as before` };
    },

    async ensureClaudeCode(cfg: DeployConfig): Promise<ClaudeCodeResult> {
      const host = h(cfg);
      const user = cfg.admin.user;
      const probe = () => host.run(['sudo', '-u', user, '-H', 'claude', '--version']);
      let got = await probe();
      if (got.code === 0 && got.stdout.includes(CLAUDE_CODE_VERSION)) return { changed: false, version: CLAUDE_CODE_VERSION };
      if (!(await host.has('npm'))) {
        await host.must(['apt-get', 'install', '-y', 'nodejs', 'npm'], { timeoutMs: 900_000 });
      }
      await host.must(['npm', 'install', '-g', `@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}`], { timeoutMs: 900_000 });
      got = await probe();
      if (got.code !== 0) throw permanent(`claude --version failed after install: ${got.stderr.trim()}`, 'ClaudeCodeInstallFailed');
      return { changed: true, version: got.stdout.trim().split(/\s+/)[0] ?? CLAUDE_CODE_VERSION };
    },

    async verifyAdminAccess(cfg: DeployConfig): Promise<AccessEvidence> {
      const admin = h(cfg).admin();
      return lookAgain<AccessEvidence>(async () => {
        const who = await admin.exec(['id', '-un']);
        const sudo = await admin.exec(['sudo', '-n', 'true']);
        const whoami = who.stdout.trim();
        if (who.code !== 0 || whoami !== cfg.admin.user || sudo.code !== 0) {
          return {
            notYet: `checkpoint 1 failed: ssh ${cfg.admin.user}@${cfg.proxmox.host}: id -un -> "${whoami}" (exit ${who.code}); ` +
              `sudo -n true -> exit ${sudo.code} ${sudo.stderr.trim()}`,
          };
        }
        return { ok: { whoami, sudoExitCode: sudo.code, evidence: `ssh ${whoami}@${cfg.proxmox.host}: id -un -> ${whoami}; sudo -n true -> exit 0` } };
      });
    },

    async removeAdminUser(cfg: DeployConfig): Promise<UndoResult> {
      const host = h(cfg);
      const user = cfg.admin.user;
      let changed = false;
      const sudoers = `/etc/sudoers.d/pve-vllm-${user}`;
      if ((await host.read(sudoers)) !== undefined) {
        await host.must(['rm', '-f', sudoers]);
        changed = true;
      }
      if ((await host.run(['id', '-u', user])).code === 0) {
        await host.must(['userdel', '-r', user]);
        changed = true;
      }
      if ((await host.read(userBeforePath(user))) !== undefined) await host.must(['rm', '-f', userBeforePath(user)]);
      return { changed, detail: changed ? `user ${user} removed` : `user ${user} already absent` };
    },

    /**
     * The checkout at repo.ref: a tag, a branch (its tip now: a branch that moved is fetched again) or a commit.
     * The remote says which commit the ref names (`git ls-remote`); a checkout already there is left alone.
     */
    async ensureRepoCloned(cfg: DeployConfig): Promise<RepoResult> {
      const host = h(cfg);
      const { url, ref, path } = cfg.repo;
      const want = await remoteCommit(host, url, ref);
      const head = await host.run(['git', '-C', path, 'rev-parse', 'HEAD']);
      if (head.code === 0) {
        if (head.stdout.trim() === want.commit) return { changed: false, commit: want.commit, path };
        await host.must(['git', '-C', path, 'fetch', '--depth', '1', url, want.fetch], { timeoutMs: 600_000 });
        await host.must(['git', '-C', path, 'checkout', '-q', '--detach', want.commit]);
      } else {
        if ((await host.run(['test', '-e', path])).code === 0) {
          throw permanent(`${path} exists but is not a git checkout; move it away or set repo.path elsewhere`, 'RepoPathOccupied');
        }
        if (want.fetch === want.commit) {
          // --branch takes a branch or a tag only: a commit is fetched into a clone that has not checked out yet,
          // beside the path, and moved there once checked out (a retry must not find a clone without its files).
          const tmp = `${path}.pve-vllm-clone`;
          await host.must(['rm', '-rf', tmp]);
          await host.must(['git', 'clone', '--depth', '1', '--no-checkout', url, tmp], { timeoutMs: 900_000 });
          await host.must(['git', '-C', tmp, 'fetch', '--depth', '1', url, want.commit], { timeoutMs: 600_000 });
          await host.must(['git', '-C', tmp, 'checkout', '-q', '--detach', want.commit]);
          await host.must(['mv', tmp, path]);
        } else {
          await host.must(['git', 'clone', '--depth', '1', '--branch', ref, url, path], { timeoutMs: 900_000 });
        }
      }
      const commit = (await host.must(['git', '-C', path, 'rev-parse', 'HEAD'])).trim();
      return { changed: true, commit, path };
    },

    async ensureGpuBootUnit(cfg: DeployConfig): Promise<Changed> {
      const host = h(cfg);
      const text = bootUnitText(cfg.gpu.pciAddress);
      const current = await host.read(BOOT_UNIT);
      const enabled = await bootUnitEnabled(host);
      if (current === text && enabled) return { changed: false };
      // This run's first change here saves what was there; a retry keeps the first attempt's copy.
      if (!thisRunsRecord<BootUnitBefore>(await host.read(BOOT_UNIT_BEFORE))) {
        await host.write(BOOT_UNIT_BEFORE, runRecord({ unit: current ?? null, enabled } satisfies BootUnitBefore), '0600');
      }
      if (current !== text) {
        await host.write(BOOT_UNIT, text);
        await host.must(['systemctl', 'daemon-reload']);
      }
      await host.must(['systemctl', 'enable', BOOT_UNIT_NAME]);
      return { changed: true };
    },

    async removeGpuBootUnit(cfg: DeployConfig): Promise<UndoResult> {
      const host = h(cfg);
      return putBackBootUnit(host, thisRunsRecord<BootUnitBefore>(await host.read(BOOT_UNIT_BEFORE)), BOOT_UNIT_BEFORE);
    },

    /** Teardown: the unit as before pve-vllm's first deploy; without a kept record, pve-vllm's own unit goes. */
    async tearDownGpuBootUnit(cfg: DeployConfig): Promise<UndoResult> {
      const host = h(cfg);
      // No kept record (or an unreadable one): as if there was no unit before.
      const before = savedRecord<BootUnitBefore>(await host.read(BOOT_UNIT_BEFORE_DEPLOY)) ?? { unit: null, enabled: false };
      const undone = await putBackBootUnit(host, before, BOOT_UNIT_BEFORE_DEPLOY);
      await host.must(['rm', '-f', BOOT_UNIT_BEFORE]);
      return undone;
    },

    async ensureHostGpuDriver(cfg: DeployConfig): Promise<HostDriverResult> {
      const host = h(cfg);
      const bdf = cfg.gpu.pciAddress;
      let changed = false;
      if ((await host.read(NOUVEAU_BLACKLIST)) !== NOUVEAU_BLACKLIST_TEXT) {
        await host.write(NOUVEAU_BLACKLIST, NOUVEAU_BLACKLIST_TEXT);
        await host.must(['update-initramfs', '-u'], { timeoutMs: 600_000 });
        changed = true;
      }
      if (/^nouveau\s/m.test((await host.must(['lsmod'])))) {
        await host.must(['modprobe', '-r', 'nouveau']);
        changed = true;
      }
      const driver = parseLspciDriver((await host.must(['lspci', '-nnk', '-s', shortBdf(bdf)])));
      if (driver !== 'nvidia') {
        // Stopping the VM leaves the GPU on vfio-pci: move it to the nvidia driver by hand.
        const dev = `/sys/bus/pci/devices/${bdf}`;
        if (driver) await host.must(['sh', '-c', `echo ${quote([bdf])} > ${dev}/driver/unbind`]);
        await host.must(['sh', '-c', `echo nvidia > ${dev}/driver_override`]);
        await host.must(['modprobe', 'nvidia']);
        // loading the module probes unbound devices itself; bind by hand only if it did not take the GPU
        if (parseLspciDriver(await host.must(['lspci', '-nnk', '-s', shortBdf(bdf)])) !== 'nvidia') {
          await host.must(['sh', '-c', `echo ${quote([bdf])} > /sys/bus/pci/drivers/nvidia/bind`]);
        }
        changed = true;
      }
      if ((await host.run(['test', '-c', '/dev/nvidia-uvm'])).code !== 0) {
        await host.must(['modprobe', 'nvidia-uvm']);
        // udev makes the node on most hosts; nvidia-modprobe makes it where it does not
        if ((await host.run(['test', '-c', '/dev/nvidia-uvm'])).code !== 0) await host.must(['nvidia-modprobe', '-u', '-c=0']);
        changed = true;
      }
      const after = parseLspciDriver(await host.must(['lspci', '-nnk', '-s', shortBdf(bdf)]));
      if (after !== 'nvidia') throw permanent(`GPU ${bdf} is bound to ${after ?? 'no driver'} after binding it to nvidia`, 'GpuBindFailed');
      const version = parseDriverVersion(await host.must(['cat', '/proc/driver/nvidia/version']));
      if (!version) throw permanent('the nvidia kernel module is loaded but /proc/driver/nvidia/version has no version', 'HostDriverMissing');
      const majors = parseProcDevices(await host.must(['cat', '/proc/devices']));
      if (!majors) throw permanent('/proc/devices lists no nvidia or nvidia-uvm major: is the NVIDIA driver installed on the host?', 'HostDriverMissing');
      return { changed, driverVersion: version, majors, nouveauBlacklisted: true };
    },
  };
}

/**
 * Which commit repo.ref names on the remote, and what to fetch for it: an annotated tag's commit (its `^{}` line),
 * a tag, a branch; a 40-hex ref is a commit id and is fetched as such.
 */
async function remoteCommit(host: Host, url: string, ref: string): Promise<{ commit: string; fetch: string }> {
  const listed = await host.run(['git', 'ls-remote', url, ref], { timeoutMs: 120_000 });
  if (listed.code !== 0) throw new CommandFailedError(`git ls-remote ${url} ${ref}`, listed);
  const refs = new Map(listed.stdout.split('\n').filter(Boolean).map((l) => {
    const [commit = '', name = ''] = l.split('\t');
    return [name, commit] as const;
  }));
  for (const [name, fetch] of [[`refs/tags/${ref}^{}`, `refs/tags/${ref}`], [`refs/tags/${ref}`, `refs/tags/${ref}`], [`refs/heads/${ref}`, `refs/heads/${ref}`]] as const) {
    const commit = refs.get(name);
    if (commit) return { commit, fetch };
  }
  if (/^[0-9a-f]{40}$/.test(ref)) return { commit: ref, fetch: ref };
  throw permanent(`repo.ref ${ref} is neither a tag nor a branch of ${url}, nor a full 40-character commit id`, 'RepoRefNotFound');
}

/** What an admin user that was there before the run was like, saved on the host at the run's first change to it. */
type UserBefore =
  | {
      existed: true;
      inSudo: boolean;
      /** the sudoers drop-in's content; null when there was none */
      sudoers: string | null;
      hasKey: boolean;
      keysFileExisted: boolean;
    }
  | { existed: false }; // this run made the user: its undo is 'remove user'

/** Enabled, not merely existing: `is-enabled` exits 0 for a "static" unit too (one without an [Install] section). */
async function bootUnitEnabled(host: Host): Promise<boolean> {
  return (await host.run(['systemctl', 'is-enabled', BOOT_UNIT_NAME])).stdout.trim() === 'enabled';
}

/** The boot unit as a saved "before" says (null: none), then the record removed. */
async function putBackBootUnit(host: Host, before: BootUnitBefore | undefined, recordPath: string): Promise<UndoResult> {
  if (!before) return { changed: false, detail: `${BOOT_UNIT_NAME} as before` };
  const now = await host.read(BOOT_UNIT);
  let changed = false;
  if (before.unit === null) {
    if (now !== undefined) {
      // --now: a oneshot that remains after exit would stay loaded and "active" without its file.
      await host.must(['systemctl', 'disable', '--now', BOOT_UNIT_NAME]);
      await host.must(['rm', '-f', BOOT_UNIT]);
      await host.must(['systemctl', 'daemon-reload']);
      changed = true;
    }
  } else {
    if (now !== before.unit) {
      await host.write(BOOT_UNIT, before.unit);
      await host.must(['systemctl', 'daemon-reload']);
      changed = true;
    }
    // A run may have only enabled a unit that was there: its enablement goes back too.
    if ((await bootUnitEnabled(host)) !== before.enabled) {
      await host.must(['systemctl', before.enabled ? 'enable' : 'disable', BOOT_UNIT_NAME]);
      changed = true;
    }
  }
  await host.must(['rm', '-f', recordPath]);
  return { changed, detail: !changed ? `${BOOT_UNIT_NAME} as before` : before.unit === null ? `${BOOT_UNIT_NAME} removed` : `${BOOT_UNIT_NAME} as before the run` };
}

export interface BootUnitBefore {
  unit: string | null;
  enabled: boolean;
}

const userBeforePath = (user: string): string => `/root/.pve-vllm-user-${user}-before.json`;

