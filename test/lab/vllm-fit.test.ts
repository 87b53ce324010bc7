import { planStartup, type VllmArgs } from '../../src/lab/vllm';

const args = (model: string, maxModelLen?: number, more: Partial<VllmArgs> = {}): VllmArgs => ({ model, servedName: 'm', gpuMemoryUtilization: 0.9, port: 8000, cpuOffloadGb: 0, kvCacheDtype: 'auto', ...(maxModelLen ? { maxModelLen } : {}), ...more });
const outcome = (model: string, maxLen?: number, more: Partial<VllmArgs> = {}): string => {
  const p = planStartup(args(model, maxLen, more), false);
  const err = p.lines[p.lines.indexOf('Traceback (most recent call last):') + 1] ?? '';
  return p.ok ? 'ok' : err.split(':')[0] ?? '';
};

describe('vLLM startup outcome on the 16 GiB card', () => {
  it('follows the models\' real memory needs', () => {
    expect(outcome('TheBloke/Mistral-7B-Instruct-v0.2-AWQ', 16384)).toBe('ok');
    expect(outcome('TheBloke/Mistral-7B-Instruct-v0.2-AWQ')).toBe('ok'); // 32768 fits with AWQ weights
    expect(outcome('Qwen/Qwen2.5-14B-Instruct-AWQ', 8192)).toBe('ok');
    expect(outcome('hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4')).toBe('ValueError'); // 131072 tokens of KV do not fit
    expect(outcome('hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', 16384)).toBe('ok');
    expect(outcome('mistralai/Mixtral-8x7B-Instruct-v0.1')).toBe('torch.OutOfMemoryError');
    expect(outcome('TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ')).toBe('torch.OutOfMemoryError');
    expect(outcome('meta-llama/Meta-Llama-3-8B-Instruct')).toBe('ValueError'); // 16 GB of bf16 weights leave no KV cache
    expect(outcome('microsoft/phi-2', 4096)).toBe('ValueError'); // beyond max_position_embeddings 2048
    expect(outcome('nobody/no-such-model')).toBe('OSError');
  });

  it('an FP8 KV cache holds twice the tokens; --quantization fp8 halves 16-bit weights and refuses a quantized checkpoint', () => {
    expect(outcome('hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', 65536)).toBe('ValueError');
    expect(outcome('hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', 65536, { kvCacheDtype: 'fp8' })).toBe('ok');
    expect(planStartup(args('hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', 8192, { kvCacheDtype: 'fp8' }), false).lines.some((l) => l.includes('Using fp8 data type to store kv cache'))).toBe(true);
    expect(outcome('meta-llama/Meta-Llama-3-8B-Instruct', 8192)).toBe('ValueError');
    expect(outcome('meta-llama/Meta-Llama-3-8B-Instruct', 8192, { quantization: 'fp8' })).toBe('ok');
    const mismatch = planStartup(args('TheBloke/Mistral-7B-Instruct-v0.2-AWQ', 8192, { quantization: 'fp8' }), false);
    expect(mismatch.lines[mismatch.lines.length - 1]).toBe('ValueError: Quantization method specified in the model config (awq) does not match the quantization method specified in the `quantization` argument (fp8).');
    expect(planStartup(args('microsoft/phi-2', 2048, { kvCacheDtype: 'int8' }), false).lines).toEqual(["api_server.py: error: argument --kv-cache-dtype: invalid choice: 'int8' (choose from 'auto', 'fp8', 'fp8_e5m2', 'fp8_e4m3')"]);
  });

  it('vllm-oom yields the KV-cache text even for a fitting model', () => {
    const p = planStartup(args('TheBloke/Mistral-7B-Instruct-v0.2-AWQ', 8192), true);
    expect(p.ok).toBe(false);
    expect(p.lines[p.lines.length - 1]).toBe('ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.');
  });
});
