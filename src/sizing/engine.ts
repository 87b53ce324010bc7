/**
 * assessFit: will this model, at this context, start under vLLM on this GPU? Pure and synchronous so
 * the deploy workflow can run it as its first preflight, before anything changes on the host.
 *
 * vLLM's accounting (vllm `determine_num_available_blocks` / `_check_enough_kv_cache_memory`): it may use
 * gpu_memory_utilization × VRAM; from that it takes the weights and the profiled peak (our reserve) and
 * gives all the rest to the KV cache, which must hold at least one max_model_len sequence. At start-up
 * the free VRAM must already be at least that budget, so other tenants must fit in the remainder.
 */
import {
  GiB, billions, embeddingParams, estimateWeightBytes, floor2, gb, gib, kvBytesPerElement,
  kvBytesPerToken, MIN_MAX_MODEL_LEN, reserveFor, round2,
} from './arithmetic';
import { findFamily, lookupModel } from './catalog';
import type { FitInput, FitResult, KvCacheDtype, ModelSpec, Quantization, ReserveBreakdown, Verdict } from './types';

export const DEFAULT_GPU_MEMORY_UTILIZATION = 0.9;
/** The design document used 0.95 as its ceiling; above it vLLM's out-of-budget allocations (CUDA graphs in 0.6) risk OOM. */
export const MAX_SUGGESTED_UTILIZATION = 0.95;
/** Below this margin (share of the budget) a fit is called tight: request bursts and fragmentation eat it. */
export const TIGHT_MARGIN_SHARE = 0.1;
/** Offloaded weights live in the container's RAM beside vLLM itself; leave it a quarter. */
export const HOST_OFFLOAD_SHARE = 0.75;
/** Contexts are suggested in steps of this many tokens. */
export const CONTEXT_STEP = 256;
/** A model that cannot reach this context (or its native one if smaller) only fits with a reduced context. */
const FULL_CONTEXT_TARGET = 32768;

const MIN_CC: Partial<Record<Quantization, number>> = {
  awq: 7.5, // vLLM: "Minimum capability: 75" (proxmox-gpu-vllm.md §4)
  gptq: 6.0, // vLLM GPTQConfig.get_min_capability() = 60
  fp8: 8.0, // vLLM Fp8Config min capability 80 (weight-only Marlin on Ampere, native on Ada/Hopper)
};

export function parseComputeCapability(cc: string | number): number {
  const n = typeof cc === 'number' ? cc : Number.parseFloat(cc);
  return Number.isFinite(n) ? n : 0;
}

export function resolveModel(model: string | ModelSpec, customModels: readonly ModelSpec[] = []): ModelSpec | undefined {
  return typeof model === 'string' ? lookupModel(model, customModels) : model;
}

export function defaultQuantization(spec: ModelSpec): Quantization {
  return spec.quantization ?? (spec.defaultDtype === 'float16' ? 'fp16' : 'bf16');
}

const isInt4 = (q: Quantization): boolean => q === 'awq' || q === 'gptq';
const isQuantized = (q: Quantization): boolean => q === 'awq' || q === 'gptq' || q === 'fp8';

