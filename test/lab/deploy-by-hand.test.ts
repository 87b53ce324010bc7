import OpenAI from 'openai';
import { startLab, type Lab } from '../../src/lab';
import { connect, exec } from './helpers';
import { INSTALL, createVllmCt, gpuToHost, must, waitFor, writeCompose } from './flow';

let lab: Lab;
beforeAll(async () => { lab = await startLab({ timeScale: 0.01 }); });
afterAll(async () => { await lab.stop(); });

it('the design deploy done by hand ends with a working vLLM the openai client can use', async () => {
  const c = await connect(lab);
  try {
    const before = await exec(c, 'nvidia-smi');
    expect(before.code).toBe(9);
    expect(before.stderr).toContain("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver");
    expect((await exec(c, 'grep nvidia /proc/devices')).code).toBe(1);
    await gpuToHost(c);
    expect((await must(c, 'lspci -nnk -s 01:00.0')).stdout).toContain('\tKernel driver in use: nvidia\n');
    expect(lab.state().node.initramfsStale).toBe(false);
    expect((await exec(c, 'test -c /dev/nvidia-uvm && [ -c "/dev/nvidia0" ] && echo chars')).stdout).toBe('chars\n');
    expect((await exec(c, 'pct exec 116 -- test -c /dev/nvidia0')).code).toBe(1); // not passed through to CT 116
    expect(lab.journal().some((j) => j.op === 'file.write' && j.detail === '/etc/modprobe.d/blacklist-nouveau.conf')).toBe(true);
    expect((await must(c, 'nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader')).stdout)
      .toBe('NVIDIA GeForce RTX 4070 Ti SUPER, 16376 MiB, 580.126.09\n');
    expect((await must(c, 'grep nvidia /proc/devices')).stdout).toBe('195 nvidia\n235 nvidia-caps\n508 nvidia-uvm\n');
    expect((await must(c, 'cat /proc/driver/nvidia/version')).stdout).toMatch(/^NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580\.126\.09  /);
    await createVllmCt(c);
    const inst = await exec(c, 'pct exec 117 -- bash -s', INSTALL);
    expect(inst.stderr).toContain('INFO[0000] Wrote updated config to /etc/docker/daemon.json');
    expect(inst.code).toBe(0);
    expect((await must(c, 'pct exec 117 -- nvidia-smi -L')).stdout).toMatch(/^GPU 0: NVIDIA GeForce RTX 4070 Ti SUPER/);
    expect((await must(c, "pct exec 117 -- docker info --format '{{json .Runtimes}}'")).stdout)
      .toBe('{"io.containerd.runc.v2":{"path":"runc"},"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}\n');
    await writeCompose(c, 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', 16384, lab.secrets.vllmApiKey);
    const times: number[] = [];
    const pull = await exec(c, 'pct exec 117 -- docker pull vllm/vllm-openai:v0.6.4.post1', '', (_s, at) => times.push(at));
    expect(pull.code).toBe(0);
    expect(pull.stdout).toMatch(/^v0\.6\.4\.post1: Pulling from vllm\/vllm-openai\n/);
    expect(pull.stdout).toContain('Status: Downloaded newer image for vllm/vllm-openai:v0.6.4.post1\ndocker.io/vllm/vllm-openai:v0.6.4.post1\n');
    expect(times.length).toBeGreaterThan(5); // streamed in pieces, not at once
    // A tag of another shape than vllm's releases (v0.6.4.post1) is not in the registry; nor is an unknown repository.
    expect(await exec(c, 'pct exec 117 -- docker pull vllm/vllm-openai:v0.6.4post1')).toEqual({
      code: 1, stdout: '', stderr: 'Error response from daemon: manifest for vllm/vllm-openai:v0.6.4post1 not found: manifest unknown: manifest unknown\n',
    });
    // A digest pins the image, with or without a tag before it: the lab cannot know digests, and serves any.
    const pinned = `vllm/vllm-openai:v0.8.5@sha256:${'a'.repeat(64)}`;
    expect((await exec(c, `pct exec 117 -- docker pull ${pinned}`)).stdout).toMatch(new RegExp(`^v0\\.8\\.5: Pulling from vllm/vllm-openai\n[\\s\\S]*\ndocker\\.io/${pinned.replace(/\./g, '\\.')}\n$`));
    expect((await exec(c, 'pct exec 117 -- docker pull vllm/vllm-opneai:v0.6.4.post1')).stderr).toMatch(/^Error response from daemon: pull access denied for vllm\/vllm-opneai, repository does not exist/);
    const up = await exec(c, 'pct exec 117 -- docker compose --project-directory /opt/vllm-deploy up -d');
    expect(up.code).toBe(0);
    expect(up.stderr).toContain(' Container vllm-deploy-vllm-1  Started\n');
    const ps = await must(c, 'pct exec 117 -- docker compose --project-directory /opt/vllm-deploy ps --format json');
    expect(JSON.parse(ps.stdout.trim()).State).toBe('running');
    await waitFor(async () => (await fetch(`${lab.endpoints.vllm}/health`).catch(() => null))?.status === 200);
    const client = new OpenAI({ baseURL: `${lab.endpoints.vllm}/v1`, apiKey: lab.secrets.vllmApiKey });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['mistral-7b-awq']);
    const chat = await client.chat.completions.create({ model: 'mistral-7b-awq', messages: [{ role: 'user', content: 'Say OK' }] });
    expect(chat.choices[0]?.message.content).toBe('OK');
    const bad = new OpenAI({ baseURL: `${lab.endpoints.vllm}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await expect(bad.models.list()).rejects.toMatchObject({ status: 401 });
    const logs = await must(c, 'pct exec 117 -- docker compose --project-directory /opt/vllm-deploy logs --no-log-prefix');
    expect(logs.stdout).toContain('INFO:     Application startup complete.');
    expect(logs.stdout).toContain(`api_key='${lab.secrets.vllmApiKey}'`); // as vLLM 0.6 logs its args: consumers must redact
    const hostSmi = await must(c, 'nvidia-smi');
    expect(hostSmi.stdout).toMatch(/\|\s+1\d{4}MiB \/  16376MiB \|/);
    const frame = hostSmi.stdout.split('\n').filter((l) => /^[|+]/.test(l));
    expect(new Set(frame.map((l) => l.length))).toEqual(new Set([91])); // the 580-series table is 91 columns wide
    expect(hostSmi.stdout).toMatch(/\|    0   N\/A  N\/A +\d+      C   python3 +\d+MiB \|/);
    expect((await must(c, 'pct exec 117 -- nvidia-smi')).stdout).toContain('No running processes found'); // a CT cannot see host PIDs
    // VM 151 cannot take the GPU back while vLLM holds it.
    const vm = await exec(c, 'qm start 151');
    expect(vm).toEqual({ code: 255, stdout: '', stderr: "can't unbind/bind PCI group to VFIO '0000:01:00.0'\n" });
    // The frontends reach vLLM by the CT address.
    const fromOwui = await exec(c, `pct exec 116 -- curl -sS -H 'Authorization: Bearer ${lab.secrets.vllmApiKey}' http://10.0.50.117:8000/v1/models`);
    expect(JSON.parse(fromOwui.stdout).data[0].id).toBe('mistral-7b-awq');
    // A re-run of read-only checks journals nothing.
    const n = lab.journal().length;
    await must(c, 'pct config 117 && qm config 151 && pct exec 117 -- docker compose --project-directory /opt/vllm-deploy ps && nvidia-smi');
    await must(c, 'pct exec 117 -- docker compose --project-directory /opt/vllm-deploy up -d');
    expect(lab.journal().length).toBe(n);
  } finally {
    c.end();
  }
});
