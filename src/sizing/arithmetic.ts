/**
 * The memory arithmetic, one formula per function so tests can check each by hand.
 * Every assumption that is not a plain fact of the checkpoint format is named here.
 */
import type { KvCacheDtype, ModelSpec, Quantization, ReserveBreakdown } from './types';

/**
 * The shortest context we deploy. vLLM takes less, but checkpoint 6's chat through a frontend (its prompt and an
 * answer) needs room, and a context shorter than this would only fail there, after the whole deploy and its undo.
 */
export const MIN_MAX_MODEL_LEN = 512;

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;

/** Group size of AWQ/GPTQ checkpoints we size for (TheBloke and Qwen publish g128). */
export const QUANT_GROUP_SIZE = 128;

/**
 * Embedding matrix plus lm_head. 4-bit and fp8 checkpoints keep both in 16-bit ([§5]: "embeddings
 * and lm_head kept in FP16"); a tied lm_head is stored once.
 */
export function embeddingParams(spec: ModelSpec): number {
  return spec.vocabSize * spec.hiddenSize * (spec.tieWordEmbeddings ? 1 : 2);
}

/** Bytes per quantized linear weight: 4-bit value + per group of 128 inputs an fp16 scale and a 4-bit zero. */
export function int4BytesPerParam(groupSize = QUANT_GROUP_SIZE): number {
  return 0.5 + (2 + 0.5) / groupSize;
}

/**
 * Weight bytes from the architecture. Norms and biases (< 0.1 % of a model) are counted with the
 * linears; a mixture of experts counts every expert, because vLLM loads all of them.
 */
export function estimateWeightBytes(spec: ModelSpec, quantization: Quantization): number {
  const embeddings = Math.min(embeddingParams(spec), spec.paramsTotal);
  const linears = spec.paramsTotal - embeddings;
  switch (quantization) {
    case 'fp16':
    case 'bf16':
      return spec.paramsTotal * 2;
    case 'awq':
    case 'gptq':
      return linears * int4BytesPerParam() + embeddings * 2;
    case 'fp8':
      // one byte per weight; the per-tensor/per-channel scales are negligible
      return linears + embeddings * 2;
  }
}

export function kvBytesPerElement(kvCacheDtype: KvCacheDtype): number {
  return kvCacheDtype === 'fp8' ? 1 : 2;
}

/** 2 (K and V) × layers × KV heads × head_dim × bytes per element, per token. */
export function kvBytesPerToken(spec: ModelSpec, kvCacheDtype: KvCacheDtype): number {
  return 2 * spec.layers * spec.kvHeads * spec.headDim * kvBytesPerElement(kvCacheDtype);
}

/*
 * The reserve: memory inside vLLM's budget that is neither weights nor KV cache. vLLM measures it at
 * start-up with a profiling forward pass; we estimate it (UNVERIFIED constants, conservative):
 *  - CUDA context, cuBLAS workspaces and other non-torch allocations: 512 MiB.
 *  - CUDA graphs: 512 MiB. A real vLLM 0.8 log on a 7-8B model says "Graph capturing finished in
 *    21 secs, took 0.45 GiB" (host-commands.md §11.1).
 *  - Activations of the profiling pass: tokens × 2 bytes × (4 × hidden + MLP intermediates), the
 *    residual, normed input, attention output and the gate/up/act tensors alive at the MLP peak
 *    (top-k copies for a mixture of experts); plus the sampler's fp32 logits for 256 sequences.
 *  - Tokens of that pass: vLLM 0.6 (the pinned image) profiles max(max_model_len, 2048) tokens while
 *    chunked prefill is off, which it is up to 32K context (SchedulerConfig/EngineArgs defaults of the
 *    V0 engine as we know them; UNVERIFIED against 0.6.4.post1 line by line). Above 32K we keep 32768 rather than the smaller
 *    chunked batch, so that a longer context never needs less memory (keeps the search monotone).
 *    vLLM ≥ 0.8 profiles 2048-8192 tokens, so there this is an over-estimate.
 */
export const CUDA_CONTEXT_BYTES = 512 * MiB;
export const CUDA_GRAPH_BYTES = 512 * MiB;
const PROFILE_MIN_TOKENS = 2048;
const PROFILE_MAX_TOKENS = 32768;
const PROFILE_SEQUENCES = 256;

export function profiledTokens(maxModelLen: number, maxNumBatchedTokens?: number): number {
  if (maxNumBatchedTokens !== undefined) return maxNumBatchedTokens;
  return Math.min(Math.max(maxModelLen, PROFILE_MIN_TOKENS), PROFILE_MAX_TOKENS);
}

export function activationBytesPerToken(spec: ModelSpec): number {
  const mlpTensors = spec.gatedMlp === false ? 2 : 3;
  const copies = spec.experts?.activePerToken ?? 1;
  return 2 * (4 * spec.hiddenSize + copies * mlpTensors * spec.intermediateSize);
}

export function reserveFor(spec: ModelSpec, maxModelLen: number, maxNumBatchedTokens?: number): ReserveBreakdown {
  const tokens = profiledTokens(maxModelLen, maxNumBatchedTokens);
  const logits = PROFILE_SEQUENCES * spec.vocabSize * 4;
  const activationBytes = tokens * activationBytesPerToken(spec) + logits;
  return {
    cudaContextBytes: CUDA_CONTEXT_BYTES,
    cudaGraphBytes: CUDA_GRAPH_BYTES,
    activationBytes,
    totalBytes: CUDA_CONTEXT_BYTES + CUDA_GRAPH_BYTES + activationBytes,
    profiledTokens: tokens,
  };
}

export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

export function floor2(n: number): number {
  return Math.floor(n * 100 + 1e-9) / 100;
}

export function ceil2(n: number): number {
  return Math.ceil(n * 100 - 1e-9) / 100;
}

export function gib(bytes: number): string {
  return `${(bytes / GiB).toFixed(2)} GiB`;
}

export function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

export function billions(n: number): string {
  return `${(n / 1e9).toFixed(1)} B`;
}
