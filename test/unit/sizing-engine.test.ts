import {
  GiB, assessFit, estimateWeightBytes, kvBytesPerToken, largestFittingLen, lookupModel,
} from '../../src/sizing';
import type { FitInput, ModelSpec } from '../../src/sizing';

/** The design document's GPU: RTX 4070 Ti SUPER as nvidia-smi reports it. */
const RTX_4070_TI_SUPER = { vramMiB: 16376, computeCapability: '8.9', name: 'NVIDIA GeForce RTX 4070 Ti SUPER' };
const V100_16G = { vramMiB: 16160, computeCapability: '7.0', name: 'Tesla V100-PCIE-16GB' };

function fit(model: string | ModelSpec, extra: Partial<FitInput> = {}) {
  return assessFit({ model, gpu: RTX_4070_TI_SUPER, ...extra });
}

function spec(id: string): ModelSpec {
  const s = lookupModel(id);
  if (!s) throw new Error(`${id} missing from the catalog`);
  return s;
}

describe('the design document table on a 16 GiB RTX 4070 Ti SUPER (gpu_memory_utilization 0.9)', () => {
  it('Phi-2 works, as fp16 and as its GPTQ checkpoint', () => {
    expect(fit('microsoft/phi-2').verdict).toBe('fits');
    expect(fit('TheBloke/phi-2-GPTQ').verdict).toBe('fits');
  });

  it('Mistral-7B AWQ works at the production context of 16384 (and even at its native 32768)', () => {
    const r = fit('TheBloke/Mistral-7B-Instruct-v0.2-AWQ', { maxModelLen: 16384 });
    expect(r.verdict).toBe('fits');
    expect(r.largestMaxModelLen).toBe(32768);
    expect(r.suggestedGpuMemoryUtilization).toBe(0.9);
    // design: "VRAM usage: ~4GB (leaves ~11GB for KV cache)"
    expect(r.weightBytesOnGpu / GiB).toBeCloseTo(3.87, 1);
    expect((r.budgetBytes - r.weightBytesOnGpu) / GiB).toBeGreaterThan(10);
  });

  it('Llama-3-8B AWQ works at its native 8192', () => {
    const r = fit('casperhansen/llama-3-8b-instruct-awq');
    expect(r.maxModelLen).toBe(8192);
    expect(r.verdict).toBe('fits');
  });

  it('Qwen2.5-14B AWQ is tight: the native 32768 does not fit, 8192 does', () => {
    const native = fit('Qwen/Qwen2.5-14B-Instruct-AWQ');
    expect(native.maxModelLen).toBe(32768);
    expect(native.verdict).toBe('does-not-fit');
    const reduced = fit('Qwen/Qwen2.5-14B-Instruct-AWQ', { maxModelLen: 8192 });
    expect(reduced.verdict).toBe('tight');
    expect(reduced.explanation.join('\n')).toMatch(/reduced context/);
    expect(native.largestMaxModelLen).not.toBeNull();
    expect(native.largestMaxModelLen as number).toBeGreaterThanOrEqual(8192);
    expect(native.largestMaxModelLen as number).toBeLessThan(32768);
  });

  it('Mixtral-8x7B is out of memory, 16-bit and AWQ, at any context', () => {
    for (const r of [fit('mistralai/Mixtral-8x7B-Instruct-v0.1'), fit('TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ'), fit('TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ', { maxModelLen: 2048 })]) {
      expect(r.verdict).toBe('does-not-fit');
      expect(r.largestMaxModelLen).toBeNull();
    }
    // design: "~23GB" AWQ; all 46.7 B parameters at ~0.5 byte
    expect(fit('TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ').weightBytes / 1e9).toBeGreaterThan(22);
  });

  it('Mixtral-8x22B is far too large, 16-bit and as a user-described AWQ checkpoint', () => {
    expect(fit('mixtral-8x22b').verdict).toBe('does-not-fit');
    const awq: ModelSpec = { ...spec('mixtral-8x22b'), id: 'someone/Mixtral-8x22B-Instruct-v0.1-AWQ', quantization: 'awq' };
    const r = fit(awq);
    expect(r.verdict).toBe('does-not-fit');
    expect(r.weightBytes / 1e9).toBeGreaterThan(65); // design: "~70GB"
  });
});

