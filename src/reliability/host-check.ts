// What "the host is as it was" means after a run that was undone, and how two final host states differ.
import type { LabState } from '../lab/state';

export const VM_ID = 151;
export const GPU_BDF = '0000:01:00.0';
export const KEPT_CTS = [116, 118];
export const NEW_CT = 117;

function guestView(s: LabState, id: number) {
  const g = s.guests[String(id)];
  return g ? { status: g.status, config: g.config, lxc: g.lxc } : undefined;
}

/**
 * After a run that ended compensated or cancelled: VM 151 running with its hostpci0 and onboot 1, the GPU
 * back on vfio-pci, CT 116/118 (status, config, raw lxc lines) as at the start, and no CT 117.
 * Returns one line per violation (empty = nothing lost).
 */
export function hostStateViolations(before: LabState, after: LabState): string[] {
  const out: string[] = [];
  const vm = after.guests[String(VM_ID)];
  if (!vm) out.push(`VM ${VM_ID} is gone`);
  else {
    if (vm.status !== 'running') out.push(`VM ${VM_ID} is ${vm.status}, not running`);
    const want = before.guests[String(VM_ID)]?.config.hostpci0;
    if (vm.config.hostpci0 !== want) out.push(`VM ${VM_ID} hostpci0 is ${JSON.stringify(vm.config.hostpci0)}, was ${JSON.stringify(want)}`);
    if (vm.config.onboot !== '1') out.push(`VM ${VM_ID} onboot is ${JSON.stringify(vm.config.onboot)}, not 1`);
  }
  const gpu = after.pci.find((d) => d.bdf === GPU_BDF);
  if (gpu?.driver !== 'vfio-pci') out.push(`GPU ${GPU_BDF} is on ${gpu?.driver ?? 'no driver'}, not vfio-pci`);
  for (const id of KEPT_CTS) {
    const a = JSON.stringify(guestView(before, id));
    const b = JSON.stringify(guestView(after, id));
    if (a !== b) out.push(`CT ${id} differs from the start: was ${a}, now ${b}`);
  }
  if (after.guests[String(NEW_CT)]) out.push(`CT ${NEW_CT} still exists`);
  return out;
}

/** The parts of a final host state that two runs of the same scenario must agree on. */
export function comparableState(s: LabState): Record<string, string> {
  const out: Record<string, string> = {};
  for (const g of Object.values(s.guests)) {
    // hwaddr is generated per create, like PVE does; everything else must match
    const config = Object.fromEntries(Object.entries(g.config).map(([k, v]) => [k, v.replace(/hwaddr=[0-9A-Fa-f:]+/g, 'hwaddr=*')]));
    out[`guest ${g.vmid}`] = JSON.stringify({ type: g.type, status: g.status, config, lxc: g.lxc, pending: g.pending });
  }
  for (const d of s.pci) out[`pci ${d.bdf}`] = JSON.stringify({ driver: d.driver, override: d.driverOverride });
  out['host modules'] = JSON.stringify([...s.node.modules].sort());
  for (const [id, rt] of Object.entries(s.runtimes)) {
    out[`ct ${id} runtime`] = JSON.stringify({
      packages: [...rt.packages].sort(),
      services: rt.services,
      nvidia: rt.nvidiaUserspace,
      images: rt.docker.images.map((i) => i.ref).sort(),
      containers: rt.docker.containers.map((c) => ({ name: c.name, image: c.image, state: c.state, command: c.command })),
    });
  }
  return out;
}

/** Keys whose values differ between two final states (empty = same effect). */
export function stateDifferences(reference: LabState, other: LabState): string[] {
  const a = comparableState(reference);
  const b = comparableState(other);
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]).sort();
}
