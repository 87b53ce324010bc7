// The deploy end to end on the real dev server, a real worker, real adapters and the lab.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../src/activities';
import { createActivityDeps } from '../../src/activities/deps';
import { startLab } from '../../src/lab';
import type { LabState } from '../../src/lab/state';
import type { DeployConfig } from '../../src/config/schema';
import type { DeployProgress } from '../../src/workflows/messages';
import { readHostNow } from '../../src/cli/plan-live';
import { labConfig, runDeploy, runTeardown, withClient } from '../harness/deploy-run';
import { sh } from '../lab/helpers';

jest.setTimeout(240_000);

function guestSnapshot(s: LabState, id: number) {
  const g = s.guests[String(id)];
  return g ? { status: g.status, config: g.config, lxc: g.lxc } : undefined;
}

function expectHostAsBefore(before: LabState, after: LabState): void {
  const vm = after.guests['151'];
  expect(vm?.status).toBe('running');
  expect(vm?.config.hostpci0).toBe(before.guests['151']?.config.hostpci0);
  expect(vm?.config.onboot).toBe('1');
  expect(after.pci.find((d) => d.bdf === '0000:01:00.0')?.driver).toBe('vfio-pci');
  expect(guestSnapshot(after, 116)).toEqual(guestSnapshot(before, 116));
  expect(guestSnapshot(after, 118)).toEqual(guestSnapshot(before, 118));
  expect(after.guests['117']).toBeUndefined();
}

/** Every undo of the run went through, and the host is as it was before the run. */
function expectAllUndone(p: DeployProgress, before: LabState, after: LabState): void {
  expect(p.compensations.filter((c) => c.outcome === 'failed')).toEqual([]);
  expectHostAsBefore(before, after);
}

const passed = (p: DeployProgress) => p.checkpoints.filter((c) => c.passed).map((c) => c.n);

/** The lab's host before any deploy, to compare with after an undo. */
async function freshHostState(): Promise<LabState> {
  const lab = await startLab({ timeScale: 0.05 });
  const state = lab.state();
  await lab.stop();
  return state;
}

/** A lab state file made ready by a root shell line on the lab, and the host as it then is. */
async function preparedLab(command: string): Promise<{ statePath: string; before: LabState }> {
  const statePath = join(mkdtempSync(join(tmpdir(), 'lab-state-')), 'lab.json');
  const setup = await startLab({ timeScale: 0.05, statePath });
  expect((await sh(setup, command)).code).toBe(0);
  const before = setup.state();
  await setup.stop();
  return { statePath, before };
}

