import { joinConfigFile, parseDriverVersion, parseGpuQuery, parseLspciDriver, parseProcDevices, splitConfigFile } from '../../src/activities/parse';
import { mergeFeatures, passthroughLines } from '../../src/activities/proxmox';

describe('parsers of real host output', () => {
  it('reads the driver in use from lspci -nnk (TAB-indented), or null when unbound', () => {
    const out = '01:00.0 VGA compatible controller [0300]: NVIDIA Corporation AD103 [GeForce RTX 4070 Ti SUPER] [10de:2705] (rev a1)\n\tSubsystem: Micro-Star International Co., Ltd. [MSI] Device [1462:5134]\n\tKernel driver in use: vfio-pci\n\tKernel modules: nvidiafb, nouveau, nvidia_drm, nvidia\n';
    expect(parseLspciDriver(out)).toBe('vfio-pci');
    expect(parseLspciDriver(out.replace(/\tKernel driver in use.*\n/, ''))).toBeNull();
  });

  it('reads the NVRM version of the proprietary and the open kernel module', () => {
    expect(parseDriverVersion('NVRM version: NVIDIA UNIX x86_64 Kernel Module  515.76  Mon Sep 12 19:21:56 UTC 2022\nGCC version:  gcc version 7.5.0\n')).toBe('515.76');
    expect(parseDriverVersion('NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.57.01  Release Build  (dvs-builder@U16-A24-9-2)  Thu Oct 10 12:15:00 UTC 2024\n')).toBe('565.57.01');
    expect(parseDriverVersion('cat: /proc/driver/nvidia/version: No such file or directory')).toBeNull();
  });

  it('reads character-device majors from /proc/devices, both names of the core device', () => {
    const dev = 'Character devices:\n  1 mem\n195 nvidia-frontend\n226 drm\n235 nvidia-caps\n508 nvidia-uvm\n\nBlock devices:\n  8 sd\n';
    expect(parseProcDevices(dev)).toEqual({ nvidia: 195, nvidiaUvm: 508, nvidiaCaps: 235 });
    expect(parseProcDevices('Character devices:\n195 nvidia\n510 nvidia-uvm\n')).toEqual({ nvidia: 195, nvidiaUvm: 510 });
    expect(parseProcDevices('Character devices:\n  1 mem\n226 drm\n')).toBeNull();
  });

  it('reads nvidia-smi --query-gpu csv,noheader,nounits', () => {
    expect(parseGpuQuery('NVIDIA GeForce RTX 4070 Ti SUPER, 16376, 580.126.09\n')).toEqual({ name: 'NVIDIA GeForce RTX 4070 Ti SUPER', memoryTotalMiB: 16376, driverVersion: '580.126.09' });
    expect(parseGpuQuery('Failed to initialize NVML: Driver/library version mismatch\n')).toBeNull();
  });

  it('splits and rejoins a CT config file without losing pending or snapshot sections', () => {
    const raw = '#my ct\narch: amd64\ncores: 8\nfeatures: nesting=1\nlxc.cgroup2.devices.allow: c 195:* rwm\nlxc.apparmor.profile = unconfined\n\n[pve:pending]\nmemory: 4096\n';
    const p = splitConfigFile(raw);
    expect(p.description).toEqual(['#my ct']);
    expect(p.options).toEqual([['arch', 'amd64'], ['cores', '8'], ['features', 'nesting=1']]);
    expect(p.lxc).toEqual([['lxc.cgroup2.devices.allow', 'c 195:* rwm'], ['lxc.apparmor.profile', 'unconfined']]);
    expect(joinConfigFile(p)).toBe('#my ct\narch: amd64\ncores: 8\nfeatures: nesting=1\nlxc.cgroup2.devices.allow: c 195:* rwm\nlxc.apparmor.profile: unconfined\n\n[pve:pending]\nmemory: 4096\n');
  });

  it('merges LXC feature flags, keeping others and reporting no change when already set', () => {
    expect(mergeFeatures('nesting=1', { nesting: '1', keyctl: '1' })).toBe('keyctl=1,nesting=1');
    expect(mergeFeatures('keyctl=1,nesting=1', { nesting: '1', keyctl: '1' })).toBe('keyctl=1,nesting=1');
    expect(mergeFeatures('fuse=1,nesting=1', { keyctl: '1' })).toBe('fuse=1,keyctl=1,nesting=1');
  });

  it('passes the host majors through, with AppArmor unconfined for Docker', () => {
    const lines = passthroughLines({ nvidia: 195, nvidiaUvm: 508 });
    expect(lines).toContainEqual(['lxc.cgroup2.devices.allow', 'c 508:* rwm']);
    expect(lines).toContainEqual(['lxc.mount.entry', '/dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file']);
    expect(lines).toContainEqual(['lxc.apparmor.profile', 'unconfined']);
  });
});