describe('weights', () => {
  it('estimates Mistral-7B AWQ within 3 % of the published 4.15 GB and uses the published size', () => {
    const estimate = estimateWeightBytes(spec('mistralai/Mistral-7B-Instruct-v0.2'), 'awq');
    expect(Math.abs(estimate / 4.15e9 - 1)).toBeLessThan(0.03);
    const r = fit('TheBloke/Mistral-7B-Instruct-v0.2-AWQ');
    expect(r.weightSource).toBe('published');
    expect(r.weightBytes).toBe(4.15e9);
  });

  it('estimates phi-2 GPTQ within 3 % of the published 1.84 GB', () => {
    expect(Math.abs(estimateWeightBytes(spec('microsoft/phi-2'), 'gptq') / 1.84e9 - 1)).toBeLessThan(0.03);
  });

  it('16-bit is 2 bytes per parameter; FP8 and 4-bit keep embeddings and lm_head in 16-bit', () => {
    const m = spec('mistralai/Mistral-7B-Instruct-v0.2');
    expect(estimateWeightBytes(m, 'bf16')).toBe(m.paramsTotal * 2);
    const embeddings = 32000 * 4096 * 2; // untied: embed_tokens + lm_head
    expect(estimateWeightBytes(m, 'fp8')).toBe(m.paramsTotal - embeddings + embeddings * 2);
    // tied embeddings are stored once
    const q = spec('Qwen/Qwen2.5-0.5B-Instruct');
    expect(estimateWeightBytes(q, 'fp8')).toBe(q.paramsTotal - 151936 * 896 + 151936 * 896 * 2);
  });
});

describe('KV cache arithmetic', () => {
  it('matches 2 × layers × KV heads × head_dim × bytes by hand', () => {
    // Mistral-7B: 2 × 32 × 8 × 128 × 2 = 131072 B = 128 KiB per token
    expect(kvBytesPerToken(spec('mistral-7b'), 'auto')).toBe(131072);
    // Qwen2.5-14B: 2 × 48 × 8 × 128 × 2 = 196608 B = 192 KiB; fp8 halves it
    expect(kvBytesPerToken(spec('qwen2.5-14b'), 'auto')).toBe(196608);
    expect(kvBytesPerToken(spec('qwen2.5-14b'), 'fp8')).toBe(98304);
    const r = fit('TheBloke/Mistral-7B-Instruct-v0.2-AWQ', { maxModelLen: 16384 });
    expect(r.kvBytesPerToken).toBe(131072);
    expect(r.kvBytesForContext).toBe(2 * GiB);
    expect(r.explanation.join('\n')).toContain('2 × 32 layers × 8 KV heads × 128 head_dim × 2 bytes = 128 KiB per token');
  });

  it('an fp8 KV cache lets a longer context fit', () => {
    const auto = fit('Qwen/Qwen2.5-14B-Instruct-AWQ');
    const fp8 = fit('Qwen/Qwen2.5-14B-Instruct-AWQ', { kvCacheDtype: 'fp8' });
    expect(fp8.kvBytesForContext).toBe(auto.kvBytesForContext / 2);
    expect(fp8.largestMaxModelLen as number).toBeGreaterThan(auto.largestMaxModelLen as number);
  });
});

describe('mixtures of experts', () => {
  it('counts all experts and says so', () => {
    const r = fit('TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ');
    expect(r.moe).toEqual({ experts: 8, activePerToken: 2, paramsTotal: 46_702_792_704, paramsActive: 12_879_925_248 });
    const text = r.explanation.join('\n');
    expect(text).toMatch(/loads all 8 experts \(46\.7 B parameters\)/);
    expect(text).toMatch(/only 2 run per token \(12\.9 B active\)/);
    expect(text).toMatch(/memory follows the total/);
  });
});

