// Guests through the PVE API (token for routine calls) and, for what only root may do, the config file over SSH.
import type { DeployConfig } from '../config/schema';
import type { ContainerResult, PassthroughResult, UndoResult, VmGpuRelease, Changed, HostDriverResult } from './contract';
import { ActivityDeps, Host, permanent } from './deps';
import { joinConfigFile, parseLspciDriver, shortBdf, splitConfigFile } from './parse';

type Cfg = Record<string, string | number | undefined>;
const TAG = 'pve-vllm';

/** A CT's power state, through the API. */
export async function ctStatus(host: Host, vmid: number): Promise<'running' | 'stopped'> {
  const s = (await host.api().get(`/nodes/${host.node}/lxc/${vmid}/status/current`)) as { status: 'running' | 'stopped' };
  return s.status;
}

/** Waits for a PVE task (a UPID) to end; a failed task throws. */
export async function task(host: Host, upid: unknown): Promise<void> {
  await host.api().waitTask(String(upid), { pollMs: 250 });
}

export async function startCt(host: Host, vmid: number): Promise<void> {
  await task(host, await host.api().post(`/nodes/${host.node}/lxc/${vmid}/status/start`, {}));
}

/** Stops a running CT; true when it was running. */
export async function stopCt(host: Host, vmid: number): Promise<boolean> {
  if ((await ctStatus(host, vmid)) !== 'running') return false;
  await task(host, await host.api().post(`/nodes/${host.node}/lxc/${vmid}/status/stop`, {}));
  return true;
}

/** Stops it if it runs, then starts it: raw lxc lines apply only at a CT's start. */
export async function restartCt(host: Host, vmid: number): Promise<void> {
  await stopCt(host, vmid);
  await startCt(host, vmid);
}

/** What a vLLM CT that is already there needs of its config (cores, memory, nesting); empty when it is as asked. */
export function vllmCtUpdate(cfg: DeployConfig, current: Record<string, unknown>): Record<string, string | number> {
  const v = cfg.guests.vllm;
  const update: Record<string, string | number> = {};
  for (const [k, val] of Object.entries({ cores: v.cores, memory: v.memoryMiB })) if (String(current[k]) !== String(val)) update[k] = val;
  if (!String(current.features ?? '').includes('nesting=1')) update.features = mergeFeatures(String(current.features ?? ''), { nesting: '1' });
  return update;
}

