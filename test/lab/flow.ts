/** The design's deploy, by hand over SSH, as the lab tests drive it (no pve-vllm code involved). */
import type { Client } from 'ssh2';
import { exec, type Run } from './helpers';

export const GPU_LXC = [
  'lxc.cgroup2.devices.allow: c 195:* rwm',
  'lxc.cgroup2.devices.allow: c 508:* rwm',
  'lxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file',
  'lxc.mount.entry: /dev/nvidiactl dev/nvidiactl none bind,optional,create=file',
  'lxc.mount.entry: /dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file',
  'lxc.mount.entry: /dev/nvidia-uvm-tools dev/nvidia-uvm-tools none bind,optional,create=file',
];

export async function must(c: Client, cmd: string, stdin = ''): Promise<Run> {
  const r = await exec(c, cmd, stdin);
  if (r.code !== 0) throw new Error(`'${cmd}' exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r;
}

/** Move the GPU from VM 151 to the nvidia driver on the host. */
export async function gpuToHost(c: Client): Promise<void> {
  await must(c, 'qm stop 151 && qm set 151 --onboot 0');
  await must(c, 'echo 0000:01:00.0 > /sys/bus/pci/devices/0000:01:00.0/driver/unbind');
  await must(c, "printf 'blacklist nouveau\\noptions nouveau modeset=0\\n' > /etc/modprobe.d/blacklist-nouveau.conf && update-initramfs -u");
  await must(c, 'modprobe -r nouveau && modprobe nvidia && modprobe nvidia_uvm');
}

export async function createVllmCt(c: Client, opts: { apparmor?: boolean; unprivileged?: boolean } = {}): Promise<void> {
  await must(c, `pct create 117 local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst --hostname vllm --cores 16 --memory 98304 --rootfs local-lvm:64 --net0 name=eth0,bridge=vmbr0,ip=10.0.50.117/24,gw=10.0.50.1 --features nesting=1,keyctl=1 --unprivileged ${opts.unprivileged ? 1 : 0}`);
  const lines = [...GPU_LXC, ...(opts.apparmor === false ? [] : ['lxc.apparmor.profile: unconfined'])];
  await must(c, 'cat >> /etc/pve/lxc/117.conf', `${lines.join('\n')}\n`);
  await must(c, 'pct start 117');
}

export const INSTALL = `set -e
apt-get update
apt-get install -y gnupg
curl -fsSL https://get.docker.com | sh
curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
curl -s -L https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list > /etc/apt/sources.list.d/nvidia-container-toolkit.list
wget -q https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb -O /tmp/cuda-keyring.deb
dpkg -i /tmp/cuda-keyring.deb
apt-get update
apt-get install -y nvidia-container-toolkit nvidia-driver-cuda=580.126.09-1
nvidia-ctk runtime configure --runtime=docker
systemctl restart docker
`;

/** The key comes from `.env` beside the file (interpolated by compose), never from argv. */
export function composeFile(model: string, maxLen: number, style: 'devices' | 'runtime' = 'devices'): string {
  if (style === 'runtime') {
    // vLLM reads VLLM_API_KEY from its environment (env_file), the GPU comes through the nvidia runtime.
    return `services:
  vllm:
    image: vllm/vllm-openai:v0.6.4.post1
    container_name: vllm
    restart: unless-stopped
    runtime: nvidia
    ipc: host
    env_file:
      - .env
    ports:
      - "8000:8000"
    command:
      - "--model"
      - "${model}"
      - "--max-model-len"
      - "${maxLen}"
      - "--served-model-name"
      - "mistral-7b-awq"
`;
  }
  return `services:
  vllm:
    image: vllm/vllm-openai:v0.6.4.post1
    ipc: host
    ports: ["8000:8000"]
    environment: ["HF_TOKEN=\${HF_TOKEN:-}"]
    command: ["--model", "${model}", "--max-model-len", "${maxLen}", "--gpu-memory-utilization", "0.90", "--served-model-name", "mistral-7b-awq", "--api-key", "\${VLLM_API_KEY}"]
    deploy: { resources: { reservations: { devices: [ { driver: nvidia, count: all, capabilities: [gpu] } ] } } }
    restart: unless-stopped
`;
}

export async function writeCompose(c: Client, model: string, maxLen: number, apiKey: string, style: 'devices' | 'runtime' = 'devices'): Promise<void> {
  await must(c, "pct exec 117 -- mkdir -p /opt/vllm-deploy");
  await must(c, "pct exec 117 -- bash -c 'cat > /opt/vllm-deploy/compose.yaml'", composeFile(model, maxLen, style));
  await must(c, "pct exec 117 -- bash -c 'umask 077; cat > /opt/vllm-deploy/.env'", `VLLM_API_KEY=${apiKey}\n`);
}

export async function waitFor(fn: () => Promise<boolean>, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out waiting');
}