describe('refusals', () => {
  it('refuses AWQ below compute capability 7.5 with the reason', () => {
    const r = assessFit({ model: 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', gpu: V100_16G, maxModelLen: 8192 });
    expect(r.verdict).toBe('unsupported');
    expect(r.reasons.join(' ')).toMatch(/AWQ needs compute capability >= 7\.5; this GPU has 7\.0/);
    // GPTQ runs there
    expect(assessFit({ model: 'TheBloke/Mistral-7B-Instruct-v0.2-GPTQ', gpu: V100_16G, maxModelLen: 8192 }).verdict).toBe('fits');
  });

  it('refuses --cpu-offload-gb with quantized weights', () => {
    const r = fit('TheBloke/Mistral-7B-Instruct-v0.2-AWQ', { cpuOffloadGb: 4 });
    expect(r.verdict).toBe('unsupported');
    expect(r.reasons.join(' ')).toMatch(/cpu-offload-gb with AWQ weights is unreliable/);
  });

  it('CPU offload of 16-bit weights moves them off the GPU (embeddings stay)', () => {
    const without = fit('mistralai/Mistral-7B-Instruct-v0.2', { maxModelLen: 8192 });
    const r = fit('mistralai/Mistral-7B-Instruct-v0.2', { maxModelLen: 8192, cpuOffloadGb: 8 });
    expect(without.verdict).toBe('does-not-fit');
    expect(r.weightBytes - r.weightBytesOnGpu).toBe(8 * GiB);
    expect(r.verdict === 'fits' || r.verdict === 'tight').toBe(true);
    expect(r.explanation.join('\n')).toMatch(/CPU offload/);
  });

  it('refuses a context above max_position_embeddings, AWQ on a 16-bit repo, bf16 below cc 8.0, fp8 below cc 8.0', () => {
    expect(fit('TheBloke/Mistral-7B-Instruct-v0.2-AWQ', { maxModelLen: 65536 }).reasons.join(' ')).toMatch(/above the model's max_position_embeddings 32768/);
    expect(fit('mistralai/Mistral-7B-Instruct-v0.2', { quantization: 'awq' }).reasons.join(' ')).toMatch(/TheBloke\/Mistral-7B-Instruct-v0.2-AWQ/);
    expect(fit('TheBloke/Mistral-7B-Instruct-v0.2-AWQ', { quantization: 'gptq' }).verdict).toBe('unsupported');
    expect(assessFit({ model: 'qwen2.5-1.5b', gpu: V100_16G, quantization: 'bf16' }).verdict).toBe('unsupported');
    expect(assessFit({ model: 'qwen2.5-1.5b', gpu: { vramMiB: 15360, computeCapability: 7.5 }, quantization: 'fp8' }).verdict).toBe('unsupported');
  });

  it('casts bf16 checkpoints to fp16 below cc 8.0 like --dtype auto does', () => {
    const r = assessFit({ model: 'qwen2.5-1.5b', gpu: V100_16G, maxModelLen: 8192 });
    expect(r.quantization).toBe('fp16');
    expect(r.verdict).toBe('fits');
  });

  it('refuses a GPU description it cannot use', () => {
    expect(assessFit({ model: 'phi-2', gpu: { vramMiB: 0, computeCapability: '8.9' } }).reasons.join(' ')).toMatch(/VRAM must be a positive/);
    expect(assessFit({ model: 'phi-2', gpu: { vramMiB: 16376, computeCapability: 'Ada' } }).reasons.join(' ')).toMatch(/compute capability must look like/);
    expect(fit('phi-2', { gpuMemoryUtilization: 1.2 }).verdict).toBe('unsupported');
  });

  it('names an unknown model and how to describe it', () => {
    const r = fit('someone/Unknown-13B');
    expect(r.verdict).toBe('unsupported');
    expect(r.reasons[0]).toMatch(/not in the catalog.*model\.spec/);
  });
});

describe('other tenants on the GPU', () => {
  it('does not fit when the free VRAM is below the utilisation, and suggests what is free', () => {
    const r = fit('TheBloke/Mistral-7B-Instruct-v0.2-AWQ', { maxModelLen: 8192, otherUsedMiB: 4000 });
    expect(r.verdict).toBe('does-not-fit');
    expect(r.reasons.join(' ')).toMatch(/4000 MiB held by other processes/);
    expect(r.suggestedGpuMemoryUtilization).toBeLessThanOrEqual((16376 - 4000) / 16376);
    const retry = fit('TheBloke/Mistral-7B-Instruct-v0.2-AWQ', { maxModelLen: 8192, otherUsedMiB: 4000, gpuMemoryUtilization: r.suggestedGpuMemoryUtilization });
    expect(['fits', 'tight']).toContain(retry.verdict);
  });
});

describe('largest max_model_len', () => {
  const models = ['TheBloke/Mistral-7B-Instruct-v0.2-AWQ', 'Qwen/Qwen2.5-14B-Instruct-AWQ', 'hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', 'meta-llama/Llama-3.2-3B-Instruct', 'Qwen/Qwen2.5-7B-Instruct'];

  it.each(models)('%s: fits at the largest, not 256 tokens above, and is a multiple of 256 of at least 512', (model) => {
    const r = fit(model);
    const largest = r.largestMaxModelLen;
    if (largest === null) return expect(fit(model, { maxModelLen: 512 }).verdict).toBe('does-not-fit');
    expect(largest % 256).toBe(0);
    expect(largest).toBeGreaterThanOrEqual(512);
    expect(fit(model, { maxModelLen: largest }).neededBytes).toBeLessThanOrEqual(r.budgetBytes);
    if (largest < r.nativeContext) expect(fit(model, { maxModelLen: largest + 256 }).verdict).toBe('does-not-fit');
  });

  it.each(models)('%s: never shrinks when the GPU or the utilisation grows, and every shorter context fits', (model) => {
    const s = lookupModel(model) as ModelSpec;
    const q = fit(model).quantization;
    const utilisations = [0.6, 0.7, 0.8, 0.9, 0.95];
    const vrams = [12288, 16376, 24564, 40960];
    const grid = vrams.map((vramMiB) => utilisations.map((u) => largestFittingLen(s, q, u * vramMiB * 2 ** 20, 'auto') ?? 0));
    for (let i = 0; i < vrams.length; i++) {
      for (let j = 0; j < utilisations.length; j++) {
        if (j > 0) expect(grid[i][j]).toBeGreaterThanOrEqual(grid[i][j - 1]);
        if (i > 0) expect(grid[i][j]).toBeGreaterThanOrEqual(grid[i - 1][j]);
      }
    }
    const largest = fit(model).largestMaxModelLen ?? 0;
    for (let len = 256; len <= largest; len += 4096) {
      expect(fit(model, { maxModelLen: len }).marginBytes).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('results', () => {
  it('are plain JSON (they travel in Temporal payloads)', () => {
    const r = fit('TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ');
    expect(JSON.parse(JSON.stringify(r))).toEqual(JSON.parse(JSON.stringify(r)));
    expect(JSON.stringify(r).length).toBeLessThan(8000);
  });

  it('suggest a higher utilisation when that makes the asked context fit', () => {
    // Qwen2.5-14B AWQ at 12288 tokens: tight at 0.95, not at 0.8
    const r = fit('Qwen/Qwen2.5-14B-Instruct-AWQ', { maxModelLen: 12288, gpuMemoryUtilization: 0.8 });
    expect(r.verdict).toBe('does-not-fit');
    expect(r.suggestedGpuMemoryUtilization).toBe(0.95);
    expect(fit('Qwen/Qwen2.5-14B-Instruct-AWQ', { maxModelLen: 12288, gpuMemoryUtilization: 0.95 }).verdict).toBe('tight');
  });
});