export function createProxmoxActivities(deps: ActivityDeps) {
  const h = (cfg: DeployConfig) => new Host(deps, cfg);

  async function ctExists(host: Host, vmid: number): Promise<boolean> {
    const list = (await host.api().get(`/nodes/${host.node}/lxc`)) as Array<{ vmid: number | string }>;
    return list.some((c) => Number(c.vmid) === vmid);
  }
  const confPath = (vmid: number) => `/etc/pve/lxc/${vmid}.conf`;

  return {
    async ensureVllmContainer(cfg: DeployConfig, vmid: number): Promise<ContainerResult> {
      const host = h(cfg);
      const api = host.api();
      const v = cfg.guests.vllm;
      if (!(await ctExists(host, vmid))) {
        const net = [`name=eth0`, `bridge=${v.network.bridge}`, `ip=${v.network.ip}`];
        if (v.network.gateway) net.push(`gw=${v.network.gateway}`);
        const params: Cfg = {
          vmid,
          ostemplate: v.template,
          hostname: v.hostname,
          cores: v.cores,
          memory: v.memoryMiB,
          swap: 0,
          rootfs: `${v.storage}:${v.diskGiB}`,
          net0: net.join(','),
          features: 'nesting=1',
          unprivileged: 1,
          onboot: 1,
          tags: TAG,
          'ssh-public-keys': cfg.admin.publicKey,
          start: 0,
        };
        try {
          await task(host, await api.post(`/nodes/${host.node}/lxc`, params));
        } catch (err) {
          // proxmox-api re-sends a POST after a network error: the first one may have created it already.
          if (!(await ctExists(host, vmid))) throw err;
        }
        return { changed: true, vmid, created: true };
      }
      // Reuse: reconcile what the config asks for, keep everything else as it is (its undo: readGuestConfig first).
      const current = (await api.get(`/nodes/${host.node}/lxc/${vmid}/config`)) as Cfg & { digest: string };
      const update = vllmCtUpdate(cfg, current);
      if (Object.keys(update).length === 0) return { changed: false, vmid, created: false };
      await api.put(`/nodes/${host.node}/lxc/${vmid}/config`, { ...update, digest: current.digest });
      return { changed: true, vmid, created: false };
    },

    async destroyContainer(cfg: DeployConfig, vmid: number): Promise<UndoResult> {
      const host = h(cfg);
      if (!(await ctExists(host, vmid))) return { changed: false, detail: `CT ${vmid} already absent` };
      await stopCt(host, vmid);
      await task(host, await host.api().del(`/nodes/${host.node}/lxc/${vmid}`, { purge: 1 }));
      return { changed: true, detail: `CT ${vmid} destroyed` };
    },

    /** A CT's config file as it is now, read by the workflow before a step changes it, so its undo is known up front. */
    async readGuestConfig(cfg: DeployConfig, vmid: number): Promise<string> {
      return (await h(cfg).read(confPath(vmid))) ?? '';
    },

    async restoreContainerConfig(cfg: DeployConfig, vmid: number, beforeRaw: string): Promise<UndoResult> {
      const host = h(cfg);
      if (!(await ctExists(host, vmid))) return { changed: false, detail: `CT ${vmid} absent; nothing to restore` };
      if ((await host.read(confPath(vmid))) === beforeRaw) return { changed: false, detail: `CT ${vmid} config already as before` };
      const wasRunning = await stopCt(host, vmid);
      await host.write(confPath(vmid), beforeRaw, '0640');
      if (wasRunning) await startCt(host, vmid);
      return { changed: true, detail: `CT ${vmid} config restored${wasRunning ? ' and restarted' : ''}` };
    },

    async ensureGpuReleasedFromVm(cfg: DeployConfig): Promise<VmGpuRelease> {
      const host = h(cfg);
      const api = host.api();
      const vm = cfg.guests.vm.id;
      const conf = (await api.get(`/nodes/${host.node}/qemu/${vm}/config`)) as Cfg & { digest: string };
      const status = (await api.get(`/nodes/${host.node}/qemu/${vm}/status/current`)) as { status: string };
      const wasRunning = status.status === 'running';
      const onbootBefore = Number(conf.onboot ?? 0) === 1;
      if (wasRunning) {
        // A clean shutdown first; PVE stops it hard if the guest ignores ACPI for the timeout.
        await task(host, await api.post(`/nodes/${host.node}/qemu/${vm}/status/shutdown`, { timeout: 120, forceStop: 1 }));
      }
      if (onbootBefore) await api.put(`/nodes/${host.node}/qemu/${vm}/config`, { onboot: 0, digest: conf.digest });
      return { changed: wasRunning || onbootBefore, vmid: vm, wasRunning, onbootBefore };
    },

    async returnGpuToVm(cfg: DeployConfig, release: VmGpuRelease): Promise<UndoResult> {
      const host = h(cfg);
      const api = host.api();
      const bdf = cfg.gpu.pciAddress;
      const done: string[] = [];
      // On the nvidia driver, every GPU user stops first: a device in use cannot leave it. That includes ComfyUI,
      // whose restore has just given it its GPU lines back and restarted it; it is started again once VM 151 holds
      // the card. On any other driver no container can be using the card (this undo may run before the release
      // it undoes ever happened).
      const driver = parseLspciDriver(await host.must(['lspci', '-nnk', '-s', shortBdf(bdf)]));
      let restartComfy = false;
      if (driver === 'nvidia' && release.driverBefore !== 'nvidia') {
        const cts = (await api.get(`/nodes/${host.node}/lxc`)) as Array<{ vmid: number | string; status: string }>;
        for (const ct of cts.filter((c) => c.status === 'running')) {
          const raw = (await host.read(confPath(Number(ct.vmid)))) ?? '';
          if (/\/dev\/nvidia|^dev\d+:.*nvidia/m.test(raw)) {
            await stopCt(host, Number(ct.vmid));
            done.push(`stopped CT ${ct.vmid}`);
            if (Number(ct.vmid) === cfg.guests.comfyui?.id) restartComfy = true;
          }
        }
        await host.must(['sh', '-c', `echo ${bdf} > /sys/bus/pci/drivers/nvidia/unbind`]);
        done.push(`unbound ${bdf} from nvidia`);
      }
      const override = (await host.read(`/sys/bus/pci/devices/${bdf}/driver_override`)) ?? '';
      if (release.driverBefore !== 'nvidia' && override.trim() !== '' && override.trim() !== '(null)') {
        await host.must(['sh', '-c', `echo > /sys/bus/pci/devices/${bdf}/driver_override`]);
      }
      const vm = release.vmid;
      const conf = (await api.get(`/nodes/${host.node}/qemu/${vm}/config`)) as Cfg & { digest: string };
      if (release.onbootBefore && Number(conf.onboot ?? 0) !== 1) {
        await api.put(`/nodes/${host.node}/qemu/${vm}/config`, { onboot: 1, digest: conf.digest });
        done.push(`VM ${vm} onboot 1`);
      }
      const status = (await api.get(`/nodes/${host.node}/qemu/${vm}/status/current`)) as { status: string };
      if (release.wasRunning && status.status !== 'running') {
        // Starting the VM rebinds the GPU to vfio-pci.
        await task(host, await api.post(`/nodes/${host.node}/qemu/${vm}/status/start`, {}));
        done.push(`VM ${vm} started`);
      }
      // Every CT that ran before the run runs again (known from step 1, so a retry of this undo knows it too).
      const comfy = cfg.guests.comfyui?.id;
      const again = release.runningCtsBefore ?? (restartComfy && comfy !== undefined ? [comfy] : []);
      const present = new Set(((await api.get(`/nodes/${host.node}/lxc`)) as Array<{ vmid: number | string; status: string }>).filter((c) => c.status !== 'running').map((c) => Number(c.vmid)));
      for (const id of again.filter((x) => present.has(x))) {
        await startCt(host, id);
        done.push(`CT ${id} started again`);
      }
      if (done.length) return { changed: true, detail: done.join('; ') };
      // Nothing to do says what is, not what was hoped: a card left on nvidia stays with its CTs.
      return { changed: false, detail: driver === 'nvidia' ? `GPU left on nvidia, as it was before; VM ${vm} ${status.status}` : `GPU already with VM ${vm}` };
    },

    async ensureGpuPassthrough(cfg: DeployConfig, vmid: number, majors: HostDriverResult['majors']): Promise<PassthroughResult> {
      const host = h(cfg);
      const parts = splitConfigFile((await host.read(confPath(vmid))) ?? '');
      const wantLines = passthroughLines(majors);
      const features = parts.options.find(([k]) => k === 'features')?.[1] ?? '';
      const wantFeatures = mergeFeatures(features, { nesting: '1', keyctl: '1' });
      const missing = wantLines.filter(([k, v]) => !parts.lxc.some(([k2, v2]) => k2 === k && v2 === v));
      if (missing.length === 0 && wantFeatures === features) return { changed: false };
      // Raw lxc.* keys and keyctl are root-only in PVE: edit the config file as root over SSH.
      const opts = parts.options.filter(([k]) => k !== 'features');
      opts.push(['features', wantFeatures]);
      opts.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const raw = joinConfigFile({ ...parts, options: opts, lxc: [...parts.lxc, ...missing] });
      const wasRunning = await stopCt(host, vmid);
      await host.write(confPath(vmid), raw, '0640');
      if (wasRunning) await startCt(host, vmid);
      return { changed: true };
    },

    /**
     * The CT running with the GPU's device nodes in it. LXC bind-mounts them when the CT starts: one that started
     * before the host had them (after a reboot, say, before the GPU was bound to nvidia) stays without them until
     * it restarts, so a re-run restarts it.
     */
    async ensureContainerRunning(cfg: DeployConfig, vmid: number): Promise<Changed> {
      const host = h(cfg);
      if ((await ctStatus(host, vmid)) === 'running') {
        const nodes = await host.ct(vmid, ['sh', '-c', 'test -e /dev/nvidia0 && test -e /dev/nvidiactl && test -e /dev/nvidia-uvm']);
        if (nodes.code === 0) return { changed: false };
        await stopCt(host, vmid);
      }
      await startCt(host, vmid);
      if ((await ctStatus(host, vmid)) !== 'running') throw permanent(`CT ${vmid} did not stay running after start`, 'ContainerStartFailed');
      return { changed: true };
    },

    async backupGuest(cfg: DeployConfig, vmid: number): Promise<{ volid: string } & Changed> {
      const host = h(cfg);
      const storage = cfg.backup.storage;
      const upid = await host.api().post(`/nodes/${host.node}/vzdump`, { vmid: String(vmid), storage, mode: 'snapshot', compress: 'zstd' });
      await task(host, upid);
      const items = (await host.api().get(`/nodes/${host.node}/storage/${storage}/content`, { content: 'backup', vmid })) as Array<{ volid: string; ctime: number }>;
      const newest = items.sort((a, b) => b.ctime - a.ctime)[0];
      if (!newest) throw permanent(`vzdump of CT ${vmid} finished but no backup is listed on ${storage}`, 'BackupMissing');
      return { changed: true, volid: newest.volid };
    },
  };
}