function refusals(spec: ModelSpec, q: Quantization, cc: number, input: FitInput, customModels: readonly ModelSpec[]): string[] {
  const reasons: string[] = [];
  const u = input.gpuMemoryUtilization ?? DEFAULT_GPU_MEMORY_UTILIZATION;
  if (!(input.gpu.vramMiB > 0)) reasons.push(`GPU VRAM must be a positive number of MiB, got ${input.gpu.vramMiB}`);
  if (!(cc > 0)) reasons.push(`compute capability must look like "8.9", got "${String(input.gpu.computeCapability)}"`);
  if (!(u > 0 && u <= 1)) reasons.push(`gpu_memory_utilization must be in (0, 1], got ${u}`);
  const len = input.maxModelLen ?? spec.nativeContext;
  if (!Number.isInteger(len) || len < 1) reasons.push(`max_model_len must be a positive integer, got ${len}`);
  else if (len > spec.nativeContext) {
    reasons.push(`max_model_len ${len} is above the model's max_position_embeddings ${spec.nativeContext}; vLLM refuses it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 (and quality degrades)`);
  }
  if (spec.quantization && q !== spec.quantization) {
    reasons.push(`${spec.id} is a ${spec.quantization.toUpperCase()} checkpoint; it cannot be loaded as ${q}`);
  }
  if (!spec.quantization && isInt4(q)) {
    const siblings = (findFamily(spec.id, customModels)?.checkpoints ?? []).filter((c) => c.quantization === q).map((c) => c.repo);
    reasons.push(`vLLM does not quantize to ${q.toUpperCase()} at load time: use a ${q.toUpperCase()} checkpoint${siblings.length ? ` (${siblings.join(', ')})` : ''}`);
  }
  if (q === 'bf16' && cc < 8) reasons.push(`bfloat16 needs compute capability >= 8.0; this GPU has ${cc.toFixed(1)}: use fp16 (same size)`);
  const minCc = MIN_CC[q];
  if (minCc !== undefined && cc < minCc) {
    reasons.push(`${q.toUpperCase()} needs compute capability >= ${minCc.toFixed(1)}; this GPU has ${cc.toFixed(1)} (vLLM: "The quantization method ${q} is not supported for the current GPU. Minimum capability: ${minCc * 10}. Current capability: ${Math.round(cc * 10)}.")`);
  }
  if ((input.cpuOffloadGb ?? 0) > 0 && isQuantized(q)) {
    reasons.push(`--cpu-offload-gb with ${q.toUpperCase()} weights is unreliable in current vLLM (vllm#6952 "b_q_weight is not on GPU"; vllm#56283: accepted but nothing is offloaded): set cpuOffloadGb to 0 or use an fp16/bf16 model`);
  }
  if ((input.cpuOffloadGb ?? 0) < 0) reasons.push('cpu_offload_gb cannot be negative');
  if ((input.otherUsedMiB ?? 0) < 0) reasons.push('other used VRAM cannot be negative');
  return reasons;
}

interface Footprint {
  weightBytes: number;
  weightSource: 'published' | 'estimate';
  weightBytesOnGpu: number;
  kvBytesPerToken: number;
  kvBytesForContext: number;
  reserve: ReserveBreakdown;
  neededBytes: number;
}

function footprint(spec: ModelSpec, q: Quantization, len: number, kv: KvCacheDtype, offloadGb: number, mnbt?: number): Footprint {
  const published = spec.weightBytes !== undefined && q === spec.quantization;
  const weightBytes = published ? (spec.weightBytes as number) : estimateWeightBytes(spec, q);
  // vLLM offloads whole decoder-layer parameters; embeddings and lm_head stay on the GPU.
  const offloadable = Math.max(0, weightBytes - embeddingParams(spec) * 2);
  const weightBytesOnGpu = weightBytes - Math.min(offloadGb * GiB, offloadable);
  const perToken = kvBytesPerToken(spec, kv);
  const reserve = reserveFor(spec, len, mnbt);
  const kvBytesForContext = perToken * len;
  return {
    weightBytes, weightSource: published ? 'published' : 'estimate', weightBytesOnGpu,
    kvBytesPerToken: perToken, kvBytesForContext, reserve,
    neededBytes: weightBytesOnGpu + kvBytesForContext + reserve.totalBytes,
  };
}

/**
 * Largest multiple of CONTEXT_STEP up to the native context whose footprint fits the budget; null if none does,
 * or only contexts shorter than MIN_MAX_MODEL_LEN (too short to deploy: they would only fail at checkpoint 6).
 */
