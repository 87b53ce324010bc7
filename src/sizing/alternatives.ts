/**
 * suggestAlternatives: the nearest configurations that do fit, nearest first: the same model with a
 * shorter context or another utilisation, an FP8 KV cache, another quantization of the same
 * architecture, CPU offload of 16-bit weights, and finally other listed models (most parameters first).
 */
import { CATALOG, findFamily } from './catalog';
import { GiB } from './arithmetic';
import { MAX_SUGGESTED_UTILIZATION, TIGHT_MARGIN_SHARE, assessFit, resolveModel } from './engine';
import type { Alternative, FitInput, FitResult, ModelSpec, Quantization } from './types';

const usable = (r: FitResult): boolean => r.verdict === 'fits' || r.verdict === 'tight';
/** Other models are offered at the asked context, or at a reduced one down to this. */
const MIN_USEFUL_CONTEXT = 4096;
const MAX_OTHER_MODELS = 3;

/** Loadable variants of an architecture: its quantized checkpoints, dynamic FP8, then the 16-bit base. */
function variantsOf(family: ModelSpec): { model: string; quantization?: Quantization }[] {
  const checkpoints = (family.checkpoints ?? []).map((c) => ({ model: c.repo, quantization: c.quantization }));
  return [...checkpoints, { model: family.id, quantization: 'fp8' as const }, { model: family.id }];
}

/** FP8 of a 16-bit checkpoint, quantized as it loads: only `model.quantization: fp8` asks vLLM for it. */
function isOnlineFp8(family: ModelSpec, v: { model: string; quantization?: Quantization }): boolean {
  return v.quantization === 'fp8' && !(family.checkpoints ?? []).some((c) => c.repo === v.model);
}

/** The asked context if it fits, else the largest that fits when it is still useful. */
function atUsefulContext(input: FitInput, minContext: number): FitResult | undefined {
  const first = assessFit(input);
  if (usable(first)) return first;
  if (first.verdict !== 'does-not-fit' || first.largestMaxModelLen === null) return undefined;
  if (first.largestMaxModelLen < Math.min(minContext, first.nativeContext)) return undefined;
  const reduced = assessFit({ ...input, maxModelLen: first.largestMaxModelLen });
  return usable(reduced) ? reduced : undefined;
}

/**
 * How a user asks pve-vllm for a change: its own flags where it has them (`--model`, `--max-model-len`), config
 * keys for the rest. `onlineFp8`: FP8 of a 16-bit checkpoint, which only `model.quantization: fp8` asks for.
 */
export function howToAsk(change: Alternative['change'], onlineFp8 = false, dropFp8 = false): string {
  const flags = [change.model ? `--model ${change.model}` : '', change.maxModelLen !== undefined ? `--max-model-len ${change.maxModelLen}` : ''].filter(Boolean);
  const keys = [
    change.gpuMemoryUtilization !== undefined ? `model.gpuMemoryUtilization: ${change.gpuMemoryUtilization.toFixed(2)}` : '',
    change.kvCacheDtype ? `model.kvCacheDtype: ${change.kvCacheDtype}` : '',
    onlineFp8 ? 'model.quantization: fp8' : dropFp8 ? 'no model.quantization' : '',
    change.cpuOffloadGb !== undefined ? `model.cpuOffloadGb: ${change.cpuOffloadGb}` : '',
  ].filter(Boolean);
  if (keys.length === 0) return flags.join(' ');
  return `${flags.length ? `${flags.join(' ')} with ` : ''}${keys.join(', ')} in the config`;
}

