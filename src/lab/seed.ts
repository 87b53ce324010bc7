/**
 * The starting state = the design document before the deploy (proxmox-vllm-design.md): node `pve`, the
 * RTX 4070 Ti SUPER on vfio-pci owned by running VM 151, an idle AMD 7900 XT, OpenWebUI in CT 116,
 * ComfyUI in CT 118 with raw lxc GPU lines, no CT 117, nouveau loaded, Debian 12 template in `local`.
 */
import { randomUUID, randomBytes } from 'node:crypto';
import {
  AMD_BDF, DEBIAN_TEMPLATE, HOST_NVIDIA_DRIVER, NVIDIA_AUDIO_BDF, NVIDIA_BDF,
  emptyRuntime, type Guest, type LabKeys, type LabState, type PciDevice,
} from './state';

const T0 = 1733300000; // fixed creation time so seeded digests are stable

function ct(vmid: number, config: Record<string, string>, lxc: Array<[string, string]> = []): Guest {
  return { vmid, type: 'lxc', status: 'running', config, lxc, pending: {}, startedAt: T0, pid: 4000 + vmid };
}

export function designPci(): PciDevice[] {
  return [
    {
      bdf: NVIDIA_BDF, classCode: '0300', className: 'VGA compatible controller', vendorId: '10de', deviceId: '2705',
      vendorName: 'NVIDIA Corporation', deviceName: 'AD103 [GeForce RTX 4070 Ti SUPER]',
      subsystem: 'Micro-Star International Co., Ltd. [MSI] Device [1462:5134]', rev: 'a1',
      driver: 'vfio-pci', driverOverride: null, kernelModules: ['nvidiafb', 'nouveau', 'nvidia_drm', 'nvidia'], iommuGroup: 14,
    },
    {
      bdf: NVIDIA_AUDIO_BDF, classCode: '0403', className: 'Audio device', vendorId: '10de', deviceId: '22bb',
      vendorName: 'NVIDIA Corporation', deviceName: 'AD103 High Definition Audio Controller',
      subsystem: 'Micro-Star International Co., Ltd. [MSI] Device [1462:5134]', rev: 'a1',
      driver: 'vfio-pci', driverOverride: null, kernelModules: ['snd_hda_intel'], iommuGroup: 14,
    },
    {
      bdf: AMD_BDF, classCode: '0300', className: 'VGA compatible controller', vendorId: '1002', deviceId: '744c',
      vendorName: 'Advanced Micro Devices, Inc. [AMD/ATI]', deviceName: 'Navi 31 [Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M]',
      subsystem: 'Sapphire Technology Limited Device [1da2:e471]', rev: 'cc',
      driver: 'amdgpu', driverOverride: null, kernelModules: ['amdgpu'], iommuGroup: 18,
    },
  ];
}

const GPU_LXC_LINES: Array<[string, string]> = [
  ['lxc.cgroup2.devices.allow', 'c 195:* rwm'],
  ['lxc.cgroup2.devices.allow', 'c 508:* rwm'],
  ['lxc.cgroup2.devices.allow', 'c 226:* rwm'],
  ['lxc.mount.entry', '/dev/nvidia0 dev/nvidia0 none bind,optional,create=file'],
  ['lxc.mount.entry', '/dev/nvidiactl dev/nvidiactl none bind,optional,create=file'],
  ['lxc.mount.entry', '/dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file'],
  ['lxc.mount.entry', '/dev/nvidia-modeset dev/nvidia-modeset none bind,optional,create=file'],
  ['lxc.mount.entry', '/dev/nvidia-uvm-tools dev/nvidia-uvm-tools none bind,optional,create=file'],
  ['lxc.mount.entry', '/dev/dri dev/dri none bind,optional,create=dir'],
];

/** Packages on the PVE host that the commands care about (sudo is not part of a PVE install). */
function hostRuntime(): ReturnType<typeof emptyRuntime> {
  const rt = emptyRuntime();
  rt.packages = ['ca-certificates', 'curl', 'wget', 'git', 'gnupg', 'pciutils', 'pve-manager'];
  rt.services = { 'pveproxy.service': 'active', 'pvedaemon.service': 'active', 'ssh.service': 'active' };
  rt.enabledServices = Object.keys(rt.services);
  rt.aptUpdated = true;
  return rt;
}