export function largestFittingLen(spec: ModelSpec, q: Quantization, budgetBytes: number, kv: KvCacheDtype, offloadGb = 0, mnbt?: number): number | null {
  const fitsAt = (len: number): boolean => footprint(spec, q, len, kv, offloadGb, mnbt).neededBytes <= budgetBytes;
  if (fitsAt(spec.nativeContext)) return spec.nativeContext;
  let lo = 0; // invariant: lo steps fit (0 = nothing known to fit), hi steps do not
  let hi = Math.floor(spec.nativeContext / CONTEXT_STEP);
  if (hi * CONTEXT_STEP < spec.nativeContext) {
    if (fitsAt(hi * CONTEXT_STEP)) return hi * CONTEXT_STEP;
  }
  // footprint grows with len, so binary search on the step count
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fitsAt(mid * CONTEXT_STEP)) lo = mid;
    else hi = mid;
  }
  return lo * CONTEXT_STEP < MIN_MAX_MODEL_LEN ? null : lo * CONTEXT_STEP;
}

function emptyResult(modelId: string, input: FitInput, reasons: string[]): FitResult {
  const cc = parseComputeCapability(input.gpu.computeCapability);
  const u = input.gpuMemoryUtilization ?? DEFAULT_GPU_MEMORY_UTILIZATION;
  const budget = u * input.gpu.vramMiB * 1024 * 1024;
  return {
    modelId, verdict: 'unsupported', reasons, quantization: input.quantization ?? 'bf16', weightSource: 'estimate',
    gpu: { vramMiB: input.gpu.vramMiB, computeCapability: cc, name: input.gpu.name }, gpuMemoryUtilization: u,
    maxModelLen: input.maxModelLen ?? 0, nativeContext: 0, kvCacheDtype: input.kvCacheDtype ?? 'auto', kvBytesPerElement: 2,
    cpuOffloadGb: input.cpuOffloadGb ?? 0, otherUsedMiB: input.otherUsedMiB ?? 0, weightBytes: 0, weightBytesOnGpu: 0,
    kvBytesPerToken: 0, kvBytesForContext: 0,
    reserve: { cudaContextBytes: 0, cudaGraphBytes: 0, activationBytes: 0, totalBytes: 0, profiledTokens: 0 },
    neededBytes: 0, budgetBytes: budget, marginBytes: 0, marginPct: 0, largestMaxModelLen: null,
    suggestedGpuMemoryUtilization: u, explanation: reasons.map((r) => `Refused: ${r}.`),
  };
}

