import { startLab, type Lab } from '../../src/lab';
import { connect, exec } from './helpers';
import { INSTALL, createVllmCt, gpuToHost, must, waitFor, writeCompose } from './flow';

const MODEL = 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ';
const UP = 'pct exec 117 -- docker compose --project-directory /opt/vllm-deploy up -d';
const LOGS = 'pct exec 117 -- docker compose --project-directory /opt/vllm-deploy logs --no-log-prefix';

/** A lab with CT 117 ready for compose (GPU on nvidia, docker + toolkit installed). */
async function prepared(opts: Parameters<typeof startLab>[0] = {}, ct: { apparmor?: boolean; unprivileged?: boolean } = {}): Promise<Lab> {
  const lab = await startLab({ timeScale: 0.01, ...opts });
  const c = await connect(lab);
  try {
    await gpuToHost(c);
    await createVllmCt(c, ct);
    await must(c, 'pct exec 117 -- bash -s', INSTALL);
  } finally { c.end(); }
  return lab;
}

async function logsOf(lab: Lab, want: RegExp): Promise<string> {
  let text = '';
  await waitFor(async () => {
    const c = await connect(lab);
    try { text = (await exec(c, LOGS)).stdout; } finally { c.end(); }
    return want.test(text);
  });
  return text;
}

