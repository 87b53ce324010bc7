// Activities against the lab in Temporal's MockActivityEnvironment: the first call changes the host,
// a second call finds it right and changes nothing (read, compare, act, read back).
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../src/activities';
import { createActivityDeps } from '../../src/activities/deps';
import { startLab, type Lab } from '../../src/lab';
import type { DeployConfig } from '../../src/config/schema';
import { labConfig } from '../harness/deploy-run';
import { sh } from '../lab/helpers';

jest.setTimeout(120_000);

describe('activities are idempotent against the lab', () => {
  let lab: Lab;
  let cfg: DeployConfig;
  const deps = createActivityDeps();
  const acts = createActivities(deps);
  const env = new MockActivityEnvironment();

  beforeAll(async () => {
    lab = await startLab({ timeScale: 0.02 });
    cfg = await labConfig(lab);
  });
  afterAll(async () => {
    await deps.ssh.close();
    await lab?.stop();
  });

  it('ensureAdminUser creates the user once, then reports no change and journals nothing', async () => {
    const first = await env.run(acts.ensureAdminUser, cfg);
    // what it changed, so that an undo can take back only that
    expect(first).toEqual({ changed: true, user: 'claude', created: true, addedToSudo: true, sudoersBefore: null, addedKey: true, keysFileExisted: false });
    const journalAfterFirst = lab.journal().length;
    const second = await env.run(acts.ensureAdminUser, cfg);
    expect(second).toEqual({ changed: false, user: 'claude' });
    expect(lab.journal().length).toBe(journalAfterFirst);
    const access = (await env.run(acts.verifyAdminAccess, cfg)) as { sudoExitCode: number };
    expect(access.sudoExitCode).toBe(0);
  });

  it('a user that was there gets back what it was, from the record its run saved, even after a retry', async () => {
    expect((await sh(lab, 'useradd -m -s /bin/bash alice && echo mine > /home/alice/notes.txt')).code).toBe(0);
    const alice = { ...cfg, admin: { ...cfg.admin, user: 'alice' } };
    const r1 = new MockActivityEnvironment({ workflowExecution: { workflowId: 'user', runId: 'r1' } });
    expect(await r1.run(acts.ensureAdminUser, alice)).toMatchObject({ changed: true, addedToSudo: true, addedKey: true });
    // the retry of an attempt that got this far: nothing left to do, but this run did change the user
    expect(await r1.run(acts.ensureAdminUser, alice)).toEqual({ changed: true, user: 'alice' });
    expect(await r1.run(acts.revertAdminUser, alice, { changed: true, user: 'alice' })).toEqual({
      changed: true, detail: 'user alice kept; its SSH key removed, /etc/sudoers.d/pve-vllm-alice removed, out of group sudo again',
    });
    const seen = await sh(lab, 'id -nG alice; cat /home/alice/notes.txt; ls /etc/sudoers.d | grep -c alice; ls -A /root | grep -c alice; test -e /home/alice/.ssh/authorized_keys');
    expect(seen).toMatchObject({ code: 1, stdout: 'alice\nmine\n0\n0\n' });
    // another run's undo finds no record of its own and changes nothing
    const r2 = new MockActivityEnvironment({ workflowExecution: { workflowId: 'user', runId: 'r2' } });
    expect(await r2.run(acts.revertAdminUser, alice, { changed: true, user: 'alice' })).toEqual({ changed: false, detail: 'user alice already as before' });
  });

  it('releaseComfyuiGpu takes the GPU lines out once, and restoreFrontend puts back what its run saved', async () => {
    const run = new MockActivityEnvironment({ workflowExecution: { workflowId: 'comfy', runId: 'r1' } });
    const before = lab.state().guests['118'];
    const beforeRaw = (await run.run(acts.readGuestConfig, cfg, 118)) as string;
    expect(await run.run(acts.releaseComfyuiGpu, cfg)).toMatchObject({ changed: true, detail: 'CT 118: GPU passthrough removed, ComfyUI on --cpu' });
    const journalAfterFirst = lab.journal().length;
    expect(await run.run(acts.releaseComfyuiGpu, cfg)).toMatchObject({ changed: false, detail: 'CT 118 already without its GPU' });
    expect(lab.journal().length).toBe(journalAfterFirst);
    expect(lab.state().guests['118']?.lxc.some(([, v]) => v.includes('nvidia'))).toBe(false);
    // An attempt that stopped the CT to restart it and died before starting it: the retry starts it again.
    expect((await sh(lab, 'pct stop 118')).code).toBe(0);
    expect(await run.run(acts.releaseComfyuiGpu, cfg)).toMatchObject({ changed: false, detail: 'CT 118 already without its GPU' });
    expect(lab.state().guests['118']?.status).toBe('running');
    // another run finds nothing of its own to finish, and no GPU lines to take out
    const other = new MockActivityEnvironment({ workflowExecution: { workflowId: 'comfy', runId: 'r2' } });
    expect(await other.run(acts.releaseComfyuiGpu, cfg)).toMatchObject({ changed: false, detail: 'CT 118 has no GPU passthrough' });
    expect(await other.run(acts.restoreFrontend, cfg, { changed: true, frontend: 'comfyui' as const })).toEqual({ changed: false, detail: 'comfyui already as before' });
    const undo = (await run.run(acts.restoreFrontend, cfg, { changed: true, frontend: 'comfyui' as const, beforeRaw })) as { changed: boolean; detail: string };
    expect(undo).toEqual({ changed: true, detail: 'removed /etc/systemd/system/comfyui.service.d/pve-vllm-cpu.conf; CT 118 config restored and restarted' });
    const after = lab.state().guests['118'];
    expect({ config: after?.config, lxc: after?.lxc, status: after?.status }).toEqual({ config: before?.config, lxc: before?.lxc, status: before?.status });
  });

  it('releaseComfyuiGpu on a stopped CT takes only its GPU lines, says so again on a retry, and its undo leaves it stopped', async () => {
    expect((await sh(lab, 'pct stop 118')).code).toBe(0);
    const run = new MockActivityEnvironment({ workflowExecution: { workflowId: 'comfy-stopped', runId: 'stopped-r1' } });
    try {
      const before = lab.state().guests['118'];
      const beforeRaw = (await run.run(acts.readGuestConfig, cfg, 118)) as string;
      const said = { changed: true, detail: 'CT 118 is stopped: its GPU passthrough is removed from its config; start it (pct start 118) and run deploy again, so that ComfyUI runs with --cpu' };
      expect(await run.run(acts.releaseComfyuiGpu, cfg)).toMatchObject(said);
      expect(await run.run(acts.releaseComfyuiGpu, cfg)).toMatchObject(said);
      expect(lab.state().guests['118']?.lxc.some(([, v]) => v.includes('nvidia'))).toBe(false);
      expect(await run.run(acts.restoreFrontend, cfg, { changed: true, frontend: 'comfyui' as const, beforeRaw })).toEqual({ changed: true, detail: 'CT 118 config restored (left stopped, as it was)' });
      const after = lab.state().guests['118'];
      expect({ config: after?.config, lxc: after?.lxc, status: after?.status }).toEqual({ config: before?.config, lxc: before?.lxc, status: 'stopped' });
    } finally {
      await sh(lab, 'pct start 118; rm -f /root/.pve-vllm-comfyui-release.json');
    }
  });

  it('releaseComfyuiGpu also takes out PVE devN passthrough, the form community-scripts write', async () => {
    const original = (await sh(lab, 'cat /etc/pve/lxc/118.conf')).stdout;
    const devN = original.split('\n').filter((l) => !/nvidia|dri|cgroup2/.test(l)).join('\n').replace(/\n*$/, '\ndev0: /dev/nvidia0,gid=44\ndev1: /dev/nvidiactl,gid=44\ndev2: /dev/dri/renderD128,gid=104\n');
    expect((await sh(lab, 'cat > /etc/pve/lxc/118.conf', devN)).code).toBe(0);
    const run = new MockActivityEnvironment({ workflowExecution: { workflowId: 'comfy-devn', runId: 'r1' } });
    try {
      expect(await run.run(acts.releaseComfyuiGpu, cfg)).toMatchObject({ changed: true, detail: 'CT 118: GPU passthrough removed, ComfyUI on --cpu' });
      const conf = lab.state().guests['118']?.config ?? {};
      expect(Object.keys(conf).filter((k) => /^dev\d+$/.test(k))).toEqual([]);
      expect(lab.state().guests['118']?.status).toBe('running');
    } finally {
      await sh(lab, 'cat > /etc/pve/lxc/118.conf', original);
      await sh(lab, 'pct exec 118 -- rm -f /etc/systemd/system/comfyui.service.d/pve-vllm-cpu.conf /root/.pve-vllm-comfyui-before.json');
      await sh(lab, 'rm -f /root/.pve-vllm-comfyui-release.json');
    }
  });

  it('ensureGpuBootUnit writes and enables its unit once; removeGpuBootUnit takes away only what its run made', async () => {
    const run = new MockActivityEnvironment({ workflowExecution: { workflowId: 'unit', runId: 'r1' } });
    expect(await run.run(acts.ensureGpuBootUnit, cfg)).toEqual({ changed: true });
    const journalAfterFirst = lab.journal().length;
    expect(await run.run(acts.ensureGpuBootUnit, cfg)).toEqual({ changed: false });
    expect(lab.journal().length).toBe(journalAfterFirst);
    expect((await sh(lab, 'systemctl is-enabled pve-vllm-gpu.service')).stdout).toBe('enabled\n');
    const other = new MockActivityEnvironment({ workflowExecution: { workflowId: 'unit', runId: 'r2' } });
    expect(await other.run(acts.removeGpuBootUnit, cfg)).toEqual({ changed: false, detail: 'pve-vllm-gpu.service as before' });
    expect(await run.run(acts.removeGpuBootUnit, cfg)).toEqual({ changed: true, detail: 'pve-vllm-gpu.service removed' });
    expect(await sh(lab, 'ls /etc/systemd/system /root | grep -c pve-vllm-gpu')).toMatchObject({ stdout: '0\n' });
    expect(await run.run(acts.removeGpuBootUnit, cfg)).toEqual({ changed: false, detail: 'pve-vllm-gpu.service as before' });
  });

  it('ensureRepoCloned clones at the pinned ref once', async () => {
    const first = (await env.run(acts.ensureRepoCloned, cfg)) as { changed: boolean; commit: string };
    expect(first.changed).toBe(true);
    expect(first.commit).toMatch(/^[0-9a-f]{40}$/);
    const second = await env.run(acts.ensureRepoCloned, cfg);
    expect(second).toEqual({ ...first, changed: false });
  });

  it('ensureRepoCloned follows repo.ref to a branch, a commit id or another path, and refuses a ref the remote lacks', async () => {
    const at = (ref: string, path = cfg.repo.path) => ({ ...cfg, repo: { ...cfg.repo, ref, path } });
    const main = (await env.run(acts.ensureRepoCloned, at('main'))) as { changed: boolean; commit: string };
    expect(main.changed).toBe(true);
    expect(await env.run(acts.ensureRepoCloned, at('main'))).toEqual({ ...main, changed: false });
    const post1 = 'a6221a144af772fd1a68fe7e627935dc53e81738'; // v0.6.4.post1
    expect(await env.run(acts.ensureRepoCloned, at(post1))).toEqual({ changed: true, commit: post1, path: cfg.repo.path });
    expect(await env.run(acts.ensureRepoCloned, at(post1, '/opt/vllm-pinned'))).toEqual({ changed: true, commit: post1, path: '/opt/vllm-pinned' });
    expect(await env.run(acts.ensureRepoCloned, at(post1, '/opt/vllm-pinned'))).toEqual({ changed: false, commit: post1, path: '/opt/vllm-pinned' });
    expect(await sh(lab, 'test -f /opt/vllm-pinned/README.md && ls -A /opt | grep -c pve-vllm-clone')).toMatchObject({ stdout: '0\n' });
    const err = await env.run(acts.ensureRepoCloned, at('v9.9.9')).catch((e: Error) => e);
    expect(err).toMatchObject({ type: 'RepoRefNotFound', nonRetryable: true });
    expect((err as Error).message).toContain('repo.ref v9.9.9 is neither a tag nor a branch');
  });

  it('assessOpenwebui recommends scrap, which is for good, only for a running CT whose UI does not answer', async () => {
    const recommend = async () => ((await env.run(acts.assessOpenwebui, cfg)) as { recommendation: string }).recommendation;
    expect(await recommend()).toBe('keep');
    expect((await sh(lab, 'pct exec 116 -- systemctl stop open-webui')).code).toBe(0);
    expect(await recommend()).toBe('scrap');
    expect((await sh(lab, 'pct stop 116')).code).toBe(0);
    expect(await recommend()).toBe('keep'); // merely stopped
    expect((await sh(lab, 'pct start 116')).code).toBe(0);
    expect(await recommend()).toBe('keep');
  });

  it('ensureGpuReleasedFromVm stops VM 151 and clears onboot once; returnGpuToVm gives it back', async () => {
    const release = (await env.run(acts.ensureGpuReleasedFromVm, cfg)) as Awaited<ReturnType<typeof acts.ensureGpuReleasedFromVm>>;
    expect(release).toEqual({ changed: true, vmid: 151, wasRunning: true, onbootBefore: true });
    expect(await env.run(acts.ensureGpuReleasedFromVm, cfg)).toEqual({ changed: false, vmid: 151, wasRunning: false, onbootBefore: false });
    const back = (await env.run(acts.returnGpuToVm, cfg, release)) as { changed: boolean };
    expect(back.changed).toBe(true);
    expect(lab.state().guests['151']).toMatchObject({ status: 'running', config: expect.objectContaining({ onboot: '1' }) });
    expect(((await env.run(acts.returnGpuToVm, cfg, release)) as { changed: boolean }).changed).toBe(false);
  });

  it('returnGpuToVm leaves a card that was on nvidia before the run on nvidia, restoring only onboot', async () => {
    const release = (await env.run(acts.ensureGpuReleasedFromVm, cfg)) as Awaited<ReturnType<typeof acts.ensureGpuReleasedFromVm>>;
    await env.run(acts.ensureHostGpuDriver, cfg);
    const driver = async () => (await sh(lab, 'lspci -nnk -s 01:00.0')).stdout.match(/Kernel driver in use: (\S+)/)?.[1];
    expect(await driver()).toBe('nvidia');
    const back = (await env.run(acts.returnGpuToVm, cfg, { changed: false, vmid: 151, wasRunning: false, onbootBefore: true, driverBefore: 'nvidia' })) as { detail: string };
    expect(back.detail).toBe('VM 151 onboot 1');
    expect(await driver()).toBe('nvidia');
    expect(lab.state().guests['151']?.status).toBe('stopped');
    await env.run(acts.returnGpuToVm, cfg, release); // as the host was: VM 151 running with the card
    expect(await driver()).toBe('vfio-pci');
  });
});