export function assessFit(input: FitInput): FitResult {
  const custom = input.customModels ?? [];
  const spec = resolveModel(input.model, custom);
  const modelId = typeof input.model === 'string' ? input.model : input.model.id;
  if (!spec) {
    return emptyResult(modelId, input, [`${modelId} is not in the catalog: describe it in the config under model.spec (layers, kvHeads, headDim, paramsTotal, …)`]);
  }
  const cc = parseComputeCapability(input.gpu.computeCapability);
  // `--dtype auto` casts bf16 checkpoints to fp16 below cc 8.0 (same size); an explicit bf16 is refused.
  const autoQ = defaultQuantization(spec);
  const q = input.quantization ?? (autoQ === 'bf16' && cc < 8 ? 'fp16' : autoQ);
  const u = input.gpuMemoryUtilization ?? DEFAULT_GPU_MEMORY_UTILIZATION;
  const kv = input.kvCacheDtype ?? 'auto';
  const offloadGb = input.cpuOffloadGb ?? 0;
  const otherMiB = input.otherUsedMiB ?? 0;
  const len = input.maxModelLen ?? spec.nativeContext;
  const vramBytes = input.gpu.vramMiB * 1024 * 1024;
  const budgetBytes = u * vramBytes;

  const reasons = refusals(spec, q, cc, input, custom);
  const fp = footprint(spec, q, Math.max(1, len), kv, offloadGb, input.maxNumBatchedTokens);
  const marginBytes = budgetBytes - fp.neededBytes;
  const largest = largestFittingLen(spec, q, budgetBytes, kv, offloadGb, input.maxNumBatchedTokens);
  const freeShare = (vramBytes - otherMiB * 1024 * 1024) / vramBytes;
  const maxUtil = floor2(Math.min(MAX_SUGGESTED_UTILIZATION, freeShare - 0.01));
  const freeTooLow = otherMiB > 0 && u > freeShare;
  const hostMiB = input.hostMemoryMiB;
  const offloadTooBig = hostMiB !== undefined && offloadGb * 1024 > hostMiB * HOST_OFFLOAD_SHARE;

  let verdict: Verdict;
  if (reasons.length > 0) verdict = 'unsupported';
  else if (freeTooLow || offloadTooBig || marginBytes < 0) verdict = 'does-not-fit';
  else if (marginBytes < TIGHT_MARGIN_SHARE * budgetBytes || (largest ?? 0) < Math.min(spec.nativeContext, FULL_CONTEXT_TARGET)) verdict = 'tight';
  else verdict = 'fits';
  if (freeTooLow && verdict === 'does-not-fit') {
    reasons.push(`only ${(freeShare * 100).toFixed(0)} % of the VRAM is free (${otherMiB} MiB held by other processes) but gpu_memory_utilization ${u} asks for ${(u * 100).toFixed(0)} %; vLLM refuses to start ("Free memory on device … is less than desired GPU memory utilization")`);
  }

  if (offloadTooBig && verdict === 'does-not-fit') {
    reasons.push(`--cpu-offload-gb ${offloadGb} needs that much of the container's ${hostMiB} MiB RAM (at most ${Math.floor(((hostMiB as number) * HOST_OFFLOAD_SHARE) / 1024)} GiB leaves room for vLLM itself)`);
  }

  // Keep a working utilisation; otherwise the most that is safely free: vLLM turns the extra into KV cache.
  const fixedBytes = fp.weightBytesOnGpu + fp.reserve.cudaContextBytes + fp.reserve.cudaGraphBytes;
  const hopeless = fixedBytes > maxUtil * vramBytes; // no utilisation makes room for the weights
  const keep = ((verdict === 'fits' || verdict === 'tight') && u <= maxUtil) || verdict === 'unsupported' || hopeless;
  const suggested = keep ? u : maxUtil;

  const result: FitResult = {
    modelId: spec.id, verdict, reasons, quantization: q, weightSource: fp.weightSource,
    gpu: { vramMiB: input.gpu.vramMiB, computeCapability: cc, name: input.gpu.name },
    gpuMemoryUtilization: u, maxModelLen: len, nativeContext: spec.nativeContext, kvCacheDtype: kv,
    kvBytesPerElement: kvBytesPerElement(kv), cpuOffloadGb: offloadGb, otherUsedMiB: otherMiB,
    weightBytes: fp.weightBytes, weightBytesOnGpu: fp.weightBytesOnGpu, kvBytesPerToken: fp.kvBytesPerToken,
    kvBytesForContext: fp.kvBytesForContext, reserve: fp.reserve, neededBytes: fp.neededBytes, budgetBytes,
    marginBytes, marginPct: round2((marginBytes / budgetBytes) * 100), largestMaxModelLen: largest,
    suggestedGpuMemoryUtilization: round2(suggested),
    moe: spec.experts ? { experts: spec.experts.total, activePerToken: spec.experts.activePerToken, paramsTotal: spec.paramsTotal, paramsActive: spec.paramsActive } : undefined,
    explanation: [],
  };
  result.explanation = explain(spec, result);
  return result;
}

