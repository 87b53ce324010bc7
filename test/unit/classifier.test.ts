import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { classifyVllmLog, primaryVllmFailure } from '../../src/sizing';
import type { VllmFailureCause } from '../../src/sizing';

const DIR = join(__dirname, '../fixtures/vllm-logs');
const read = (name: string): string => readFileSync(join(DIR, name), 'utf8');

const EXPECTED: Record<string, VllmFailureCause | null> = {
  'no-cache-blocks-v06.log': 'no-cache-blocks',
  'no-cache-blocks-v1.log': 'no-cache-blocks',
  'kv-cache-too-small-v06.log': 'kv-cache-too-small',
  'kv-cache-too-small-v1-estimate.log': 'kv-cache-too-small',
  'kv-cache-too-small-v1-models.log': 'kv-cache-too-small',
  'insufficient-free-memory.log': 'insufficient-free-memory',
  'cuda-oom.log': 'cuda-oom',
  'cuda-oom-legacy.log': 'cuda-oom',
  'awq-unsupported.log': 'awq-unsupported',
  'driver-too-old.log': 'driver-too-old',
  'driver-too-old-container-cli.log': 'driver-too-old',
  'nvml-mismatch.log': 'nvml-mismatch',
  'container-toolkit-device-rules.log': 'container-toolkit',
  'container-toolkit-libnvidia-ml.log': 'container-toolkit',
  'healthy-v08.log': null,
};

describe('classifyVllmLog over the fixtures', () => {
  it('has an expectation for every fixture file', () => {
    expect(readdirSync(DIR).filter((f) => f.endsWith('.log')).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))('%s → %s', (file, cause) => {
    const text = read(file);
    const found = classifyVllmLog(text);
    if (cause === null) {
      expect(found).toEqual([]);
      expect(primaryVllmFailure(text)).toBeUndefined();
      return;
    }
    expect(found).toHaveLength(1);
    const d = found[0];
    expect(d.cause).toBe(cause);
    expect(d.explanation.length).toBeGreaterThan(20);
    expect(d.remedy.length).toBeGreaterThan(20);
    expect(text).toContain(d.evidence.replace(/…$/, ''));
    expect(d.retryable).toBe(cause === 'kv-cache-too-small');
  });
});

describe('kv-cache-too-small', () => {
  it('parses the estimated maximum model length of the current wording', () => {
    const d = primaryVllmFailure(read('kv-cache-too-small-v1-estimate.log'));
    expect(d).toMatchObject({ cause: 'kv-cache-too-small', estimatedMaxLen: 13152, suggestedMaxModelLen: 13056, retryable: true });
    expect(d?.explanation).toMatch(/32768 tokens needs 6 GiB of KV cache but only 2\.41 GiB/);
    expect(d?.remedy).toMatch(/--max-model-len to 13056/);
  });

  it('takes the V0 KV cache token count as the estimate', () => {
    expect(primaryVllmFailure(read('kv-cache-too-small-v06.log'))).toMatchObject({ estimatedMaxLen: 13104, suggestedMaxModelLen: 13056 });
  });

  it('derives the estimate from the GiB figures when the message has none', () => {
    // 32768 × 2.41 / 6.00 = 13161.8
    expect(primaryVllmFailure(read('kv-cache-too-small-v1-models.log'))).toMatchObject({ estimatedMaxLen: 13161, suggestedMaxModelLen: 13056 });
  });

  it('does not suggest a context under 512 tokens: it asks for less model instead', () => {
    const line = 'ValueError: To serve at least one request with the model\'s max seq len (131072), (16.00 GiB KV cache is needed, which is larger than the available KV cache memory (0.02 GiB). Based on the available memory, the estimated maximum model length is 160. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.';
    const d = primaryVllmFailure(line);
    expect(d).toMatchObject({ estimatedMaxLen: 160, retryable: false });
    expect(d?.suggestedMaxModelLen).toBeUndefined();
    expect(d?.remedy).toMatch(/smaller\/quantized model/);
    expect(d?.remedy).not.toMatch(/--max-model-len/);
  });
});

describe('details parsed out of the messages', () => {
  it('free memory: names the numbers and a utilisation that fits', () => {
    const d = primaryVllmFailure(read('insufficient-free-memory.log'));
    expect(d?.explanation).toMatch(/only 9\.87 of 15\.99 GiB was free.*0\.9 asks for 14\.39 GiB/);
    expect(d?.remedy).toMatch(/model\.gpuMemoryUtilization to 0\.60 or less/);
  });

  it('AWQ: names both capabilities', () => {
    expect(primaryVllmFailure(read('awq-unsupported.log'))?.explanation).toBe('AWQ kernels need compute capability 7.5 but this GPU has 7.0.');
    expect(primaryVllmFailure(read('awq-unsupported.log'))?.remedy).toMatch(/GPTQ/);
  });

  it('driver: turns the found version into a CUDA version, or names the image requirement', () => {
    expect(primaryVllmFailure(read('driver-too-old.log'))?.explanation).toMatch(/driver supports CUDA 11\.4/);
    expect(primaryVllmFailure(read('driver-too-old-container-cli.log'))?.explanation).toMatch(/requires cuda>=12\.4/);
    expect(primaryVllmFailure('RuntimeError: CUDA driver version is insufficient for CUDA runtime version')?.cause).toBe('driver-too-old');
  });

  it('CUDA OOM: names the failed allocation', () => {
    expect(primaryVllmFailure(read('cuda-oom.log'))?.explanation).toMatch(/allocating 224\.00 MiB/);
    expect(primaryVllmFailure('RuntimeError: CUDA out of memory')?.cause).toBe('cuda-oom');
  });
});

describe('container toolkit', () => {
  it('tells the cgroup device-rule failure from missing libraries and a missing runtime', () => {
    expect(primaryVllmFailure(read('container-toolkit-device-rules.log'))?.remedy).toMatch(/no-cgroups = true/);
    expect(primaryVllmFailure(read('container-toolkit-libnvidia-ml.log'))?.remedy).toMatch(/user-space driver/);
    const d = primaryVllmFailure('docker: Error response from daemon: could not select device driver "nvidia" with capabilities: [[gpu]].');
    expect(d?.cause).toBe('container-toolkit');
    expect(d?.remedy).toMatch(/nvidia-ctk runtime configure/);
  });
});

describe('several causes in one log', () => {
  it('puts the environment fault first, then the memory symptom', () => {
    const text = `${read('cuda-oom.log')}\n${read('nvml-mismatch.log')}`;
    expect(classifyVllmLog(text).map((d) => d.cause)).toEqual(['nvml-mismatch', 'cuda-oom']);
    expect(primaryVllmFailure(text)?.cause).toBe('nvml-mismatch');
  });

  it('prefers the KV-cache diagnosis (retryable) over a trailing CUDA OOM', () => {
    const text = `${read('kv-cache-too-small-v1-estimate.log')}\ntorch.OutOfMemoryError: CUDA out of memory.`;
    expect(primaryVllmFailure(text)?.cause).toBe('kv-cache-too-small');
  });

  it('keeps evidence short even for huge lines', () => {
    const d = primaryVllmFailure(`ValueError: No available memory for the cache blocks. ${'x'.repeat(5000)}`);
    expect(d?.evidence.length).toBeLessThanOrEqual(300);
  });
});
