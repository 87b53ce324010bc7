/**
 * Maps vLLM start-up output (and the docker/nvidia-container-cli lines around it) to named causes with
 * a plain-words explanation and what to change. The patterns are the real error texts of
 * ../shared/reference/proxmox-gpu-vllm.md §4; they tolerate the log prefixes of every vLLM version
 * because they search anywhere in a line. Pure: safe in workflow code.
 */
import { MIN_MAX_MODEL_LEN } from './arithmetic';

export type VllmFailureCause =
  | 'container-toolkit'
  | 'nvml-mismatch'
  | 'driver-too-old'
  | 'awq-unsupported'
  | 'insufficient-free-memory'
  | 'kv-cache-too-small'
  | 'no-cache-blocks'
  | 'cuda-oom';

export interface VllmLogDiagnosis {
  cause: VllmFailureCause;
  explanation: string;
  remedy: string;
  /** The log line that matched, shortened; error lines carry no secrets (vLLM echoes args elsewhere). */
  evidence: string;
  /** kv-cache-too-small: the longest context vLLM says (or its numbers imply) fits. */
  estimatedMaxLen?: number;
  /** estimatedMaxLen rounded down to a multiple of 256: the value to retry with. */
  suggestedMaxModelLen?: number;
  /** true when a retry with suggestedMaxModelLen can succeed without other changes. */
  retryable: boolean;
}

type Match = RegExpExecArray;
interface Rule {
  cause: VllmFailureCause;
  patterns: RegExp[];
  diagnose(m: Match): Omit<VllmLogDiagnosis, 'cause' | 'evidence'>;
}

const num = (s: string | undefined): number => Number.parseFloat((s ?? '').replace(/,/g, ''));
const RETRY_STEP = 256;

function withRetry(estimate: number, base: string, asked: number | undefined): Omit<VllmLogDiagnosis, 'cause' | 'evidence'> {
  const rounded = Math.floor(estimate / RETRY_STEP) * RETRY_STEP;
  const suggested = rounded >= RETRY_STEP ? rounded : Math.floor(estimate);
  if (suggested < MIN_MAX_MODEL_LEN) {
    // A context that short cannot hold a chat: no shorter context is the remedy, less model is.
    return {
      explanation: `${base} At most about ${estimate} tokens fit${asked ? ` (asked ${asked})` : ''}, under the ${MIN_MAX_MODEL_LEN} we deploy at least.`,
      remedy: 'Raise model.gpuMemoryUtilization, set model.kvCacheDtype: fp8, or use a smaller/quantized model (`pve-vllm plan` lists the ones that fit).',
      estimatedMaxLen: estimate,
      retryable: false,
    };
  }
  return {
    explanation: `${base} At most about ${estimate} tokens fit${asked ? ` (asked ${asked})` : ''}.`,
    remedy: `Lower --max-model-len to ${suggested} or less, or raise model.gpuMemoryUtilization, or set model.kvCacheDtype: fp8, or use a smaller/quantized model.`,
    estimatedMaxLen: estimate,
    suggestedMaxModelLen: suggested,
    retryable: suggested >= 1,
  };
}

