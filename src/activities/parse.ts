// Parsers of real command output (formats in shared/reference/host-commands.md). Pure, unit-tested.

/** `0000:01:00.0` -> `01:00.0` (what `lspci -s` and PVE's hostpci short form use). */
export function shortBdf(bdf: string): string {
  return bdf.replace(/^0000:/, '');
}

/** `Kernel driver in use: vfio-pci` -> `vfio-pci`; null when the line is absent (no driver bound). */
export function parseLspciDriver(out: string): string | null {
  const m = /Kernel driver in use:\s*(\S+)/.exec(out);
  return m ? (m[1] as string) : null;
}

/** `NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.126.09  …` (proprietary or open module) -> `580.126.09`. */
export function parseDriverVersion(out: string): string | null {
  const m = /Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)/.exec(out);
  return m ? (m[1] as string) : null;
}

/** Character-device majors of the NVIDIA driver from /proc/devices (`195 nvidia-frontend`, `508 nvidia-uvm`). */
export function parseProcDevices(out: string): { nvidia: number; nvidiaUvm: number; nvidiaCaps?: number } | null {
  const majors = new Map<string, number>();
  let inChar = false;
  for (const line of out.split('\n')) {
    if (/^Character devices:/.test(line)) inChar = true;
    else if (/^Block devices:/.test(line)) inChar = false;
    const m = /^\s*(\d+)\s+(\S+)\s*$/.exec(line);
    if (inChar && m) majors.set(m[2] as string, Number(m[1]));
  }
  const nvidia = majors.get('nvidia-frontend') ?? majors.get('nvidia');
  const nvidiaUvm = majors.get('nvidia-uvm');
  if (nvidia === undefined || nvidiaUvm === undefined) return null;
  const caps = majors.get('nvidia-caps');
  return caps === undefined ? { nvidia, nvidiaUvm } : { nvidia, nvidiaUvm, nvidiaCaps: caps };
}

/** `nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits` first line. */
export function parseGpuQuery(out: string): { name: string; memoryTotalMiB: number; driverVersion: string } | null {
  const line = out.split('\n').find((l) => l.trim() !== '');
  if (!line) return null;
  const parts = line.split(',').map((s) => s.trim());
  if (parts.length < 3 || !/^\d+$/.test(parts[1] as string)) return null;
  return { name: parts[0] as string, memoryTotalMiB: Number(parts[1]), driverVersion: parts[2] as string };
}

/** A PVE config file split into its main section's lines, its raw lxc lines and the rest (pending, snapshots). */
export interface ConfigFileParts {
  description: string[];
  options: Array<[string, string]>;
  lxc: Array<[string, string]>;
  rest: string;
}

export function splitConfigFile(raw: string): ConfigFileParts {
  const parts: ConfigFileParts = { description: [], options: [], lxc: [], rest: '' };
  const lines = raw.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (/^\[.*\]\s*$/.test(line)) {
      parts.rest = `\n${lines.slice(i).join('\n')}`.replace(/\n+$/, '\n');
      break;
    }
    if (line.startsWith('#')) parts.description.push(line);
    else {
      const lxc = /^(lxc\.[a-z0-9_\-.]+)(?::|\s*=)\s*(.*?)\s*$/.exec(line);
      const opt = /^([a-z][a-z_]*\d*):\s*(.+?)\s*$/.exec(line);
      if (lxc) parts.lxc.push([lxc[1] as string, lxc[2] as string]);
      else if (opt) parts.options.push([opt[1] as string, opt[2] as string]);
    }
  }
  return parts;
}

export function joinConfigFile(p: ConfigFileParts): string {
  const main = [...p.description, ...p.options.map(([k, v]) => `${k}: ${v}`), ...p.lxc.map(([k, v]) => `${k}: ${v}`)];
  return `${main.join('\n')}\n${p.rest}`;
}
