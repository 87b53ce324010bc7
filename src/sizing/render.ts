/** Plain-text views of the sizing results: a table for `pve-vllm plan`, a one-liner for the Temporal UI. */
import { gb, gib } from './arithmetic';
import type { Alternative, FitResult, Verdict } from './types';

const VERDICT_LABEL: Record<Verdict, string> = {
  fits: 'FITS',
  tight: 'TIGHT',
  'does-not-fit': 'DOES NOT FIT',
  unsupported: 'UNSUPPORTED',
};

function rows(pairs: [string, string][]): string[] {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 2;
  return pairs.map(([k, v]) => `${k.padEnd(width)}${v}`);
}

function signedGib(bytes: number): string {
  return `${bytes >= 0 ? '+' : '-'}${gib(Math.abs(bytes))}`;
}

export function renderSizingTable(r: FitResult, opts: { explain?: boolean } = {}): string[] {
  const gpuName = r.gpu.name ? `${r.gpu.name}, ` : '';
  const pairs: [string, string][] = [
    ['Model', `${r.modelId} (${r.quantization})`],
    ['GPU', `${gpuName}${r.gpu.vramMiB} MiB, compute capability ${r.gpu.computeCapability.toFixed(1)}${r.otherUsedMiB > 0 ? `, ${r.otherUsedMiB} MiB held by others` : ''}`],
  ];
  if (r.weightBytes > 0) {
    const res = r.reserve;
    pairs.push(
      ['Weights', `${gb(r.weightBytes)} = ${gib(r.weightBytes)} (${r.weightSource === 'published' ? 'published checkpoint size' : 'estimate'})${r.moe ? `, all ${r.moe.experts} experts` : ''}`],
    );
    if (r.weightBytesOnGpu !== r.weightBytes) pairs.push(['Weights on GPU', `${gib(r.weightBytesOnGpu)} (${r.cpuOffloadGb} GiB offloaded to CPU)`]);
    pairs.push(
      ['KV cache', `${(r.kvBytesPerToken / 1024).toFixed(0)} KiB/token × ${r.maxModelLen} tokens = ${gib(r.kvBytesForContext)} (${r.kvCacheDtype === 'fp8' ? 'fp8' : 'model dtype'})`],
      ['Reserve (assumed)', `${gib(res.totalBytes)} (CUDA context ${(res.cudaContextBytes / 2 ** 30).toFixed(2)} + CUDA graphs ${(res.cudaGraphBytes / 2 ** 30).toFixed(2)} + activations ${(res.activationBytes / 2 ** 30).toFixed(2)})`],
      ['Needed', gib(r.neededBytes)],
      ['Budget', `${gib(r.budgetBytes)} (gpu_memory_utilization ${r.gpuMemoryUtilization.toFixed(2)})`],
      ['Margin', `${signedGib(r.marginBytes)} (${r.marginPct.toFixed(1)} %)`],
      ['Largest context', r.largestMaxModelLen === null ? 'none fits' : `${r.largestMaxModelLen} tokens (native ${r.nativeContext})`],
      ['Suggested utilization', r.suggestedGpuMemoryUtilization.toFixed(2)],
    );
  }
  pairs.push(['Verdict', VERDICT_LABEL[r.verdict]]);
  const lines = rows(pairs);
  if (opts.explain ?? true) {
    lines.push('', 'Why:', ...r.explanation.map((l) => `  - ${l}`));
  }
  return lines;
}

/** The numbered options, nearest first; the caller prints its own heading ("Nearest configurations that fit:"). */
export function renderAlternatives(alternatives: readonly Alternative[]): string[] {
  if (alternatives.length === 0) return ['No listed configuration fits this GPU.'];
  return alternatives.map((a, i) => {
    const r = a.result;
    return `${i + 1}. ${a.summary}: needs ${gib(r.neededBytes)} of ${gib(r.budgetBytes)}, ${VERDICT_LABEL[r.verdict].toLowerCase()} (margin ${r.marginPct.toFixed(1)} %)`;
  });
}

/** One line for a workflow step summary; short enough for the Temporal UI. */
export function sizingSummary(r: FitResult): string {
  const name = r.modelId.split('/').pop() ?? r.modelId;
  if (r.verdict === 'unsupported') return `${name} (${r.quantization}): unsupported: ${r.reasons[0] ?? 'unknown reason'}`;
  const upTo = r.largestMaxModelLen === null ? 'no context fits' : `max context ${r.largestMaxModelLen}`;
  return `${name} (${r.quantization}): ${VERDICT_LABEL[r.verdict].toLowerCase()}: needs ${gib(r.neededBytes)} of ${gib(r.budgetBytes)} at max_model_len ${r.maxModelLen} (margin ${r.marginPct.toFixed(1)} %), ${upTo}`;
}
