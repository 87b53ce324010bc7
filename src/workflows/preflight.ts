// Offline preflight shared by `pve-vllm plan` and the deploy workflow: will the model run on this GPU?
// Pure (the sizing engine does no I/O), so it runs inside workflow code before anything on the host changes.
import type { DeployConfig } from '../config/schema';
import type { VllmLaunch } from '../activities/contract';
import { assessFit } from '../sizing/engine';
import { suggestAlternatives } from '../sizing/alternatives';
import type { FitInput, FitResult, ModelSpec } from '../sizing/types';

/** The design document's GPU, used when the config does not describe its own. */
export const DEFAULT_GPU = { vramMiB: 16376, computeCapability: '8.9', name: 'NVIDIA GeForce RTX 4070 Ti SUPER' } as const;

export interface Preflight {
  ok: boolean;
  fit: FitResult;
  input: FitInput;
  launch: VllmLaunch;
  lines: string[];
  alternatives: string[];
}

export function fitInput(cfg: DeployConfig, maxModelLen?: number): FitInput {
  return {
    model: cfg.model.id,
    gpu: {
      vramMiB: cfg.gpu.vramMiB ?? DEFAULT_GPU.vramMiB,
      computeCapability: cfg.gpu.computeCapability ?? DEFAULT_GPU.computeCapability,
      name: cfg.gpu.model ?? DEFAULT_GPU.name,
    },
    gpuMemoryUtilization: cfg.model.gpuMemoryUtilization,
    maxModelLen: maxModelLen ?? cfg.model.maxModelLen,
    cpuOffloadGb: cfg.model.cpuOffloadGb,
    ...(cfg.model.quantization ? { quantization: cfg.model.quantization } : {}),
    kvCacheDtype: cfg.model.kvCacheDtype,
    hostMemoryMiB: cfg.guests.vllm.memoryMiB,
    customModels: cfg.model.spec ? [cfg.model.spec as unknown as ModelSpec] : [],
  };
}

export function preflightModel(cfg: DeployConfig): Preflight {
  let input = fitInput(cfg);
  let fit = assessFit(input);
  const lines = [...fit.explanation];
  // No context asked for and the native one does not fit: take the largest that does, if allowed.
  if (fit.verdict === 'does-not-fit' && cfg.model.maxModelLen === undefined && cfg.model.allowContextReduction && fit.largestMaxModelLen) {
    lines.push(`native context ${fit.nativeContext} does not fit; using --max-model-len ${fit.largestMaxModelLen}`);
    input = fitInput(cfg, fit.largestMaxModelLen);
    fit = assessFit(input);
    lines.push(...fit.explanation);
  }
  const ok = fit.verdict === 'fits' || fit.verdict === 'tight';
  const alternatives = ok ? [] : suggestAlternatives(input).map((a) => a.summary);
  if (!ok && alternatives.length) lines.push('configurations that fit:', ...alternatives.map((a) => `  - ${a}`));
  const q = fit.quantization;
  return {
    ok,
    fit,
    input,
    lines,
    alternatives,
    launch: {
      model: cfg.model.id,
      servedModelName: cfg.model.id,
      maxModelLen: fit.maxModelLen,
      gpuMemoryUtilization: fit.gpuMemoryUtilization,
      cpuOffloadGb: fit.cpuOffloadGb,
      ...(q === 'awq' || q === 'gptq' || q === 'fp8' ? { quantization: q } : {}),
      ...(cfg.model.kvCacheDtype === 'fp8' ? { kvCacheDtype: 'fp8' } : {}),
    },
  };
}
