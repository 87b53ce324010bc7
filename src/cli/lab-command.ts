// `pve-vllm lab`: the simulated Proxmox host in the foreground, on 127.0.0.1 only, until killed.
import { LabStateError, startLab, type Lab, type StartLabOptions } from '../lab';
import type { FaultName } from '../lab/state';
import { EXIT_OK, UsageError } from './exit';
import type { Io } from './run-commands';

export interface LabFlags {
  configOut?: string;
  state?: string;
  fault: string[];
  timeScale?: number;
}

export async function labCommand(f: LabFlags, io: Io): Promise<number> {
  const lab = await startLabFor('--state', { statePath: f.state, faults: f.fault as FaultName[], timeScale: f.timeScale });
  if (f.configOut) await lab.writeConfig(f.configOut);
  io.out.write(
    [
      `lab running (node pve)`,
      `  SSH      127.0.0.1:${lab.ssh.port}  host key ${lab.ssh.hostKeyFingerprint}`,
      `  PVE API  https://127.0.0.1:${lab.api.port}/api2/json  cert ${lab.api.certFingerprint}`,
      `  vLLM     ${lab.endpoints.vllm}   OpenWebUI ${lab.endpoints.openwebui}   ComfyUI ${lab.endpoints.comfyui}`,
      ...(f.configOut ? [`  config   ${f.configOut}`] : []),
      ...(f.fault.length ? [`  faults   ${f.fault.join(', ')}`] : []),
      'Ctrl-C to stop',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await lab.stop();
  return EXIT_OK;
}

/** startLab, with a state file it cannot resume from reported as bad input of the flag that named it. */
export async function startLabFor(flag: string, opts: StartLabOptions): Promise<Lab> {
  try {
    return await startLab(opts);
  } catch (err) {
    if (err instanceof LabStateError) throw new UsageError(`${flag}: ${err.message}`);
    throw err;
  }
}