export function suggestAlternatives(input: FitInput): Alternative[] {
  const base = assessFit(input);
  if (base.verdict === 'fits') return [];
  const custom = input.customModels ?? [];
  const spec = resolveModel(input.model, custom);
  const out: Alternative[] = [];
  const asked = input.maxModelLen ?? spec?.nativeContext ?? 0;
  const u = input.gpuMemoryUtilization ?? 0.9;
  const same = (change: Alternative['change']): FitResult => assessFit({ ...input, ...change, model: change.model ?? input.model });

  if (spec) {
    // 0. Quantized weights with CPU offload are refused; the same model without offload may fit.
    if ((input.cpuOffloadGb ?? 0) > 0 && base.quantization !== 'fp16' && base.quantization !== 'bf16') {
      const result = atUsefulContext({ ...input, cpuOffloadGb: 0 }, MIN_USEFUL_CONTEXT);
      if (result) out.push({ kind: 'no-cpu-offload', summary: howToAsk({ cpuOffloadGb: 0, maxModelLen: result.maxModelLen }), change: { cpuOffloadGb: 0, maxModelLen: result.maxModelLen }, result });
    }
    // 1. Same model, shorter context (at the asked utilisation, then at the suggested one).
    const shorter = base.largestMaxModelLen;
    if (shorter !== null && shorter < asked) {
      const result = same({ maxModelLen: shorter });
      if (usable(result)) out.push({ kind: 'shorter-context', summary: howToAsk({ maxModelLen: shorter }), change: { maxModelLen: shorter }, result });
    }
    // 2. Same context, more of the GPU.
    const su = base.suggestedGpuMemoryUtilization;
    if (su !== u && su <= MAX_SUGGESTED_UTILIZATION) {
      const result = same({ gpuMemoryUtilization: su });
      if (usable(result) && result.maxModelLen === asked) {
        out.push({ kind: 'utilization', summary: howToAsk({ gpuMemoryUtilization: su }), change: { gpuMemoryUtilization: su }, result });
      }
    }
    // 3. FP8 KV cache halves the per-token cost.
    if ((input.kvCacheDtype ?? 'auto') === 'auto' && base.verdict !== 'unsupported') {
      const result = same({ kvCacheDtype: 'fp8' });
      if (usable(result)) out.push({ kind: 'kv-cache-fp8', summary: `${howToAsk({ kvCacheDtype: 'fp8' })} (max_model_len ${asked})`, change: { kvCacheDtype: 'fp8' }, result });
    }
  }

  // 4. Another quantization of the same architecture.
  const family = spec ? findFamily(spec.id, custom) ?? spec : undefined;
  if (family) {
    for (const v of variantsOf(family)) {
      if (v.model.toLowerCase() === base.modelId.toLowerCase() && (v.quantization ?? base.quantization) === base.quantization) continue;
      const offload = v.quantization === undefined ? input.cpuOffloadGb : 0; // offload only works with 16-bit weights
      const result = atUsefulContext({ ...input, model: v.model, quantization: v.quantization, cpuOffloadGb: offload, maxModelLen: Math.min(asked, family.nativeContext) }, MIN_USEFUL_CONTEXT);
      if (!result) continue;
      const online = isOnlineFp8(family, v);
      // Offload only with 16-bit weights, and online FP8 only of a 16-bit checkpoint: the offer says to drop them.
      const change = { model: v.model, maxModelLen: result.maxModelLen, ...(offload !== input.cpuOffloadGb ? { cpuOffloadGb: offload } : {}) };
      out.push({ kind: 'quantization', summary: `${howToAsk(change, online, input.quantization === 'fp8' && !online)} (${result.quantization})`, change: { ...change, quantization: v.quantization }, result });
    }
  }

  // 5. The design's original plan: keep part of 16-bit weights in host RAM (slow, but it starts).
  if (spec && base.verdict === 'does-not-fit' && (base.quantization === 'fp16' || base.quantization === 'bf16')) {
    const over = base.neededBytes - base.budgetBytes * (1 - TIGHT_MARGIN_SHARE / 2);
    const offloadGb = Math.max(1, Math.ceil(over / GiB) + (input.cpuOffloadGb ?? 0));
    const result = assessFit({ ...input, cpuOffloadGb: offloadGb });
    // Beyond half the weights every token waits mostly on PCIe: not a configuration worth offering.
    const offloaded = result.weightBytes - result.weightBytesOnGpu;
    if (usable(result) && offloaded >= offloadGb * GiB && offloaded <= result.weightBytes / 2) {
      out.push({ kind: 'cpu-offload', summary: `${howToAsk({ cpuOffloadGb: offloadGb })} (weights cross PCIe every token: slow)`, change: { cpuOffloadGb: offloadGb }, result });
    }
  }

  // 6. Other listed models, most parameters first: the most capable thing this GPU can run.
  const others: Alternative[] = [];
  for (const other of [...custom, ...CATALOG]) {
    if (family && other.id === family.id) continue;
    for (const v of variantsOf(other)) {
      const result = atUsefulContext({ ...input, model: v.model, quantization: v.quantization, maxModelLen: Math.min(asked || other.nativeContext, other.nativeContext), cpuOffloadGb: 0 }, MIN_USEFUL_CONTEXT);
      if (!result) continue;
      const online = isOnlineFp8(other, v);
      const change = { model: v.model, maxModelLen: result.maxModelLen, ...((input.cpuOffloadGb ?? 0) > 0 ? { cpuOffloadGb: 0 } : {}) };
      others.push({ kind: 'model', summary: `${howToAsk(change, online, input.quantization === 'fp8' && !online)} (${result.quantization}, ${result.verdict})`, change: { ...change, quantization: v.quantization }, result });
      break; // the first usable variant is the smallest footprint this family offers
    }
  }
  const paramsOf = (a: Alternative): number => resolveModel(a.result.modelId, custom)?.paramsTotal ?? 0;
  others.sort((a, b) => paramsOf(b) - paramsOf(a) || a.result.modelId.localeCompare(b.result.modelId));
  out.push(...others.slice(0, MAX_OTHER_MODELS));
  return out;
}