/** The classic raw-key passthrough (pve-docs / community-scripts): device cgroup rules and bind mounts. */
export function passthroughLines(m: HostDriverResult['majors']): Array<[string, string]> {
  const allow = [m.nvidia, m.nvidiaUvm, ...(m.nvidiaCaps !== undefined ? [m.nvidiaCaps] : [])].map(
    (major) => ['lxc.cgroup2.devices.allow', `c ${major}:* rwm`] as [string, string],
  );
  const mounts = ['nvidia0', 'nvidiactl', 'nvidia-uvm', 'nvidia-uvm-tools', 'nvidia-modeset'].map(
    (d) => ['lxc.mount.entry', `/dev/${d} dev/${d} none bind,optional,create=file`] as [string, string],
  );
  // Docker's runc in a CT fails with AppArmor confinement on current runc (design: known issue 2).
  return [...allow, ...mounts, ['lxc.apparmor.profile', 'unconfined']];
}

/** `nesting=1` + { keyctl: '1' } -> `keyctl=1,nesting=1`, keeping other flags. */
export function mergeFeatures(current: string, want: Record<string, string>): string {
  const map = new Map<string, string>();
  for (const kv of current.split(',').filter(Boolean)) {
    const [k, v] = kv.split('=');
    map.set(k as string, v ?? '1');
  }
  let same = true;
  for (const [k, v] of Object.entries(want)) {
    if (map.get(k) !== v) same = false;
    map.set(k, v);
  }
  if (same) return current;
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',');
}