describe('deploy on the lab', () => {
  it.each([
    ['keep', 'openwebui'],
    ['keep', 'comfyui'],
    ['keep', 'both'],
    ['scrap', 'comfyui'],
  ])('completes with openwebui=%s frontend=%s and passes all six checkpoints', async (openwebui, frontend) => {
    const { progress, lab } = await runDeploy({ decide: { openwebui, frontend } });
    try {
      expect({ status: progress.status, error: progress.error }).toEqual({ status: 'completed', error: undefined });
      expect(passed(progress)).toEqual([1, 2, 3, 4, 5, 6]);
      const s = lab.state();
      expect(s.guests['117']?.status).toBe('running');
      expect(s.guests['151']?.status).toBe('stopped');
      expect(s.guests['151']?.config.onboot).toBe('0');
      // ComfyUI lets go of the GPU whichever frontend is chosen (the design's step 6).
      expect(s.guests['118']?.lxc.some(([, v]) => v.includes('nvidia'))).toBe(false);
      expect(s.runtimes['118']?.services['comfyui.service']).toBe('active');
      if (openwebui === 'scrap') expect(s.guests['116']).toBeUndefined();
      expect(progress.decisions.map((d) => `${d.decision}=${d.choice}`)).toEqual([`openwebui=${openwebui}`, `frontend=${frontend}`]);
    } finally {
      await lab.stop();
    }
  });

  it.each(['pve-500', 'ssh-drop'] as const)('completes despite the %s fault', async (fault) => {
    const { progress, lab } = await runDeploy({ faults: [fault], decide: { openwebui: 'keep', frontend: 'openwebui' } });
    try {
      expect({ status: progress.status, error: progress.error }).toEqual({ status: 'completed', error: undefined });
      expect(passed(progress)).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await lab.stop();
    }
  });

  it.each([
    ['vllm-oom', 4],
    ['driver-mismatch', 3],
    ['frontend-unreachable', 5],
  ] as const)('undoes everything after the %s fault (fails before checkpoint %i)', async (fault, failedAt) => {
    const before = await freshHostState();
    const { progress, lab } = await runDeploy({ faults: [fault], decide: { openwebui: 'keep', frontend: 'comfyui' } });
    try {
      expect(progress.status).toBe('compensated');
      expect(passed(progress)).toEqual([1, 2, 3, 4, 5, 6].filter((n) => n < failedAt));
      expect(progress.compensations.filter((c) => c.outcome === 'failed')).toEqual([]);
      expect(progress.compensations.map((c) => c.name)).toContain('give GPU 0000:01:00.0 back to VM 151');
      if (failedAt > 3) expect(progress.compensations.find((c) => c.name === 'remove the GPU boot unit')).toMatchObject({ outcome: 'done', detail: 'pve-vllm-gpu.service removed' });
      expect((await sh(lab, 'ls /etc/systemd/system /root')).stdout).not.toMatch(/pve-vllm-gpu/);
      if (fault === 'frontend-unreachable') {
        // ComfyUI got its GPU lines back and was restarted by its own undo: it lets go of the card before the
        // unbind, and runs again once VM 151 holds it.
        const giveBack = progress.compensations.find((c) => c.name === 'give GPU 0000:01:00.0 back to VM 151');
        expect(giveBack?.detail).toMatch(/stopped CT 118.*unbound 0000:01:00\.0 from nvidia.*VM 151 started; CT 118 started again/);
      }
      expectHostAsBefore(before, lab.state());
    } finally {
      await lab.stop();
    }
  });

  it('takes only the GPU from ComfyUI when OpenWebUI is the frontend, and gives it back when the run is undone', async () => {
    const before = await freshHostState();
    const ok = await runDeploy({ decide: { openwebui: 'keep', frontend: 'openwebui' } });
    try {
      expect(ok.progress.status).toBe('completed');
      const s = ok.lab.state();
      expect(s.guests['118']?.lxc.filter(([k, v]) => k === 'lxc.mount.entry' && v.includes('/dev/nvidia'))).toEqual([]);
      // Its size, nodes and workflows stay: it is not the frontend.
      expect(s.guests['118']?.config).toEqual(before.guests['118']?.config);
      expect(s.runtimes['118']?.comfyui?.loadedPacks).toEqual([]);
      expect((await sh(ok.lab, 'pct exec 118 -- cat /etc/systemd/system/comfyui.service.d/pve-vllm-cpu.conf')).stdout).toMatch(/^ExecStart=.* --cpu$/m);
      expect(ok.progress.steps.find((st) => st.step === 6)?.detail).toMatch(/ComfyUI: CT 118: GPU passthrough removed, ComfyUI on --cpu/);
    } finally {
      await ok.lab.stop();
    }
    const failed = await runDeploy({ faults: ['vllm-oom'], decide: { openwebui: 'keep', frontend: 'openwebui' } });
    try {
      expect(failed.progress.status).toBe('compensated');
      expect(failed.progress.compensations.find((c) => c.name === 'restore comfyui')?.outcome).toBe('done');
      expectAllUndone(failed.progress, before, failed.lab.state());
      expect((await sh(failed.lab, 'pct exec 118 -- test -e /etc/systemd/system/comfyui.service.d/pve-vllm-cpu.conf')).code).toBe(1);
    } finally {
      await failed.lab.stop();
    }
  });

  it("takes a stopped ComfyUI's GPU lines and leaves it stopped; a re-run once it runs gives it --cpu; teardown puts it back", async () => {
    const { statePath, before } = await preparedLab('pct stop 118');
    const decide = { openwebui: 'keep', frontend: 'openwebui' };
    const first = await runDeploy({ labState: statePath, decide });
    try {
      expect(first.progress.status).toBe('completed');
      const g = first.lab.state().guests['118'];
      expect(g?.status).toBe('stopped');
      expect(g?.lxc.filter(([, v]) => /nvidia|dri/.test(v))).toEqual([]);
      expect(g?.config).toEqual(before.guests['118']?.config);
      expect(first.progress.steps.find((st) => st.step === 6)?.detail).toMatch(/CT 118 is stopped: its GPU passthrough is removed from its config; start it \(pct start 118\) and run deploy again/);
      // Started as it now is, its CUDA torch finds no GPU: ComfyUI fails until it is told --cpu.
      expect((await sh(first.lab, 'pct start 118')).code).toBe(0);
      expect((await sh(first.lab, 'pct exec 118 -- systemctl is-active comfyui')).stdout).toBe('failed\n');
    } finally {
      await first.lab.stop();
    }
    const second = await runDeploy({ labState: statePath, decide });
    try {
      expect(second.progress.status).toBe('completed');
      expect(second.progress.steps.find((st) => st.step === 6)?.detail).toMatch(/ComfyUI: CT 118: GPU passthrough removed, ComfyUI on --cpu/);
      expect((await sh(second.lab, 'pct exec 118 -- systemctl is-active comfyui')).stdout).toBe('active\n');
      const down = await runTeardown(second.lab);
      expect({ status: down.status, error: down.error }).toEqual({ status: 'completed', error: undefined });
      // As before the first deploy, stopped too: the card went back to VM 151, and only the CTs that ran then start.
      expect(guestSnapshot(second.lab.state(), 118)).toEqual(guestSnapshot(before, 118));
      expect((await sh(second.lab, 'test -e /root/.pve-vllm-comfyui-release.json')).code).toBe(1);
      expect(down.steps.find((st) => st.name === 'Put the frontends back')?.detail).toMatch(/removed \/etc\/systemd\/system\/comfyui.service.d\/pve-vllm-cpu.conf.*CT 118 config restored/);
    } finally {
      await second.lab.stop();
    }
  });

  it('teardown puts back the config of a ComfyUI that stayed stopped, and leaves it stopped', async () => {
    const { statePath, before } = await preparedLab('pct stop 118');
    const { progress, lab } = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend: 'openwebui' } });
    try {
      expect(progress.status).toBe('completed');
      expect(lab.state().guests['118']?.lxc).not.toEqual(before.guests['118']?.lxc);
      const down = await runTeardown(lab);
      expect({ status: down.status, error: down.error }).toEqual({ status: 'completed', error: undefined });
      expect(down.steps.find((st) => st.name === 'Put the frontends back')?.detail).toMatch(/comfyui: CT 118 config restored \(stopped; nothing inside it was changed\)/);
      expect(guestSnapshot(lab.state(), 118)).toEqual(guestSnapshot(before, 118));
    } finally {
      await lab.stop();
    }
  });

  it("puts a stopped ComfyUI's GPU lines back when the run is undone, and leaves it stopped", async () => {
    const { statePath, before } = await preparedLab('pct stop 118');
    const { progress, lab } = await runDeploy({ labState: statePath, faults: ['vllm-oom'], decide: { openwebui: 'keep', frontend: 'openwebui' } });
    try {
      expect(progress.status).toBe('compensated');
      expect(progress.compensations.find((c) => c.name === 'restore comfyui')).toMatchObject({ outcome: 'done', detail: 'CT 118 config restored (left stopped, as it was)' });
      expect(guestSnapshot(lab.state(), 118)).toEqual(guestSnapshot(before, 118));
    } finally {
      await lab.stop();
    }
  });

  it.each([['both'], ['openwebui']])('teardown after a completed deploy (frontend=%s) puts the host back as it was, and a second one finds nothing to do', async (frontend) => {
    const before = await freshHostState();
    const statePath = join(mkdtempSync(join(tmpdir(), 'lab-state-')), 'lab.json');
    const first = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend } });
    expect(first.progress.status).toBe('completed');
    await first.lab.stop();
    // A model switch after it finds the host deployed: the first deploy's record of the host is what stays.
    const { progress, lab } = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend }, configEdit: (c) => ({ ...c, model: { ...c.model, id: 'Qwen/Qwen2.5-1.5B-Instruct' } }) });
    try {
      expect(progress.status).toBe('completed');
      // `plan --live` on the deployed host sees what it serves and that pve-vllm was here before.
      const live = await readHostNow(await labConfig(lab, (c) => ({ ...c, guests: { ...c.guests, vllm: { ...c.guests.vllm, cores: 8 } } })));
      const now = Object.fromEntries(live.map((l) => [l.what, l.now]));
      // Reused, and step 5's own comparison says what it would change (here the cores, asked down to 8).
      expect(live.find((l) => l.what === 'CT 117 (vLLM)')?.then).toBe("reused: cores 16 -> 8; GPU passthrough and vLLM set to this config, unless OpenWebUI's CT is repurposed at step 4");
      expect(now).toMatchObject({ vLLM: 'serves Qwen/Qwen2.5-1.5B-Instruct', 'CT 117 (vLLM)': 'exists', 'pve-vllm-gpu.service': 'enabled', 'GPU 0000:01:00.0': expect.stringMatching(/, driver nvidia$/) });
      expect(now['deployment record']).toMatch(/^kept by run [0-9a-f-]{36}: pve-vllm deployed here before$/);
      const down = await runTeardown(lab);
      expect({ status: down.status, error: down.error, steps: down.steps.map((st) => `${st.status} ${st.name}`) }).toEqual({
        status: 'completed',
        error: undefined,
        steps: [
          'done Read what the host was before the first deploy',
          'done Destroy CT 117, made by pve-vllm',
          'done Remove the GPU boot unit',
          'done Put the frontends back',
          'done Give GPU 0000:01:00.0 back to VM 151',
          'done Forget the deployment',
        ],
      });
      expectHostAsBefore(before, lab.state());
      const left = await sh(lab, 'ls /root /etc/systemd/system; pct exec 116 -- ls /root; pct exec 118 -- ls /root /etc/systemd/system/comfyui.service.d /opt/ComfyUI/custom_nodes');
      expect(left.stdout).not.toMatch(/pve-vllm/);
      expect(lab.state().runtimes['116']?.openwebui?.config).toEqual(before.runtimes['116']?.openwebui?.config);
      const again = await runTeardown(lab).catch((e: unknown) => e);
      expect({ status: (again as DeployProgress).status, error: (again as DeployProgress).error }).toMatchObject({ status: 'failed', error: expect.stringMatching(/no deployment record on 127\.0\.0\.1/) });
    } finally {
      await lab.stop();
    }
  });

  it('teardown also puts back a frontend that only a later deploy changed (added to the config since)', async () => {
    const before = await freshHostState();
    const statePath = join(mkdtempSync(join(tmpdir(), 'lab-state-')), 'lab.json');
    const withoutComfy = (c: DeployConfig): DeployConfig => ({ ...c, guests: { ...c.guests, comfyui: undefined } });
    const first = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend: 'openwebui' }, configEdit: withoutComfy });
    expect(first.progress.status).toBe('completed');
    expect(guestSnapshot(first.lab.state(), 118)).toEqual(guestSnapshot(before, 118));
    await first.lab.stop();
    const { progress, lab } = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend: 'both' } });
    try {
      expect(progress.status).toBe('completed');
      expect(lab.state().guests['118']?.lxc.some(([, v]) => v.includes('nvidia'))).toBe(false);
      expect((await runTeardown(lab)).status).toBe('completed');
      expectHostAsBefore(before, lab.state());
    } finally {
      await lab.stop();
    }
  });

  it('gives the GPU back and removes the new CT when cancelled while VM 151 shuts down', async () => {
    const before = await freshHostState();
    let cancelledAt = -1;
    const { progress, lab } = await runDeploy({
      timeScale: 0.5,
      decide: { openwebui: 'keep', frontend: 'openwebui' },
      during: async (handle, l) => {
        for (let i = 0; i < 600; i++) {
          const d = await handle.describe();
          if ((d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'ensureGpuReleasedFromVm')) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        cancelledAt = l.journal().length;
        await handle.cancel();
      },
    });
    try {
      expect(progress.status).toBe('cancelled');
      // The shutdown was under way when the cancel came, and ended before the undos ran.
      expect(lab.journal().slice(0, cancelledAt).some((e) => e.op === 'vm.shutdown')).toBe(false);
      expect(progress.compensations.map((c) => [c.name, c.outcome])).toEqual(expect.arrayContaining([
        ['give GPU 0000:01:00.0 back to VM 151', 'done'],
        ['destroy CT 117', 'done'],
      ]));
      expect(progress.compensations.filter((c) => c.outcome === 'failed')).toEqual([]);
      // Nothing of the run goes on after it ended: the host stays as it was before.
      const settled = lab.journal().length;
      await new Promise((r) => setTimeout(r, 3000));
      expect(lab.journal().slice(settled)).toEqual([]);
      expectHostAsBefore(before, lab.state());
    } finally {
      await lab.stop();
    }
  });

  it('undoes everything when cancelled during the image pull', async () => {
    const before = await freshHostState();
    const { progress, lab } = await runDeploy({
      timeScale: 0.5,
      decide: { openwebui: 'keep', frontend: 'openwebui' },
      during: async (handle, l) => {
        for (let i = 0; i < 600; i++) {
          if (l.journal().some((e) => e.op.includes('docker pull') || e.detail.includes('docker pull'))) break;
          const p = await handle.query<DeployProgress>('progress').catch(() => undefined);
          if (p?.currentStep.startsWith('5.') && p.checkpoints[2]?.passed) {
            const d = await handle.describe();
            if ((d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'ensureImagePulled')) break;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        await handle.cancel();
      },
    });
    try {
      expect(progress.status).toBe('cancelled');
      expectAllUndone(progress, before, lab.state());
    } finally {
      await lab.stop();
    }
  });

  it('keeps a user that was there before, taking back only what the run added to it', async () => {
    // The design's host has its user `claude` already. A run that fails must not delete it or its home.
    const { statePath } = await preparedLab('useradd -m -s /bin/bash claude && echo mine > /home/claude/notes.txt && chown claude:claude /home/claude/notes.txt');
    const { progress, lab } = await runDeploy({ labState: statePath, faults: ['frontend-unreachable'], decide: { openwebui: 'keep', frontend: 'comfyui' } });
    try {
      expect(progress.status).toBe('compensated');
      const undo = progress.compensations.find((c) => c.name === 'take back changes to user claude');
      expect(undo).toMatchObject({ outcome: 'done' });
      expect(progress.compensations.map((c) => c.name)).not.toContain('remove user claude');
      const seen = await sh(lab, 'id -nG claude; cat /home/claude/notes.txt; ls /etc/sudoers.d; test -e /home/claude/.ssh/authorized_keys && echo keys');
      expect(seen).toMatchObject({ code: 1, stdout: 'claude\nmine\nREADME\n' });
    } finally {
      await lab.stop();
    }
  });

  /** A lab whose CT 116 has NVIDIA passthrough, as the design's "repurpose (if has GPU passthrough)" needs. */
  function labWithGpuIn116(): Promise<{ statePath: string; before: LabState }> {
    const lines = 'lxc.cgroup2.devices.allow: c 195:* rwm\nlxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\n';
    return preparedLab(`printf '${lines}' >> /etc/pve/lxc/116.conf && pct stop 116 && pct start 116`);
  }

  it('undoes a failed repurpose: CT 116 runs again with its own config, VM 151 has the GPU', async () => {
    const { statePath, before } = await labWithGpuIn116();
    const { progress, lab } = await runDeploy({ labState: statePath, faults: ['frontend-unreachable'], decide: { openwebui: 'repurpose', frontend: 'comfyui' } });
    try {
      expect(progress.status).toBe('compensated');
      expectAllUndone(progress, before, lab.state());
    } finally {
      await lab.stop();
    }
  });

  it('repurposes OpenWebUI\'s CT for vLLM and reaches vLLM at that CT\'s address', async () => {
    const { statePath, before } = await labWithGpuIn116();
    const { progress, lab } = await runDeploy({ labState: statePath, decide: { openwebui: 'repurpose', frontend: 'comfyui' } });
    try {
      expect({ status: progress.status, error: progress.error }).toEqual({ status: 'completed', error: undefined });
      expect(passed(progress)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(progress.endpoint).toBe(`${lab.endpoints.vllmRepurposed}/v1`);
      expect(lab.state().runtimes['116']?.docker.containers.find((c) => c.name === 'vllm')?.state).toBe('running');
      expect(lab.state().guests['117']).toBeUndefined();
      // CT 117's address has no vLLM: the old endpoint would have waited there for good.
      expect((await fetch(`${lab.endpoints.vllm}/health`).catch(() => undefined))?.status).toBeUndefined();
      expect((await fetch(`${lab.endpoints.vllmRepurposed}/health`)).status).toBe(200);
      // Teardown: CT 116 keeps its data and gets its config back; vLLM, which it never had, goes.
      const down = await runTeardown(lab);
      expect({ status: down.status, error: down.error, step: down.steps[1]?.detail }).toEqual({ status: 'completed', error: undefined, step: expect.stringMatching(/^vLLM removed from CT 116 \(Docker stays installed\); CT 116 config/) });
      expectHostAsBefore(before, lab.state());
      expect(lab.state().runtimes['116']?.docker.containers.filter((c) => c.state === 'running')).toEqual([]);
      expect((await sh(lab, 'pct exec 116 -- ls -A /opt/vllm')).stdout).toBe('');
    } finally {
      await lab.stop();
    }
  });

  it('a re-run heals a vLLM CT that started before the host had the GPU on nvidia (as after a reboot)', async () => {
    const statePath = join(mkdtempSync(join(tmpdir(), 'lab-state-')), 'lab.json');
    const first = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend: 'openwebui' } });
    expect(first.progress.status).toBe('completed');
    // What a reboot leaves: the card on no driver, CT 117 (onboot) started without its device nodes, vLLM failing.
    const boot = await sh(first.lab, 'pct stop 117 && echo 0000:01:00.0 > /sys/bus/pci/drivers/nvidia/unbind && pct start 117 && pct exec 117 -- ls /dev');
    expect(boot.code).toBe(0);
    expect(boot.stdout).not.toMatch(/nvidia0/);
    await first.lab.stop();
    const second = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend: 'openwebui' } });
    try {
      expect({ status: second.progress.status, error: second.progress.error }).toEqual({ status: 'completed', error: undefined });
      expect(passed(second.progress)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(second.progress.changes).toEqual(expect.arrayContaining(['Start CT 117']));
      expect((await sh(second.lab, 'pct exec 117 -- ls /dev')).stdout).toMatch(/nvidia0/);
    } finally {
      await second.lab.stop();
    }
  });

  it.each([
    ['a host', ''],
    ['a host whose vfio-pci claims the card at boot', "echo 'options vfio-pci ids=10de:2705,10de:22bb' > /etc/modprobe.d/vfio.conf"],
  ])('survives a reboot of %s: the GPU is back on nvidia with its nodes before CT 117 starts, and vLLM serves', async (_, setup) => {
    const labState = setup ? (await preparedLab(setup)).statePath : undefined;
    const { progress, lab } = await runDeploy({ labState, decide: { openwebui: 'keep', frontend: 'openwebui' } });
    try {
      expect(progress.status).toBe('completed');
      const boot = await lab.reboot();
      expect({ units: boot.units, why: lab.journal().filter((e) => e.op === 'boot.unit-failed').map((e) => e.detail) }).toEqual({ units: { 'pve-vllm-gpu.service': 'active' }, why: [] });
      expect(boot.started).toEqual(expect.arrayContaining([116, 117, 118]));
      expect(boot.started).not.toContain(151);
      const seen = await sh(lab, 'pct exec 117 -- nvidia-smi -L && pct exec 117 -- test -e /dev/nvidia-uvm && echo uvm');
      expect(seen).toMatchObject({ code: 0, stdout: expect.stringMatching(/^GPU 0: NVIDIA GeForce RTX 4070 Ti SUPER.*\nuvm\n$/s) });
      let health = 0;
      for (let i = 0; i < 100 && health !== 200; i++) {
        health = await fetch(`${lab.endpoints.vllm}/health`).then((r) => r.status, () => 0);
        if (health !== 200) await new Promise((r) => setTimeout(r, 200));
      }
      expect(health).toBe(200);
    } finally {
      await lab.stop();
    }
  });

  it('fails checkpoint 3 and undoes everything when the card is not the one the model was sized for', async () => {
    const before = await freshHostState();
    const { progress, lab } = await runDeploy({
      decide: { openwebui: 'keep', frontend: 'openwebui' },
      configEdit: (c) => ({ ...c, gpu: { ...c.gpu, vramMiB: 24564 } }),
    });
    try {
      expect(progress.status).toBe('compensated');
      expect(passed(progress)).toEqual([1, 2]);
      expect(progress.error).toContain('reports 16376 MiB, less than gpu.vramMiB 24564 the model was sized for');
      expectHostAsBefore(before, lab.state());
    } finally {
      await lab.stop();
    }
  });

  it('rejects an invalid decision through the update validator and keeps waiting', async () => {
    const { progress, lab } = await runDeploy({
      decide: { frontend: 'openwebui' },
      during: async (handle) => {
        let p: DeployProgress | undefined;
        for (let i = 0; i < 600 && !p?.pending.some((d) => d.decision === 'openwebui'); i++) {
          p = await handle.query<DeployProgress>('progress').catch(() => undefined);
          await new Promise((r) => setTimeout(r, 100));
        }
        const bad = await handle.executeUpdate('decideOpenwebui', { args: [{ choice: 'repurpose', by: 'test' }] }).catch((e: unknown) => e);
        expect(bad).toBeInstanceOf(WorkflowUpdateFailedError);
        expect(String((bad as WorkflowUpdateFailedError).cause?.message)).toMatch(/no GPU passthrough/);
        await handle.signal('decideOpenwebui', { choice: 'explode' });
        p = await handle.query<DeployProgress>('progress');
        expect(p.status).toBe('running');
        expect(p.rejected.map((r) => r.reason)).toEqual([expect.stringMatching(/unknown choice "explode"/)]);
        expect(p.pending.map((d) => d.decision)).toContain('openwebui');
        await handle.signal('decideOpenwebui', { choice: 'keep', by: 'signal-test' });
      },
    });
    try {
      expect(progress.status).toBe('completed');
      expect(progress.decisions.find((d) => d.decision === 'openwebui')).toMatchObject({ choice: 'keep', by: 'signal-test', via: 'signal' });
    } finally {
      await lab.stop();
    }
  });

  it('makes no changes on a second run against the same lab state', async () => {
    const statePath = join(mkdtempSync(join(tmpdir(), 'lab-state-')), 'lab.json');
    const first = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend: 'openwebui' } });
    expect(first.progress.status).toBe('completed');
    expect(first.progress.mutations).toBeGreaterThan(0);
    const journalAfterFirst = first.lab.journal().length;
    await first.lab.stop();
    const second = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend: 'openwebui' } });
    try {
      expect(second.progress.status).toBe('completed');
      expect(second.progress.mutations).toBe(0);
      expect(second.lab.journal().length).toBe(journalAfterFirst);
      expect(passed(second.progress)).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await second.lab.stop();
    }
  });

  it('leaves the old model serving when a switch to another model fails at checkpoint 4', async () => {
    const statePath = join(mkdtempSync(join(tmpdir(), 'lab-state-')), 'lab.json');
    const first = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend: 'openwebui' } });
    expect(first.progress.status).toBe('completed');
    const vllmOf = (r: typeof first) => r.lab.state().runtimes['117']?.docker.containers.find((c) => c.command.includes('--model'));
    const oldModel = vllmOf(first)?.command[vllmOf(first)!.command.indexOf('--model') + 1];
    expect(oldModel).toBeDefined();
    await first.lab.stop();
    const second = await runDeploy({
      labState: statePath,
      decide: { openwebui: 'keep', frontend: 'openwebui' },
      configEdit: (c) => ({ ...c, model: { ...c.model, id: 'Qwen/Qwen2.5-1.5B-Instruct' } }),
      // armed once the lab is up: the restored lab's own start of the old model must not take it
      during: async (_handle, lab) => lab.armFault('vllm-oom'),
    });
    try {
      expect(second.progress.status).toBe('compensated');
      const undo = second.progress.compensations.find((c) => c.name === 'stop vLLM in CT 117');
      expect(undo).toMatchObject({ outcome: 'done', detail: 'vLLM in CT 117 back on its previous compose file, started again' });
      const c = vllmOf(second);
      expect(c?.state).toBe('running');
      expect(c?.command[c.command.indexOf('--model') + 1]).toBe(oldModel);

      // The same activities called directly, as attempts of runs r1 and r2: a retry of r1 after its compose up
      // (a worker killed before it could report) still reports the change, so the undo is registered; another
      // run finds nothing to do; r1's undo puts the old model back once.
      const deps = createActivityDeps();
      const acts = createActivities(deps);
      const attemptOf = (runId: string) => new MockActivityEnvironment({ workflowExecution: { workflowId: 'switch', runId } });
      const cfg = await labConfig(second.lab);
      const launch = { model: 'Qwen/Qwen2.5-1.5B-Instruct', servedModelName: 'Qwen/Qwen2.5-1.5B-Instruct', maxModelLen: 16384, gpuMemoryUtilization: 0.9, cpuOffloadGb: 0 };
      try {
        expect(await attemptOf('r1').run(acts.ensureVllmService, cfg, 117, launch)).toEqual({ changed: true });
        expect(await attemptOf('r1').run(acts.ensureVllmService, cfg, 117, launch)).toEqual({ changed: true });
        expect(await attemptOf('r2').run(acts.ensureVllmService, cfg, 117, launch)).toEqual({ changed: false });
        // a run that changed nothing there has nothing to undo
        expect(await attemptOf('r2').run(acts.stopVllmService, cfg, 117)).toMatchObject({ changed: false });
        expect(vllmOf(second)?.state).toBe('running');
        expect(await attemptOf('r1').run(acts.stopVllmService, cfg, 117)).toMatchObject({ changed: true });
        expect(await attemptOf('r1').run(acts.stopVllmService, cfg, 117)).toMatchObject({ changed: false });
        const back = vllmOf(second);
        expect(back?.state).toBe('running');
        expect(back?.command[back.command.indexOf('--model') + 1]).toBe(oldModel);
      } finally {
        await deps.ssh.close();
      }
    } finally {
      await second.lab.stop();
    }
  });

  it('a failed re-run leaves the frontends as the earlier successful run set them up', async () => {
    const statePath = join(mkdtempSync(join(tmpdir(), 'lab-state-')), 'lab.json');
    const first = await runDeploy({ labState: statePath, decide: { openwebui: 'keep', frontend: 'both' } });
    expect(first.progress.status).toBe('completed');
    const frontends = (r: typeof first) => {
      const rt = (id: string) => r.lab.state().runtimes[id];
      return { comfyui: rt('118')?.services['comfyui.service'], packs: rt('118')?.comfyui?.loadedPacks, openwebui: rt('116')?.openwebui?.config.OPENAI_API_BASE_URLS };
    };
    const working = frontends(first);
    expect(working.comfyui).toBe('active');
    expect(working.packs?.length).toBeGreaterThan(0);
    await first.lab.stop();
    // Another model and another address for vLLM: both frontends change, then the run fails at checkpoint 5.
    const second = await runDeploy({
      labState: statePath,
      faults: ['frontend-unreachable'],
      decide: { openwebui: 'keep', frontend: 'both' },
      configEdit: (c) => ({ ...c, model: { ...c.model, id: 'Qwen/Qwen2.5-1.5B-Instruct' }, guests: { ...c.guests, vllm: { ...c.guests.vllm, endpoint: c.guests.vllm.endpoint?.replace('127.0.0.1', 'localhost') } } }),
    });
    try {
      expect(second.progress.status).toBe('compensated');
      expect(second.progress.compensations.filter((c) => /^restore (openwebui|comfyui)$/.test(c.name)).map((c) => [c.name, c.outcome])).toEqual([
        ['restore openwebui', 'done'],
        ['restore comfyui', 'done'],
      ]);
      expect(frontends(second)).toEqual(working);
    } finally {
      await second.lab.stop();
    }
  });

  it('takes away a vLLM container that is not running when it undoes a change to a stopped service', async () => {
    const run = await runDeploy({ decide: { openwebui: 'keep', frontend: 'openwebui' } });
    const deps = createActivityDeps();
    try {
      expect(run.progress.status).toBe('completed');
      const docker = () => run.lab.state().runtimes['117']?.docker.containers.map((c) => ({ state: c.state, len: c.command[c.command.indexOf('--max-model-len') + 1] }));
      const stop = async () => expect((await sh(run.lab, 'pct exec 117 -- docker stop vllm')).code).toBe(0);
      const compose = async () => (await sh(run.lab, 'pct exec 117 -- cat /opt/vllm/docker-compose.yml')).stdout;
      await stop(); // the user stopped vLLM
      const [old] = docker() ?? [];
      const oldCompose = await compose();
      const acts = createActivities(deps);
      const r1 = new MockActivityEnvironment({ workflowExecution: { workflowId: 'stopped', runId: 'r1' } });
      const cfg = await labConfig(run.lab);
      const launch = { model: cfg.model.id, servedModelName: cfg.model.id, maxModelLen: 2048, gpuMemoryUtilization: 0.9, cpuOffloadGb: 0 };
      expect(old?.len).not.toBe('2048');
      expect(await r1.run(acts.ensureVllmService, cfg, 117, launch)).toEqual({ changed: true });
      expect(docker()).toEqual([{ state: 'running', len: '2048' }]);
      await stop(); // the new container is not running by the time the run is undone (as after a failed start)
      expect(await r1.run(acts.stopVllmService, cfg, 117)).toEqual({ changed: true, detail: 'vLLM in CT 117 stopped, its previous compose file put back' });
      // `docker compose ps` lists only running containers unless asked for all: the undo must still find this one.
      expect(docker()).toEqual([]);
      expect(await compose()).toBe(oldCompose);
    } finally {
      await deps.ssh.close();
      await run.lab.stop();
    }
  });

  // The design's sizing lesson: vLLM's own KV-cache figure is the truth, and the run retries once with it. A
  // model.spec that misdescribes the model makes the preflight's estimate too generous, as a misread config.json
  // would: the lab's vLLM then refuses the context the preflight chose and names the one that fits.
  const mistralAwq = 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ';
  const mistralSpec = {
    id: mistralAwq, layers: 32, hiddenSize: 4096, intermediateSize: 14336, attentionHeads: 32, kvHeads: 8, headDim: 128,
    vocabSize: 32000, tieWordEmbeddings: false, paramsTotal: 7_241_732_096, nativeContext: 32768,
    defaultDtype: 'float16' as const, quantization: 'awq' as const,
  };
  const vllmStarts = (r: { lab: { journal(): Array<{ op: string }> } }) => r.lab.journal().filter((e) => e.op === 'docker compose up').length;
  const vllmArg = (r: { lab: { state(): LabState } }, flag: string) => {
    const c = r.lab.state().runtimes['117']?.docker.containers.find((x) => x.command.includes('--model'));
    return c ? { state: c.state, value: c.command[c.command.indexOf(flag) + 1] } : undefined;
  };

  it('retries once with the context vLLM says fits when the KV cache is too small', async () => {
    const run = await runDeploy({
      decide: { openwebui: 'keep', frontend: 'openwebui' },
      // one KV head instead of eight: the preflight picks 11776 tokens, vLLM has room for 11008
      configEdit: (c) => ({ ...c, model: { ...c.model, id: mistralAwq, maxModelLen: undefined, gpuMemoryUtilization: 0.4, allowContextReduction: true, spec: { ...mistralSpec, kvHeads: 1 } } }),
    });
    try {
      expect({ status: run.progress.status, error: run.progress.error }).toEqual({ status: 'completed', error: undefined });
      expect(passed(run.progress)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(run.progress.sizing).toContain('vLLM: KV cache too small; retrying once with --max-model-len 11008');
      expect(vllmStarts(run)).toBe(2);
      expect(vllmArg(run, '--max-model-len')).toEqual({ state: 'running', value: '11008' });
    } finally {
      await run.lab.stop();
    }
  });

  it.each([
    ['context reduction is not allowed', { maxModelLen: 11776, gpuMemoryUtilization: 0.4, allowContextReduction: false, spec: { ...mistralSpec, kvHeads: 1 } }, /11008/],
    // weights understated: vLLM has room for 464 tokens, under the 512 the run deploys at least
    ['vLLM would fit fewer than 512 tokens', { maxModelLen: 1024, gpuMemoryUtilization: 0.318, allowContextReduction: true, spec: { ...mistralSpec, paramsTotal: 6_000_000_000 } }, /464/],
  ])('does not retry, and undoes everything, when %s', async (_why, model, figure) => {
    const before = await freshHostState();
    const run = await runDeploy({
      decide: { openwebui: 'keep', frontend: 'openwebui' },
      configEdit: (c) => ({ ...c, model: { ...c.model, id: mistralAwq, ...model } }),
    });
    try {
      expect(run.progress.status).toBe('compensated');
      expect(passed(run.progress)).toEqual([1, 2, 3]);
      expect(run.progress.error).toMatch(/^vLLM did not start: /);
      expect(run.progress.error).toMatch(figure);
      expect(run.progress.sizing?.some((l) => l.includes('retrying'))).toBe(false);
      expect(vllmStarts(run)).toBe(1);
      expectAllUndone(run.progress, before, run.lab.state());
    } finally {
      await run.lab.stop();
    }
  });

  it('fails for good, and undoes everything, when vllm.image names a tag the registry does not have', async () => {
    const before = await freshHostState();
    const run = await runDeploy({
      decide: { openwebui: 'keep', frontend: 'openwebui' },
      configEdit: (c) => ({ ...c, vllm: { ...c.vllm, image: 'vllm/vllm-openai:v0.6.4post1' } }),
    });
    try {
      expect(run.progress.status).toBe('compensated');
      expect(run.progress.error).toBe(
        'image vllm/vllm-openai:v0.6.4post1 does not exist or is private: Error response from daemon: manifest for vllm/vllm-openai:v0.6.4post1 not found: ' +
          'manifest unknown: manifest unknown; set vllm.image to a published tag',
      );
      expectAllUndone(run.progress, before, run.lab.state());
    } finally {
      await run.lab.stop();
    }
  });

  it('does steps 2-3 while the human decides, and reconfigures the frontend beside the image pull', async () => {
    let whileWaiting: DeployProgress | undefined;
    const { progress, lab, workflowId } = await runDeploy({
      during: async (handle) => {
        for (let i = 0; i < 600; i++) {
          const p = await handle.query<DeployProgress>('progress').catch(() => undefined);
          if (p && p.steps.some((s) => s.step === 3 && s.status === 'done')) {
            whileWaiting = p;
            break;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        await handle.executeUpdate('decideOpenwebui', { args: [{ choice: 'keep', by: 'test' }] });
        await handle.executeUpdate('decideFrontend', { args: [{ choice: 'comfyui', by: 'test' }] });
      },
    });
    try {
      expect(progress.status).toBe('completed');
      // Nobody had answered yet, and the user, Claude Code and the clone were already done.
      expect(whileWaiting?.pending.map((d) => d.decision).sort()).toEqual(['frontend', 'openwebui']);
      expect(whileWaiting && passed(whileWaiting)).toEqual([1]);
      expect(whileWaiting?.steps.find((s) => s.step === 2)?.status).toBe('done');
      // ComfyUI's reconfiguration started before the pull had finished.
      const history = await withClient((client) => client.workflow.getHandle(workflowId).fetchHistory());
      const events = history.events ?? [];
      const scheduledId = (type: string) => Number(events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type)?.eventId);
      const pull = scheduledId('ensureImagePulled');
      const comfy = scheduledId('ensureComfyuiOnVllm');
      const pullClosed = Number(events.find((e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === pull)?.eventId);
      expect(comfy).toBeLessThan(pullClosed);
      expect(pull).toBeLessThan(pullClosed);
    } finally {
      await lab.stop();
    }
  });
});
