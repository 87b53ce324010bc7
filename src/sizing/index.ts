/** The model-fit engine: pure, synchronous, no Node builtins, so workflow code may import it. */
export type {
  Alternative, AlternativeKind, FitInput, FitResult, GpuSpec, KvCacheDtype, ModelSpec, QuantizedCheckpoint,
  Quantization, ReserveBreakdown, Verdict,
} from './types';
export { CATALOG, catalogIds, findFamily, lookupModel, validateModelSpec } from './catalog';
export {
  CUDA_CONTEXT_BYTES, CUDA_GRAPH_BYTES, GiB, MiB, activationBytesPerToken, embeddingParams, estimateWeightBytes,
  int4BytesPerParam, kvBytesPerToken, profiledTokens, reserveFor,
} from './arithmetic';
export {
  CONTEXT_STEP, DEFAULT_GPU_MEMORY_UTILIZATION, MAX_SUGGESTED_UTILIZATION, TIGHT_MARGIN_SHARE, assessFit,
  defaultQuantization, largestFittingLen, parseComputeCapability, resolveModel,
} from './engine';
export { suggestAlternatives } from './alternatives';
export { classifyVllmLog, primaryVllmFailure } from './classifier';
export type { VllmFailureCause, VllmLogDiagnosis } from './classifier';
export { renderAlternatives, renderSizingTable, sizingSummary } from './render';
