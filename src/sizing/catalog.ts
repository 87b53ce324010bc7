import { CATALOG } from './catalog-data';
import type { ModelSpec, Quantization } from './types';

export { CATALOG };

const QUANTIZATIONS: readonly Quantization[] = ['fp16', 'bf16', 'awq', 'gptq', 'fp8'];

function norm(id: string): string {
  // HF ids are case-insensitive on the hub; users also paste URLs or trailing slashes.
  return id.trim().replace(/^https?:\/\/huggingface\.co\//i, '').replace(/\/+$/, '').toLowerCase();
}

function namesOf(spec: ModelSpec): string[] {
  return [spec.id, ...(spec.aliases ?? [])].map(norm);
}

/**
 * Resolves a repo id or alias to the spec vLLM will load. A quantized checkpoint resolves to its
 * base architecture with `id`, `quantization` and (when published) `weightBytes` of the checkpoint.
 * Custom specs (from the deploy config) are searched first so users can override the catalog.
 */
export function lookupModel(id: string, customModels: readonly ModelSpec[] = []): ModelSpec | undefined {
  const wanted = norm(id);
  for (const spec of [...customModels, ...CATALOG]) {
    if (namesOf(spec).includes(wanted)) return { ...spec };
    for (const cp of spec.checkpoints ?? []) {
      if (norm(cp.repo) === wanted) {
        const { checkpoints: _drop, aliases: _aliases, ...arch } = spec;
        return { ...arch, id: cp.repo, quantization: cp.quantization, weightBytes: cp.sizeBytes };
      }
    }
  }
  return undefined;
}

/** Every loadable id of the catalog (base models and their quantized checkpoints). */
export function catalogIds(): string[] {
  return CATALOG.flatMap((s) => [s.id, ...(s.checkpoints ?? []).map((c) => c.repo)]);
}

function positiveInt(spec: Record<string, unknown>, key: string, problems: string[]): void {
  const v = spec[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) problems.push(`${key} must be a positive integer (got ${String(v)})`);
}

/**
 * Problems with a user-described model, as sentences; empty when usable. Takes `unknown` because it
 * also guards specs that arrive from YAML before any schema ran.
 */
export function validateModelSpec(input: unknown): string[] {
  if (typeof input !== 'object' || input === null) return ['model spec must be an object'];
  const spec = input as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof spec.id !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(spec.id)) {
    problems.push('id must be a Hugging Face repo id like "owner/name"');
  }
  for (const key of ['layers', 'hiddenSize', 'intermediateSize', 'attentionHeads', 'kvHeads', 'headDim', 'vocabSize', 'paramsTotal', 'nativeContext']) {
    positiveInt(spec, key, problems);
  }
  if (typeof spec.tieWordEmbeddings !== 'boolean') problems.push('tieWordEmbeddings must be true or false');
  if (spec.defaultDtype !== 'float16' && spec.defaultDtype !== 'bfloat16') problems.push('defaultDtype must be "float16" or "bfloat16"');
  if (spec.quantization !== undefined && !QUANTIZATIONS.includes(spec.quantization as Quantization)) {
    problems.push(`quantization must be one of ${QUANTIZATIONS.join(', ')}`);
  }
  if (spec.weightBytes !== undefined && (typeof spec.weightBytes !== 'number' || !(spec.weightBytes > 0))) {
    problems.push('weightBytes must be a positive number of bytes');
  }
  if (spec.paramsActive !== undefined) positiveInt(spec, 'paramsActive', problems);
  const heads = spec.attentionHeads, kv = spec.kvHeads;
  if (typeof heads === 'number' && typeof kv === 'number' && kv > 0 && heads % kv !== 0) {
    problems.push(`attentionHeads (${heads}) must be a multiple of kvHeads (${kv})`);
  }
  if (typeof heads === 'number' && typeof kv === 'number' && kv > heads) problems.push('kvHeads cannot exceed attentionHeads');
  if (typeof spec.paramsActive === 'number' && typeof spec.paramsTotal === 'number' && spec.paramsActive > spec.paramsTotal) {
    problems.push('paramsActive cannot exceed paramsTotal');
  }
  if (spec.experts !== undefined) {
    const e = spec.experts as Record<string, unknown>;
    if (typeof e !== 'object' || e === null) problems.push('experts must be { total, activePerToken }');
    else {
      positiveInt(e, 'total', problems);
      positiveInt(e, 'activePerToken', problems);
      if (typeof e.total === 'number' && typeof e.activePerToken === 'number' && e.activePerToken > e.total) {
        problems.push('experts.activePerToken cannot exceed experts.total');
      }
    }
  }
  // Catch "7" meaning 7 billion: no usable LLM is below a million parameters.
  if (typeof spec.paramsTotal === 'number' && spec.paramsTotal > 0 && spec.paramsTotal < 1e6) {
    problems.push('paramsTotal is a parameter count (e.g. 7241732096), not billions');
  }
  return problems;
}

/**
 * The architecture entry (with its checkpoints) that `id` belongs to, so alternatives can offer a
 * sibling checkpoint with another quantization.
 */
export function findFamily(id: string, customModels: readonly ModelSpec[] = []): ModelSpec | undefined {
  const wanted = norm(id);
  return [...customModels, ...CATALOG].find(
    (spec) => namesOf(spec).includes(wanted) || (spec.checkpoints ?? []).some((cp) => norm(cp.repo) === wanted),
  );
}