/** Ordered most specific first: environment faults explain the memory symptoms that follow them. */
const RULES: readonly Rule[] = [
  {
    // Not a vLLM text: docker refuses to start the container (host-commands.md §7, nvidia-container-cli).
    cause: 'container-toolkit',
    patterns: [
      /nvidia-container-cli: mount error: failed to add device rules/i,
      /load library failed: libnvidia-ml\.so\.1/i,
      /could not select device driver "[^"]*" with capabilities: \[\[gpu\]\]/i,
    ],
    diagnose: (m) => {
      const text = m[0].toLowerCase();
      const [explanation, remedy] = text.includes('device rules')
        ? ['The NVIDIA container hook cannot manage device cgroups inside the LXC (cgroup v2 device filters are not visible there).', 'Set no-cgroups = true in /etc/nvidia-container-runtime/config.toml inside the LXC (nvidia-ctk config --set nvidia-container-cli.no-cgroups=true --in-place) and restart docker.']
        : text.includes('libnvidia-ml')
          ? ['The NVIDIA driver libraries are not installed inside the LXC, so the container hook cannot load libnvidia-ml.so.1.', 'Install the NVIDIA user-space driver of the host\'s exact version inside the LXC (without the kernel module).']
          : ['Docker has no NVIDIA runtime registered: the NVIDIA Container Toolkit is missing or not configured in the LXC.', 'Install nvidia-container-toolkit in the LXC, run nvidia-ctk runtime configure --runtime=docker and restart docker.'];
      return { explanation, remedy, retryable: false };
    },
  },
  {
    cause: 'nvml-mismatch',
    patterns: [/Failed to initialize NVML: Driver\/library version mismatch/i, /nvml error: driver\/library version mismatch/i],
    diagnose: () => ({
      explanation: 'The NVIDIA user-space libraries in the container do not match the kernel module loaded on the Proxmox host (the host driver was upgraded or the container got a different version).',
      remedy: 'Install exactly the host driver version (cat /proc/driver/nvidia/version on the host) inside the LXC without its kernel module (--no-kernel-module), or reboot the host if the module was upgraded but not reloaded.',
      retryable: false,
    }),
  },
  {
    cause: 'driver-too-old',
    patterns: [
      /The NVIDIA driver on your system is too old(?: \(found version (\d+)\))?/i,
      /nvidia-container-cli: requirement error: unsatisfied condition: (cuda>=[\d.]+)/i,
      /CUDA driver version is insufficient for CUDA runtime version/i,
      /forward compatibility was attempted on non supported HW/i,
    ],
    diagnose: (m) => {
      const found = m[1] && /^\d+$/.test(m[1]) ? ` (driver supports CUDA ${Math.floor(num(m[1]) / 1000)}.${(num(m[1]) % 1000) / 10})` : m[1] ? ` (the image requires ${m[1]})` : '';
      return {
        explanation: `The host's NVIDIA driver is older than the CUDA version the vLLM image was built for${found}.`,
        remedy: 'Upgrade the NVIDIA driver on the Proxmox host (and the matching user-space in the LXC), or pin an older vllm/vllm-openai tag built for the CUDA version the driver supports (nvidia-smi shows it).',
        retryable: false,
      };
    },
  },
  {
    cause: 'awq-unsupported',
    patterns: [/The quantization method (\w+) is not supported for the current GPU\. Minimum capability: (\d+)\. Current capability: (\d+)/i],
    diagnose: (m) => ({
      explanation: `${m[1].toUpperCase()} kernels need compute capability ${(Number(m[2]) / 10).toFixed(1)} but this GPU has ${(Number(m[3]) / 10).toFixed(1)}.`,
      remedy: m[1].toLowerCase() === 'awq'
        ? 'Use a GPTQ checkpoint of the same model (GPTQ runs from compute capability 6.0) or an fp16 model that fits.'
        : 'Use another quantization this GPU supports, or an fp16 model that fits.',
      retryable: false,
    }),
  },
  {
    cause: 'insufficient-free-memory',
    patterns: [/Free memory on device \(([\d.]+)\/([\d.]+) GiB\) on startup is less than desired GPU memory utilization \(([\d.]+), ([\d.]+) GiB\)/i],
    diagnose: (m) => {
      const free = num(m[1]), total = num(m[2]);
      const fits = Math.floor((free / total - 0.01) * 100) / 100;
      return {
        explanation: `Another process holds VRAM: only ${free} of ${total} GiB was free at start-up, but gpu_memory_utilization ${m[3]} asks for ${m[4]} GiB.`,
        remedy: `Stop what holds the GPU (nvidia-smi lists it; e.g. ComfyUI or a VM still using the card) or lower model.gpuMemoryUtilization to ${fits > 0 ? fits.toFixed(2) : 'a value that fits'} or less.`,
        retryable: false,
      };
    },
  },
  {
    cause: 'kv-cache-too-small',
    patterns: [
      // V1, newest: states the estimate
      /max seq len \((\d+)\), \(([\d.]+) GiB KV cache is needed, which is larger than the available KV cache memory \(([\d.]+) GiB\)\. Based on the available memory, the estimated maximum model length is (\d+)/i,
      // V1, older ("models's"): no estimate, derive it from the two GiB figures
      /max seq len \((\d+)\), \(([\d.]+) GiB KV cache is needed, which is larger than the available KV cache memory \(([\d.]+) GiB\)/i,
      // V0: the KV cache token count is the estimate
      /The model's max seq len \((\d+)\) is larger than the maximum number of tokens that can be stored in KV cache \((\d+)\)/i,
    ],
    diagnose: (m) => {
      const asked = num(m[1]);
      if (m.length === 3) {
        return withRetry(num(m[2]), `The KV cache left after the weights holds ${m[2]} tokens, fewer than one sequence of max_model_len ${asked}.`, asked);
      }
      const need = num(m[2]), have = num(m[3]);
      const estimate = m[4] !== undefined ? num(m[4]) : Math.floor((asked * have) / need);
      return withRetry(estimate, `One sequence of ${asked} tokens needs ${need} GiB of KV cache but only ${have} GiB is left after the weights and activations.`, asked);
    },
  },
  {
    cause: 'no-cache-blocks',
    patterns: [/No available memory for the cache blocks/i],
    diagnose: () => ({
      explanation: 'The weights and activation peak use the whole gpu_memory_utilization budget: nothing is left for the KV cache. The model is too large for this GPU at this setting (a mixture of experts loads all its experts).',
      remedy: 'Use a smaller or 4-bit quantized model (pve-vllm plan lists ones that fit), or raise model.gpuMemoryUtilization if other tenants leave room.',
      retryable: false,
    }),
  },
  {
    cause: 'cuda-oom',
    patterns: [/(?:torch\.(?:cuda\.)?)?OutOfMemoryError: CUDA out of memory\.(?: Tried to allocate ([\d.]+ [KMG]iB))?/i, /CUDA out of memory\.?(?: Tried to allocate ([\d.]+ [KMG]iB))?/i, /CUDA error: out of memory/i],
    diagnose: (m) => ({
      explanation: `CUDA ran out of memory${m[1] ? ` allocating ${m[1]}` : ''} during start-up (activation peak or CUDA graph capture, outside what vLLM profiled).`,
      remedy: 'Lower model.gpuMemoryUtilization by 0.03-0.05 to leave headroom, or lower --max-model-len; if the weights themselves do not fit, use a smaller or quantized model.',
      retryable: false,
    }),
  },
];

const EVIDENCE_MAX = 300;

function evidenceOf(text: string, index: number): string {
  const start = text.lastIndexOf('\n', index) + 1;
  const end = text.indexOf('\n', index);
  const line = text.slice(start, end === -1 ? undefined : end).trim();
  return line.length > EVIDENCE_MAX ? `${line.slice(0, EVIDENCE_MAX - 1)}…` : line;
}

/** Every recognised cause in the log, most specific first; empty when nothing is recognised. */
export function classifyVllmLog(text: string): VllmLogDiagnosis[] {
  const found: VllmLogDiagnosis[] = [];
  for (const rule of RULES) {
    for (const pattern of rule.patterns) {
      const m = pattern.exec(text);
      if (!m) continue;
      found.push({ cause: rule.cause, evidence: evidenceOf(text, m.index), ...rule.diagnose(m) });
      break; // one diagnosis per cause: the first (most informative) pattern wins
    }
  }
  return found;
}

/** The single cause to act on, or undefined when the log shows no known failure. */
export function primaryVllmFailure(text: string): VllmLogDiagnosis | undefined {
  return classifyVllmLog(text)[0];
}
