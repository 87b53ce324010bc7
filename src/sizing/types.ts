/**
 * Plain types of the model-fit engine. No zod here: this module is imported by workflow code
 * (Temporal's deterministic sandbox), and the config schema mirrors ModelSpec on its own side.
 */

/** How the weights are stored. `awq`/`gptq` are 4-bit, group size 128; `fp8` is 8-bit weights. */
export type Quantization = 'fp16' | 'bf16' | 'awq' | 'gptq' | 'fp8';

/** `auto` = the model's dtype (2 bytes); `fp8` halves the KV cache (`--kv-cache-dtype fp8`). */
export type KvCacheDtype = 'auto' | 'fp8';

export type Verdict = 'fits' | 'tight' | 'does-not-fit' | 'unsupported';

/** A quantized checkpoint of a base architecture, as published on Hugging Face. */
export interface QuantizedCheckpoint {
  /** HF repo id, e.g. TheBloke/Mistral-7B-Instruct-v0.2-AWQ. */
  repo: string;
  quantization: Quantization;
  /** Total size of the safetensors files in bytes, when the publisher states it. */
  sizeBytes?: number;
}

/**
 * The architecture facts the arithmetic needs; the same shape describes an unlisted model in the
 * deploy config (`model.spec`). Counts are plain numbers (parameters, not billions).
 */
export interface ModelSpec {
  /** HF repo id that is passed to vLLM as `--model`. */
  id: string;
  /** Other names accepted by lookup (case-insensitive). */
  aliases?: string[];
  layers: number;
  hiddenSize: number;
  /** MLP width; for a mixture of experts, the width of one expert. */
  intermediateSize: number;
  /** false for the two-matrix fc1/fc2 MLP (Phi-2); default true (gate/up/down, SwiGLU). */
  gatedMlp?: boolean;
  attentionHeads: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  /** true when lm_head shares the embedding matrix (stored once). */
  tieWordEmbeddings: boolean;
  paramsTotal: number;
  /** Parameters used per token; differs from paramsTotal only for mixtures of experts. */
  paramsActive?: number;
  experts?: { total: number; activePerToken: number };
  /** max_position_embeddings of config.json: the largest max_model_len vLLM accepts by default. */
  nativeContext: number;
  /** torch_dtype of config.json; vLLM's `--dtype auto` keeps it (fp16 on GPUs below cc 8.0). */
  defaultDtype: 'float16' | 'bfloat16';
  /** Set when `id` itself is a quantized checkpoint. */
  quantization?: Quantization;
  /** Published checkpoint size in bytes for `id`, when known (wins over the estimate). */
  weightBytes?: number;
  /** Known quantized checkpoints of this architecture (catalog only). */
  checkpoints?: QuantizedCheckpoint[];
}

export interface GpuSpec {
  vramMiB: number;
  /** "8.9" or 8.9 */
  computeCapability: string | number;
  name?: string;
}

export interface FitInput {
  /** A catalog id/alias, or a full spec for an unlisted model. */
  model: string | ModelSpec;
  /** Defaults to the checkpoint's quantization, else the model's dtype. */
  quantization?: Quantization;
  gpu: GpuSpec;
  /** Defaults to 0.9 (vLLM 0.6; current vLLM defaults to 0.92). */
  gpuMemoryUtilization?: number;
  /** Defaults to the model's native context. */
  maxModelLen?: number;
  kvCacheDtype?: KvCacheDtype;
  /** `--cpu-offload-gb`, GiB of weights kept in host RAM. */
  cpuOffloadGb?: number;
  /** VRAM already held on the GPU by other processes (e.g. ComfyUI), MiB. */
  otherUsedMiB?: number;
  /** RAM of the vLLM container, MiB; bounds --cpu-offload-gb when given. */
  hostMemoryMiB?: number;
  /** Tokens of the profiling forward pass; default follows vLLM 0.6 (see reserve.ts). */
  maxNumBatchedTokens?: number;
  /** Specs from the deploy config, searched before the catalog. */
  customModels?: ModelSpec[];
}

export interface ReserveBreakdown {
  cudaContextBytes: number;
  cudaGraphBytes: number;
  activationBytes: number;
  totalBytes: number;
  profiledTokens: number;
}

export interface FitResult {
  modelId: string;
  verdict: Verdict;
  /** Why the combination was refused (verdict `unsupported`) or cannot start. */
  reasons: string[];
  quantization: Quantization;
  weightSource: 'published' | 'estimate';
  gpu: { vramMiB: number; computeCapability: number; name?: string };
  gpuMemoryUtilization: number;
  maxModelLen: number;
  nativeContext: number;
  kvCacheDtype: KvCacheDtype;
  kvBytesPerElement: number;
  cpuOffloadGb: number;
  otherUsedMiB: number;
  weightBytes: number;
  /** Weights that stay on the GPU after CPU offload. */
  weightBytesOnGpu: number;
  kvBytesPerToken: number;
  kvBytesForContext: number;
  reserve: ReserveBreakdown;
  neededBytes: number;
  /** gpu_memory_utilization × VRAM: what vLLM allows itself. */
  budgetBytes: number;
  /** budget − needed; negative when it does not fit. */
  marginBytes: number;
  marginPct: number;
  /** Largest max_model_len (multiple of 256, ≤ native context) that fits; null if none. */
  largestMaxModelLen: number | null;
  suggestedGpuMemoryUtilization: number;
  moe?: { experts: number; activePerToken: number; paramsTotal: number; paramsActive?: number };
  explanation: string[];
}

export type AlternativeKind = 'no-cpu-offload' | 'shorter-context' | 'utilization' | 'kv-cache-fp8' | 'quantization' | 'cpu-offload' | 'model';

export interface Alternative {
  kind: AlternativeKind;
  /** One line in pve-vllm's terms, e.g. "--max-model-len 13312" or "model.kvCacheDtype: fp8 in the config". */
  summary: string;
  /** The input changes that make it fit (merge over the original input). */
  change: Partial<Pick<FitInput, 'maxModelLen' | 'gpuMemoryUtilization' | 'kvCacheDtype' | 'quantization' | 'cpuOffloadGb'>> & { model?: string };
  result: FitResult;
}