describe('lab faults and host rules', () => {
  it('docker compose up fails with the runc/AppArmor text until lxc.apparmor.profile: unconfined', async () => {
    const lab = await prepared({}, { apparmor: false });
    const c = await connect(lab);
    try {
      await writeCompose(c, MODEL, 8192, lab.secrets.vllmApiKey);
      const up = await exec(c, UP);
      expect(up.code).toBe(1);
      expect(up.stderr).toContain('Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: open sysctl net.ipv4.ip_unprivileged_port_start file: reopen fd 8: permission denied: unknown\n');
      await must(c, 'echo "lxc.apparmor.profile: unconfined" >> /etc/pve/lxc/117.conf');
      expect((await exec(c, UP)).code).toBe(1); // LXC reads raw keys only when the CT starts
      await must(c, 'pct stop 117 && pct start 117');
      expect((await exec(c, UP)).code).toBe(0);
    } finally { c.end(); await lab.stop(); }
  });

  it('an unprivileged CT needs no-cgroups = true for the NVIDIA hook (nvidia-ctk config --set)', async () => {
    const lab = await prepared({}, { unprivileged: true });
    const c = await connect(lab);
    try {
      await writeCompose(c, MODEL, 8192, lab.secrets.vllmApiKey);
      const up = await exec(c, UP);
      expect(up.code).toBe(1);
      expect(up.stderr).toContain('nvidia-container-cli: mount error: failed to add device rules: unable to find any existing device filters attached to the cgroup: bpf_prog_query(BPF_CGROUP_DEVICE) failed: operation not permitted: unknown');
      expect(await exec(c, 'pct exec 117 -- nvidia-ctk config --set nvidia-container-cli.no-cgroups=true --in-place')).toEqual({ code: 0, stdout: '', stderr: '' });
      expect((await must(c, 'pct exec 117 -- grep -n no-cgroups /etc/nvidia-container-runtime/config.toml')).stdout).toBe('13:no-cgroups = true\n');
      expect((await exec(c, UP)).code).toBe(0);
    } finally { c.end(); await lab.stop(); }
  });

  it('runtime: nvidia + env_file: the key from .env protects the API; the runtime must be registered', async () => {
    const lab = await prepared();
    const c = await connect(lab);
    try {
      await writeCompose(c, MODEL, 8192, lab.secrets.vllmApiKey, 'runtime');
      await must(c, 'pct exec 117 -- bash -c \'echo "{}" > /etc/docker/daemon.json\' && pct exec 117 -- systemctl restart docker');
      const up = await exec(c, UP);
      expect(up.code).toBe(1);
      expect(up.stderr).toContain('Error response from daemon: unknown or invalid runtime name: nvidia\n');
      await must(c, 'pct exec 117 -- nvidia-ctk runtime configure --runtime=docker && pct exec 117 -- systemctl restart docker');
      await must(c, UP);
      await waitFor(async () => (await fetch(`${lab.endpoints.vllm}/health`).catch(() => null))?.status === 200);
      expect((await fetch(`${lab.endpoints.vllm}/v1/models`)).status).toBe(401);
      expect((await fetch(`${lab.endpoints.vllm}/v1/models`, { headers: { authorization: `Bearer ${lab.secrets.vllmApiKey}` } })).status).toBe(200);
    } finally { c.end(); await lab.stop(); }
  });

  it('driver-mismatch: the CT userspace differs from the host driver', async () => {
    const lab = await prepared({ faults: ['driver-mismatch'] });
    const c = await connect(lab);
    try {
      const smi = await exec(c, 'pct exec 117 -- nvidia-smi');
      expect(smi.code).toBe(18);
      expect(smi.stderr).toMatch(/^Failed to initialize NVML: Driver\/library version mismatch\nNVML library version: 580\.\d+\n$/);
      await writeCompose(c, MODEL, 8192, lab.secrets.vllmApiKey);
      const up = await exec(c, UP);
      expect(up.code).toBe(1);
      expect(up.stderr).toContain('nvidia-container-cli: initialization error: nvml error: driver/library version mismatch: unknown');
    } finally { c.end(); await lab.stop(); }
  });

  it('an oversized model and too long a context fail with vLLM texts; vllm-oom forces the KV-cache error', async () => {
    const lab = await prepared({ faults: ['vllm-oom'] });
    const c = await connect(lab);
    try {
      await writeCompose(c, MODEL, 8192, lab.secrets.vllmApiKey);
      await must(c, UP);
      expect(await logsOf(lab, /ValueError/)).toContain('ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.');
      expect(await fetch(`${lab.endpoints.vllm}/health`).then(() => 'answered', () => 'refused')).toBe('refused');
      await writeCompose(c, 'TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ', 8192, lab.secrets.vllmApiKey);
      await must(c, UP);
      expect(await logsOf(lab, /OutOfMemoryError/)).toMatch(/torch\.OutOfMemoryError: CUDA out of memory\. Tried to allocate/);
      await writeCompose(c, 'mistralai/Mistral-7B-Instruct-v0.2', 32768, lab.secrets.vllmApiKey);
      await must(c, UP);
      expect(await logsOf(lab, /ValueError/)).toMatch(/ValueError: (The model's max seq len \(32768\) is larger than the maximum number of tokens that can be stored in KV cache \(\d+\)|No available memory for the cache blocks)/);
    } finally { c.end(); await lab.stop(); }
  });

  it('frontend-unreachable: curl from the frontend CT fails with curl\'s text; the host still reaches vLLM', async () => {
    const lab = await prepared({ faults: ['frontend-unreachable'] });
    const c = await connect(lab);
    try {
      await writeCompose(c, MODEL, 8192, lab.secrets.vllmApiKey);
      await must(c, UP);
      await waitFor(async () => (await fetch(`${lab.endpoints.vllm}/health`).catch(() => null))?.status === 200);
      const r = await exec(c, 'pct exec 116 -- curl -sS --connect-timeout 2 http://10.0.50.117:8000/health');
      expect(r.code).toBe(28);
      expect(r.stderr).toBe('curl: (28) Connection timed out after 2003 milliseconds\n');
      expect((await exec(c, 'pct exec 117 -- curl -sS -o /dev/null -w "%{http_code}" http://127.0.0.1:8000/health')).stdout).toBe('200');
    } finally { c.end(); await lab.stop(); }
  });

  it('ssh-drop: the connection drops in the middle of the image pull, once', async () => {
    const lab = await prepared({ faults: ['ssh-drop'] });
    const c = await connect(lab);
    const closed = new Promise<void>((r) => c.on('close', () => r()));
    const first = await exec(c, 'pct exec 117 -- docker pull vllm/vllm-openai:v0.6.4.post1');
    await closed;
    expect(first.code).toBe(-1); // no exit status: the channel died with the connection
    expect(first.stdout).toContain('Pulling fs layer');
    const c2 = await connect(lab);
    try {
      const again = await exec(c2, 'pct exec 117 -- docker pull vllm/vllm-openai:v0.6.4.post1');
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('Status: Downloaded newer image');
    } finally { c2.end(); await lab.stop(); }
  });

  it('Docker in a CT without nesting: the daemon does not start', async () => {
    const lab = await startLab({ timeScale: 0.01 });
    const c = await connect(lab);
    try {
      await must(c, 'pct create 117 local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst --hostname vllm --rootfs local-lvm:8 --unprivileged 1 && pct start 117');
      const inst = await exec(c, 'pct exec 117 -- bash -c "curl -fsSL https://get.docker.com | sh"');
      expect(inst.stderr).toContain('Job for docker.service failed because the control process exited with error code.');
      const ps = await exec(c, 'pct exec 117 -- docker ps');
      expect(ps).toEqual({ code: 1, stdout: '', stderr: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n' });
      expect((await exec(c, 'pct exec 117 -- systemctl is-active docker')).stdout).toBe('failed\n');
    } finally { c.end(); await lab.stop(); }
  });

  it('unknown fault names are refused', async () => {
    await expect(startLab({ faults: ['nope' as never] })).rejects.toThrow(/unknown lab fault/);
  });
});