function explain(spec: ModelSpec, r: FitResult): string[] {
  const lines: string[] = [];
  for (const reason of r.reasons) lines.push(`${r.verdict === 'unsupported' ? 'Refused' : 'Cannot start'}: ${reason}.`);
  const qLabel = isInt4(r.quantization) ? `${r.quantization.toUpperCase()} 4-bit (embeddings and lm_head kept in 16-bit)` : r.quantization === 'fp8' ? 'FP8 (embeddings and lm_head kept in 16-bit)' : r.quantization.toUpperCase();
  const estimate = estimateWeightBytes(spec, r.quantization);
  lines.push(r.weightSource === 'published'
    ? `Weights: ${gb(r.weightBytes)} (${gib(r.weightBytes)}), the published size of ${spec.id}, ${qLabel}; our formula gives ${gb(estimate)}.`
    : `Weights: ${gb(r.weightBytes)} (${gib(r.weightBytes)}) estimated for ${billions(spec.paramsTotal)} parameters as ${qLabel}.`);
  if (r.moe) {
    lines.push(`Mixture of experts: vLLM loads all ${r.moe.experts} experts (${billions(r.moe.paramsTotal)} parameters) although only ${r.moe.activePerToken} run per token${r.moe.paramsActive ? ` (${billions(r.moe.paramsActive)} active)` : ''}; memory follows the total, not the active count.`);
  }
  if (r.cpuOffloadGb > 0) {
    lines.push(`CPU offload: ${gib(r.weightBytes - r.weightBytesOnGpu)} of weights stay in host RAM and cross PCIe on every forward pass (slow); ${gib(r.weightBytesOnGpu)} stay on the GPU.`);
  }
  const elem = r.kvBytesPerElement;
  lines.push(`KV cache: 2 × ${spec.layers} layers × ${spec.kvHeads} KV heads × ${spec.headDim} head_dim × ${elem} bytes = ${(r.kvBytesPerToken / 1024).toFixed(0)} KiB per token; ${r.maxModelLen} tokens need ${gib(r.kvBytesForContext)}.`);
  const res = r.reserve;
  lines.push(`Reserve (assumed): ${gib(res.totalBytes)} = CUDA context ${gib(res.cudaContextBytes)} + CUDA graphs ${gib(res.cudaGraphBytes)} + activations of a ${res.profiledTokens}-token profiling pass ${gib(res.activationBytes)}.`);
  lines.push(`Budget: ${r.gpuMemoryUtilization} × ${r.gpu.vramMiB} MiB = ${gib(r.budgetBytes)}; needed ${gib(r.neededBytes)}; margin ${r.marginBytes >= 0 ? '+' : ''}${gib(r.marginBytes)} (${r.marginPct.toFixed(1)} %).`);
  if (r.verdict === 'unsupported') return lines;
  const fixed = r.weightBytesOnGpu + res.cudaContextBytes + res.cudaGraphBytes;
  if (fixed > r.budgetBytes) {
    lines.push(`The weights alone (${gib(r.weightBytesOnGpu)}) exhaust the budget: no context length helps. vLLM would stop with CUDA out of memory or "No available memory for the cache blocks".`);
  } else if (r.largestMaxModelLen === null) {
    lines.push(`Not even a ${MIN_MAX_MODEL_LEN}-token context (the shortest we deploy) fits beside the weights.`);
  } else if (r.largestMaxModelLen < r.maxModelLen) {
    lines.push(`Largest max_model_len that fits: ${r.largestMaxModelLen} (asked ${r.maxModelLen}, native ${r.nativeContext}); vLLM would report that the KV cache cannot hold one max_model_len sequence.`);
  } else if (r.largestMaxModelLen < r.nativeContext) {
    lines.push(`Fits with a reduced context only: the largest max_model_len is ${r.largestMaxModelLen} of the native ${r.nativeContext}.`);
  } else {
    lines.push(`Even the native context (${r.nativeContext}) fits.`);
  }
  const verdictText: Record<Verdict, string> = {
    fits: 'Verdict: fits.',
    tight: r.marginPct < TIGHT_MARGIN_SHARE * 100 ? `Verdict: tight, the margin is under ${TIGHT_MARGIN_SHARE * 100} % of the budget.` : 'Verdict: tight, it fits only with a reduced context.',
    'does-not-fit': 'Verdict: does not fit.',
    unsupported: 'Verdict: unsupported.',
  };
  lines.push(verdictText[r.verdict]);
  if (r.suggestedGpuMemoryUtilization !== r.gpuMemoryUtilization) {
    lines.push(`Suggested gpu_memory_utilization: ${r.suggestedGpuMemoryUtilization.toFixed(2)}.`);
  }
  return lines;
}
