import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CATALOG, catalogIds, findFamily, kvBytesPerToken, lookupModel, validateModelSpec } from '../../src/sizing';
import type { ModelSpec } from '../../src/sizing';

/** Parameter count re-derived from the config.json shapes, independently of the catalog's number. */
function paramsFromShapes(s: ModelSpec): number {
  const q = s.attentionHeads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const attention = s.hiddenSize * q + 2 * s.hiddenSize * kv + q * s.hiddenSize;
  const mlp = (s.gatedMlp === false ? 2 : 3) * s.hiddenSize * s.intermediateSize;
  const experts = s.experts?.total ?? 1;
  const router = s.experts ? s.hiddenSize * s.experts.total : 0;
  const perLayer = attention + experts * mlp + router + 2 * s.hiddenSize;
  return s.vocabSize * s.hiddenSize * (s.tieWordEmbeddings ? 1 : 2) + s.layers * perLayer + s.hiddenSize;
}

describe('catalog', () => {
  it('holds the design document models and the extra ones the issue asks for', () => {
    const required = [
      'microsoft/phi-2', 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', 'mistralai/Mistral-7B-Instruct-v0.2',
      'meta-llama/Meta-Llama-3-8B-Instruct', 'casperhansen/llama-3-8b-instruct-awq', 'Qwen/Qwen2.5-14B-Instruct',
      'Qwen/Qwen2.5-14B-Instruct-AWQ', 'mistralai/Mixtral-8x7B-Instruct-v0.1', 'TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ',
      'mistralai/Mixtral-8x22B-Instruct-v0.1', 'Qwen/Qwen2.5-7B-Instruct', 'Qwen/Qwen2.5-32B-Instruct',
      'meta-llama/Llama-3.1-70B-Instruct', 'Qwen/Qwen2.5-0.5B-Instruct', 'Qwen/Qwen2.5-1.5B-Instruct',
      'Qwen/Qwen2.5-3B-Instruct', 'meta-llama/Llama-3.2-1B-Instruct', 'meta-llama/Llama-3.2-3B-Instruct',
      'microsoft/Phi-3-mini-4k-instruct',
    ];
    const ids = catalogIds();
    for (const id of required) expect(ids).toContain(id);
  });

  it.each(CATALOG.map((s) => [s.id, s] as const))('%s is a valid spec whose parameter count matches its shapes within 1 %', (_id, s) => {
    expect(validateModelSpec(s)).toEqual([]);
    expect(Math.abs(paramsFromShapes(s) / s.paramsTotal - 1)).toBeLessThan(0.01);
    if (s.paramsActive !== undefined) expect(s.paramsActive).toBeLessThan(s.paramsTotal);
  });

  it('gives the KV bytes per token of the reference table (proxmox-gpu-vllm.md §5, fp16 column)', () => {
    const kib: [string, number][] = [
      ['microsoft/phi-2', 320], ['mistralai/Mistral-7B-Instruct-v0.2', 128], ['meta-llama/Meta-Llama-3-8B-Instruct', 128],
      ['Qwen/Qwen2.5-7B-Instruct', 56], ['Qwen/Qwen2.5-14B-Instruct', 192], ['Qwen/Qwen2.5-32B-Instruct', 256],
      ['mistralai/Mixtral-8x7B-Instruct-v0.1', 128], ['mistralai/Mixtral-8x22B-Instruct-v0.1', 224],
      ['meta-llama/Llama-3.1-70B-Instruct', 320],
    ];
    for (const [id, expected] of kib) expect([id, kvBytesPerToken(lookupModel(id) as ModelSpec, 'auto') / 1024]).toEqual([id, expected]);
  });

  it('every entry names its sources in a comment', () => {
    const text = readFileSync(join(__dirname, '../../src/sizing/catalog-data.ts'), 'utf8');
    const blocks = text.split(/\n  \{\n/).slice(1);
    expect(blocks).toHaveLength(CATALOG.length);
    for (const block of blocks) {
      expect(block).toMatch(/\/\/ .*\[(§5|cfg)\]/);
      expect(block).toMatch(/paramsTotal: [\d_]+, \/\/ \[(shape|§5)\]/);
    }
  });
});

describe('lookupModel', () => {
  it('finds repo ids case-insensitively, aliases and hub URLs', () => {
    expect(lookupModel('thebloke/mistral-7b-instruct-v0.2-awq')?.id).toBe('TheBloke/Mistral-7B-Instruct-v0.2-AWQ');
    expect(lookupModel('mixtral-8x7b')?.id).toBe('mistralai/Mixtral-8x7B-Instruct-v0.1');
    expect(lookupModel('https://huggingface.co/Qwen/Qwen2.5-14B-Instruct/')?.id).toBe('Qwen/Qwen2.5-14B-Instruct');
    expect(lookupModel('nobody/nothing')).toBeUndefined();
  });

  it('resolves a quantized checkpoint to its architecture with quantization and published size', () => {
    const s = lookupModel('TheBloke/Mistral-7B-Instruct-v0.2-AWQ') as ModelSpec;
    expect(s).toMatchObject({ quantization: 'awq', weightBytes: 4_150_000_000, layers: 32, kvHeads: 8, nativeContext: 32768 });
    expect(s.checkpoints).toBeUndefined();
    expect(findFamily('TheBloke/Mistral-7B-Instruct-v0.2-AWQ')?.id).toBe('mistralai/Mistral-7B-Instruct-v0.2');
  });

  it('prefers a spec from the config over the catalog', () => {
    const custom: ModelSpec = { ...(lookupModel('mistral-7b') as ModelSpec), id: 'me/My-Mistral-AWQ', quantization: 'awq', aliases: ['mine'] };
    expect(lookupModel('mine', [custom])?.id).toBe('me/My-Mistral-AWQ');
    expect(lookupModel('me/my-mistral-awq', [custom])?.quantization).toBe('awq');
  });

  it('returns copies: callers cannot corrupt the catalog', () => {
    const s = lookupModel('phi-2') as ModelSpec;
    s.layers = 1;
    expect(lookupModel('phi-2')?.layers).toBe(32);
  });
});

describe('validateModelSpec', () => {
  const good = lookupModel('mistral-7b') as ModelSpec;

  it('names each problem of a user-described model', () => {
    expect(validateModelSpec(null)).toEqual(['model spec must be an object']);
    expect(validateModelSpec({ ...good, id: 'no-owner' }).join('\n')).toMatch(/owner\/name/);
    expect(validateModelSpec({ ...good, kvHeads: 5 }).join('\n')).toMatch(/multiple of kvHeads/);
    expect(validateModelSpec({ ...good, kvHeads: 64 }).join('\n')).toMatch(/cannot exceed attentionHeads/);
    expect(validateModelSpec({ ...good, paramsTotal: 7 }).join('\n')).toMatch(/not billions/);
    expect(validateModelSpec({ ...good, layers: 0 }).join('\n')).toMatch(/layers must be a positive integer/);
    expect(validateModelSpec({ ...good, defaultDtype: 'float32' }).join('\n')).toMatch(/defaultDtype/);
    expect(validateModelSpec({ ...good, quantization: 'int3' }).join('\n')).toMatch(/quantization must be one of/);
    expect(validateModelSpec({ ...good, experts: { total: 2, activePerToken: 4 } }).join('\n')).toMatch(/activePerToken cannot exceed/);
    expect(validateModelSpec({ ...good, paramsActive: good.paramsTotal + 1 }).join('\n')).toMatch(/paramsActive cannot exceed/);
    const { layers: _layers, ...missing } = good;
    expect(validateModelSpec(missing).join('\n')).toMatch(/layers must be a positive integer \(got undefined\)/);
  });
});

describe('src/sizing stays usable from workflow code', () => {
  it('imports only its own files and uses no clock, randomness or process state', () => {
    const dir = join(__dirname, '../../src/sizing');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(join(dir, file), 'utf8');
      for (const m of text.matchAll(/from '([^']+)'/g)) expect([file, m[1]]).toEqual([file, expect.stringMatching(/^\.\//)]);
      expect([file, /\b(Date\.now|new Date|Math\.random|process\.|require\()/.test(text)]).toEqual([file, false]);
    }
  });
});
