import { assessFit, lookupModel, renderAlternatives, renderSizingTable, sizingSummary, suggestAlternatives } from '../../src/sizing';
import type { FitInput } from '../../src/sizing';

const GPU = { vramMiB: 16376, computeCapability: '8.9', name: 'NVIDIA GeForce RTX 4070 Ti SUPER' };
const usable = (v: string): boolean => v === 'fits' || v === 'tight';

describe('suggestAlternatives', () => {
  it('offers nothing when the configuration already fits', () => {
    expect(suggestAlternatives({ model: 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', gpu: GPU, maxModelLen: 16384 })).toEqual([]);
  });

  it('for Mixtral-8x7B offers listed models that fit, most parameters first', () => {
    const alts = suggestAlternatives({ model: 'TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ', gpu: GPU });
    const models = alts.filter((a) => a.kind === 'model');
    expect(models.length).toBeGreaterThan(0);
    expect(alts.every((a) => usable(a.result.verdict))).toBe(true);
    expect(alts.some((a) => /mixtral/i.test(a.result.modelId))).toBe(false);
    const params = models.map((a) => lookupModel(a.result.modelId)?.paramsTotal ?? 0);
    expect([...params].sort((a, b) => b - a)).toEqual(params);
    expect(models[0].result.modelId).toBe('Qwen/Qwen2.5-14B-Instruct-AWQ');
  });

  it('for Qwen2.5-14B AWQ at 32768 offers the shorter context first, and it fits', () => {
    const input: FitInput = { model: 'Qwen/Qwen2.5-14B-Instruct-AWQ', gpu: GPU };
    const [first] = suggestAlternatives(input);
    expect(first.kind).toBe('shorter-context');
    expect(first.change.maxModelLen).toBe(assessFit(input).largestMaxModelLen);
    expect(usable(assessFit({ ...input, ...first.change }).verdict)).toBe(true);
  });

  it('for a 16-bit 7B model offers its quantized checkpoints', () => {
    const alts = suggestAlternatives({ model: 'Qwen/Qwen2.5-7B-Instruct', gpu: GPU });
    const quant = alts.filter((a) => a.kind === 'quantization').map((a) => a.change.model);
    expect(quant).toContain('Qwen/Qwen2.5-7B-Instruct-AWQ');
  });

  it('for AWQ on a V100 offers the GPTQ checkpoint of the same model', () => {
    const alts = suggestAlternatives({ model: 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', gpu: { vramMiB: 16160, computeCapability: '7.0' }, maxModelLen: 8192 });
    expect(alts[0]).toMatchObject({ kind: 'quantization', change: { model: 'TheBloke/Mistral-7B-Instruct-v0.2-GPTQ' } });
    expect(alts.every((a) => a.result.quantization !== 'awq')).toBe(true);
  });

  it('for AWQ with CPU offload offers the same model without offload', () => {
    const alts = suggestAlternatives({ model: 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', gpu: GPU, cpuOffloadGb: 4, maxModelLen: 16384 });
    expect(alts[0]).toMatchObject({ kind: 'no-cpu-offload', change: { cpuOffloadGb: 0, maxModelLen: 16384 } });
  });

  it('when another process holds VRAM, offers the utilisation that is free', () => {
    const alts = suggestAlternatives({ model: 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', gpu: GPU, maxModelLen: 8192, otherUsedMiB: 4000 });
    expect(alts[0].kind).toBe('utilization');
    expect(alts[0].change.gpuMemoryUtilization).toBeLessThanOrEqual(0.75);
  });

  it('for a 16-bit model that almost fits offers CPU offload (the design\'s original plan), bounded by the container RAM', () => {
    const input: FitInput = { model: 'mistralai/Mistral-7B-Instruct-v0.2', gpu: GPU, maxModelLen: 8192, hostMemoryMiB: 98304 };
    const offload = suggestAlternatives(input).find((a) => a.kind === 'cpu-offload');
    expect(offload?.change.cpuOffloadGb).toBeGreaterThan(0);
    expect(usable(assessFit({ ...input, ...offload?.change }).verdict)).toBe(true);
    // 70B in 16-bit would need ~120 GiB of host RAM: more than the 96 GiB container has
    const big = suggestAlternatives({ model: 'meta-llama/Llama-3.1-70B-Instruct', gpu: GPU, maxModelLen: 8192, hostMemoryMiB: 98304 });
    expect(big.some((a) => a.kind === 'cpu-offload')).toBe(false);
    const r = assessFit({ model: 'meta-llama/Llama-3.1-70B-Instruct', gpu: GPU, maxModelLen: 8192, hostMemoryMiB: 98304, cpuOffloadGb: 124 });
    expect(r.verdict).toBe('does-not-fit');
    expect(r.reasons.join(' ')).toMatch(/--cpu-offload-gb 124 needs that much of the container's 98304 MiB RAM \(at most 72 GiB/);
  });

  it('offers user-described models too', () => {
    const custom = { ...(lookupModel('qwen2.5-3b') as NonNullable<ReturnType<typeof lookupModel>>), id: 'me/Tiny-3B', aliases: [], checkpoints: [] };
    const alts = suggestAlternatives({ model: 'mixtral-8x22b', gpu: GPU, customModels: [custom], maxModelLen: 8192 });
    expect(alts.map((a) => a.result.modelId)).toContain('Qwen/Qwen2.5-14B-Instruct-AWQ');
  });
});

describe('renderers', () => {
  it('renderSizingTable shows the numbers, the verdict and the reasons', () => {
    const lines = renderSizingTable(assessFit({ model: 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', gpu: GPU, maxModelLen: 16384 }));
    const text = lines.join('\n');
    expect(text).toMatch(/^Model\s+TheBloke\/Mistral-7B-Instruct-v0\.2-AWQ \(awq\)$/m);
    expect(text).toMatch(/^Weights\s+4\.15 GB = 3\.86 GiB \(published checkpoint size\)$/m);
    expect(text).toMatch(/^KV cache\s+128 KiB\/token × 16384 tokens = 2\.00 GiB/m);
    expect(text).toMatch(/^Budget\s+14\.39 GiB \(gpu_memory_utilization 0\.90\)$/m);
    expect(text).toMatch(/^Verdict\s+FITS$/m);
    expect(text).toMatch(/^Why:$/m);
    expect(lines.every((l) => !l.includes('\n'))).toBe(true);
    expect(renderSizingTable(assessFit({ model: 'mixtral-8x7b', gpu: GPU }), { explain: false }).join('\n')).not.toMatch(/Why:/);
  });

  it('renderSizingTable of an unsupported unknown model still says why', () => {
    const text = renderSizingTable(assessFit({ model: 'nobody/Nothing-7B', gpu: GPU })).join('\n');
    expect(text).toMatch(/^Verdict\s+UNSUPPORTED$/m);
    expect(text).toMatch(/not in the catalog/);
    expect(text).not.toMatch(/^Weights/m);
  });

  it('renderAlternatives numbers the options or says there are none', () => {
    const alts = suggestAlternatives({ model: 'mixtral-8x7b', gpu: GPU });
    const lines = renderAlternatives(alts);
    expect(lines).toHaveLength(alts.length);
    expect(lines[0]).toMatch(/^1\. --model \S+ --max-model-len \d+ .*: needs [\d.]+ GiB of 14\.39 GiB/);
    expect(renderAlternatives([])).toEqual(['No listed configuration fits this GPU.']);
  });

  it('sizingSummary is one short line', () => {
    const s = sizingSummary(assessFit({ model: 'Qwen/Qwen2.5-14B-Instruct-AWQ', gpu: GPU, maxModelLen: 8192 }));
    expect(s).toMatch(/^Qwen2\.5-14B-Instruct-AWQ \(awq\): tight: needs [\d.]+ GiB of 14\.39 GiB at max_model_len 8192/);
    expect(s).not.toContain('\n');
    expect(s.length).toBeLessThan(200);
    expect(sizingSummary(assessFit({ model: 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', gpu: { vramMiB: 16160, computeCapability: 7 } }))).toMatch(/unsupported: AWQ needs compute capability/);
  });
});