export function designState(keys: LabKeys): LabState {
  const vm151: Guest = {
    vmid: 151, type: 'qemu', status: 'running', lxc: [], pending: {}, startedAt: T0, pid: 2151,
    config: {
      agent: '1',
      bios: 'ovmf',
      boot: 'order=scsi0;net0',
      cores: '8',
      cpu: 'host',
      efidisk0: 'local-lvm:vm-151-disk-0,efitype=4m,pre-enrolled-keys=1,size=4M',
      hostpci0: `${NVIDIA_BDF},pcie=1,x-vga=1`,
      machine: 'q35',
      memory: '32768',
      meta: 'creation-qemu=8.1.5,ctime=1718000000',
      name: 'gpu-vm',
      net0: 'virtio=BC:24:11:5A:51:01,bridge=vmbr0,firewall=1',
      numa: '0',
      onboot: '1',
      ostype: 'l26',
      scsi0: 'local-lvm:vm-151-disk-1,iothread=1,size=64G',
      scsihw: 'virtio-scsi-single',
      smbios1: 'uuid=5b0c7a4e-2f7d-4c21-9a53-151151151151',
      sockets: '1',
      vmgenid: '0c1d2e3f-4a5b-4c6d-8e7f-151000000151',
    },
  };
  const ct116 = ct(116, {
    arch: 'amd64',
    cores: '8',
    features: 'nesting=1,keyctl=1',
    hostname: 'openwebui',
    memory: '16384',
    net0: 'name=eth0,bridge=vmbr0,gw=10.0.50.1,hwaddr=BC:24:11:3C:11:6A,ip=10.0.50.116/24,type=veth',
    onboot: '1',
    ostype: 'debian',
    rootfs: 'local-lvm:vm-116-disk-0,size=32G',
    swap: '512',
    tags: 'community-script;ai;interface',
    unprivileged: '1',
  });
  const ct118 = ct(118, {
    arch: 'amd64',
    cores: '12',
    features: 'nesting=1',
    hostname: 'comfyui',
    memory: '32768',
    net0: 'name=eth0,bridge=vmbr0,gw=10.0.50.1,hwaddr=BC:24:11:7E:18:2C,ip=10.0.50.118/24,type=veth',
    onboot: '1',
    ostype: 'debian',
    rootfs: 'local-lvm:vm-118-disk-0,size=100G',
    swap: '512',
    tags: 'community-script;ai',
  }, GPU_LXC_LINES.map(([k, v]) => [k, v]));
  const rt116 = emptyRuntime();
  rt116.packages = ['ca-certificates', 'curl', 'wget', 'git', 'python3', 'openssh-server', 'uv'];
  rt116.aptUpdated = true;
  rt116.services = { 'open-webui.service': 'active', 'ssh.service': 'active' };
  rt116.enabledServices = ['open-webui.service', 'ssh.service'];
  rt116.openwebui = {
    initialised: true,
    adminApiKey: `sk-${randomBytes(16).toString('hex')}`,
    config: { ENABLE_OPENAI_API: true, OPENAI_API_BASE_URLS: ['https://api.openai.com/v1'], OPENAI_API_KEYS: [''], ENABLE_OLLAMA_API: false },
  };
  const rt118 = emptyRuntime();
  rt118.comfyui = { loadedPacks: [] };
  rt118.packages = ['ca-certificates', 'curl', 'wget', 'git', 'python3', 'openssh-server', 'nvidia-driver-cuda', 'uv'];
  rt118.aptUpdated = true;
  rt118.services = { 'comfyui.service': 'active', 'ssh.service': 'active' };
  rt118.enabledServices = ['comfyui.service', 'ssh.service'];
  // The ComfyUI script installed a CT userspace driver matching the host so the GPU works once bound.
  rt118.nvidiaUserspace = HOST_NVIDIA_DRIVER;

  return {
    version: 1,
    keys,
    node: {
      name: 'pve', pveManager: 'pve-manager/8.4.1/2a5fa54a8503f96d', kernel: '6.8.12-9-pve',
      nvidiaDriver: HOST_NVIDIA_DRIVER,
      modules: ['vfio_pci', 'vfio_pci_core', 'vfio_iommu_type1', 'vfio', 'nouveau', 'amdgpu', 'snd_hda_intel', 'kvm_amd', 'kvm'],
      initramfsStale: false, ip: '10.0.50.10',
    },
    pci: designPci(),
    guests: { '116': ct116, '118': ct118, '151': vm151 },
    storage: [
      {
        storage: 'local', type: 'dir', content: ['backup', 'iso', 'vztmpl'], total: 100861726720, used: 12482281472,
        items: [{ volid: DEBIAN_TEMPLATE, content: 'vztmpl', format: 'tzst', size: 126458670, ctime: T0 - 86400 }],
      },
      {
        storage: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], total: 1849597722624, used: 214748364800,
        items: [
          { volid: 'local-lvm:vm-116-disk-0', content: 'rootdir', format: 'raw', size: 34359738368, ctime: T0, vmid: 116 },
          { volid: 'local-lvm:vm-118-disk-0', content: 'rootdir', format: 'raw', size: 107374182400, ctime: T0, vmid: 118 },
          { volid: 'local-lvm:vm-151-disk-0', content: 'images', format: 'raw', size: 4194304, ctime: T0, vmid: 151 },
          { volid: 'local-lvm:vm-151-disk-1', content: 'images', format: 'raw', size: 68719476736, ctime: T0, vmid: 151 },
        ],
      },
    ],
    access: {
      users: [{ userid: 'root@pam', enable: 1, expire: 0, firstname: '', lastname: '', email: '', comment: '' }],
      tokens: [{ userid: 'root@pam', tokenid: 'pve-vllm', privsep: 0, secret: randomUUID(), expire: 0, comment: 'pve-vllm lab' }],
      rootPassword: randomBytes(12).toString('base64url'),
    },
    tasks: [],
    runtimes: { host: hostRuntime(), '116': rt116, '118': rt118 },
    files: {},
    journal: [],
    seq: 0,
  };
}
