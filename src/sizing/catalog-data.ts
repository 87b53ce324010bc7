import type { ModelSpec } from './types';

/*
 * Architecture facts per model. Sources:
 *  [§5]   ../shared/reference/proxmox-gpu-vllm.md §5 (VRAM sizing table and its source list)
 *  [cfg]  HF config.json of the repo named on the entry (hidden_size, num_hidden_layers,
 *         num_attention_heads, num_key_value_heads, head_dim or hidden/heads, intermediate_size,
 *         vocab_size, tie_word_embeddings, max_position_embeddings, torch_dtype, num_local_experts,
 *         num_experts_per_tok)
 *  [shape] parameter count summed from the [cfg] tensor shapes (embeddings, attention, MLP, norms,
 *         biases); test/unit/sizing-catalog.test.ts re-derives it and checks it within 1 %.
 * Published checkpoint sizes are the "Size" column of the publisher's README (only two are quoted
 * in [§5]); other checkpoints carry no size and the engine estimates theirs.
 */

export const CATALOG: readonly ModelSpec[] = [
  {
    id: 'microsoft/phi-2',
    aliases: ['phi-2', 'phi2'],
    // [§5] + [cfg] microsoft/phi-2: 32 layers, hidden 2560, 32 heads, 32 KV heads (MHA), head_dim 80,
    // vocab 51200, max_position_embeddings 2048, intermediate 10240 (fc1/fc2, not gated), torch_dtype float16
    layers: 32, hiddenSize: 2560, intermediateSize: 10240, attentionHeads: 32, kvHeads: 32, headDim: 80,
    vocabSize: 51200, tieWordEmbeddings: false, nativeContext: 2048, defaultDtype: 'float16',
    gatedMlp: false,
    paramsTotal: 2_779_683_840, // [shape]; [§5] "2.78 B"
    checkpoints: [
      // [§5] "TheBloke/phi-2-GPTQ main 4-bit 128g 1.84 GB"
      { repo: 'TheBloke/phi-2-GPTQ', quantization: 'gptq', sizeBytes: 1_840_000_000 },
    ],
  },
  {
    id: 'mistralai/Mistral-7B-Instruct-v0.2',
    aliases: ['mistral-7b', 'mistral-7b-instruct', 'mistral-7b-instruct-v0.2', 'mistral-community/Mistral-7B-v0.2'],
    // [§5] (edadaltocg finetune config; Azure card "32k context, rope-theta 1e6, no sliding window")
    // + [cfg]: 32 layers, dim 4096, 32 heads, 8 KV heads, head_dim 128, intermediate 14336, vocab 32000, bfloat16
    layers: 32, hiddenSize: 4096, intermediateSize: 14336, attentionHeads: 32, kvHeads: 8, headDim: 128,
    vocabSize: 32000, tieWordEmbeddings: false, nativeContext: 32768, defaultDtype: 'bfloat16',
    paramsTotal: 7_241_732_096, // [shape]; [§5] "7.24 B"
    checkpoints: [
      // [§5] README provided-files table: "| main | 4 | 128 | VMware Open Instruct | 4096 | 4.15 GB"
      { repo: 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', quantization: 'awq', sizeBytes: 4_150_000_000 },
      { repo: 'TheBloke/Mistral-7B-Instruct-v0.2-GPTQ', quantization: 'gptq' },
    ],
  },
  {
    id: 'meta-llama/Meta-Llama-3-8B-Instruct',
    aliases: ['llama-3-8b', 'llama-3-8b-instruct', 'meta-llama/Meta-Llama-3-8B'],
    // [§5] (LLM-Prof; 8192 context) + [cfg]: 32 layers, hidden 4096, 32 heads, 8 KV heads, head_dim 128,
    // intermediate 14336, vocab 128256, untied, max_position_embeddings 8192, bfloat16
    layers: 32, hiddenSize: 4096, intermediateSize: 14336, attentionHeads: 32, kvHeads: 8, headDim: 128,
    vocabSize: 128256, tieWordEmbeddings: false, nativeContext: 8192, defaultDtype: 'bfloat16',
    paramsTotal: 8_030_261_248, // [shape]; [§5] "8.03 B"
    checkpoints: [
      // AWQ 4-bit g128 of the Instruct model (AutoAWQ author's upload); size not quoted in [§5] → estimated
      { repo: 'casperhansen/llama-3-8b-instruct-awq', quantization: 'awq' },
      { repo: 'TechxGenus/Meta-Llama-3-8B-Instruct-AWQ', quantization: 'awq' },
    ],
  },
  {
    id: 'meta-llama/Llama-3.1-8B-Instruct',
    aliases: ['llama-3.1-8b', 'llama-3.1-8b-instruct', 'meta-llama/Meta-Llama-3.1-8B-Instruct'],
    // [§5] (LLM-Prof Llama-3.1 8B) + [cfg]: same shapes as Llama-3-8B, max_position_embeddings 131072 (rope llama3)
    layers: 32, hiddenSize: 4096, intermediateSize: 14336, attentionHeads: 32, kvHeads: 8, headDim: 128,
    vocabSize: 128256, tieWordEmbeddings: false, nativeContext: 131072, defaultDtype: 'bfloat16',
    paramsTotal: 8_030_261_248, // [shape]
    checkpoints: [{ repo: 'hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', quantization: 'awq' }],
  },
  {
    id: 'Qwen/Qwen2.5-14B-Instruct',
    aliases: ['qwen2.5-14b', 'qwen2.5-14b-instruct'],
    // [§5] (Qwen card: 48 layers, 40 Q / 8 KV, 32,768 context in config.json; LLM-Prof: hidden 5120,
    // vocab 152064) + [cfg]: head_dim 128, intermediate 13824, untied, bfloat16
    layers: 48, hiddenSize: 5120, intermediateSize: 13824, attentionHeads: 40, kvHeads: 8, headDim: 128,
    vocabSize: 152064, tieWordEmbeddings: false, nativeContext: 32768, defaultDtype: 'bfloat16',
    paramsTotal: 14_770_033_664, // [shape]; [§5] "14.7 B"
    checkpoints: [
      { repo: 'Qwen/Qwen2.5-14B-Instruct-AWQ', quantization: 'awq' },
      { repo: 'Qwen/Qwen2.5-14B-Instruct-GPTQ-Int4', quantization: 'gptq' },
    ],
  },
  {
    id: 'Qwen/Qwen2.5-7B-Instruct',
    aliases: ['qwen2.5-7b', 'qwen2.5-7b-instruct'],
    // [§5] (LLM-Prof: hidden 3584, 28 layers, 28 heads, 4 KV; 32768 in config) + [cfg]: head_dim 128,
    // intermediate 18944, vocab 152064, untied, bfloat16
    layers: 28, hiddenSize: 3584, intermediateSize: 18944, attentionHeads: 28, kvHeads: 4, headDim: 128,
    vocabSize: 152064, tieWordEmbeddings: false, nativeContext: 32768, defaultDtype: 'bfloat16',
    paramsTotal: 7_615_616_512, // [§5] "7,615,616,512 (HF API)"
    checkpoints: [
      { repo: 'Qwen/Qwen2.5-7B-Instruct-AWQ', quantization: 'awq' },
      { repo: 'Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4', quantization: 'gptq' },
    ],
  },
  {
    id: 'Qwen/Qwen2.5-32B-Instruct',
    aliases: ['qwen2.5-32b', 'qwen2.5-32b-instruct'],
    // [§5] (LLM-Prof: hidden 5120, 64 layers, 40 heads, 8 KV, vocab 152064; 32768 in config)
    // + [cfg]: head_dim 128, intermediate 27648, untied, bfloat16
    layers: 64, hiddenSize: 5120, intermediateSize: 27648, attentionHeads: 40, kvHeads: 8, headDim: 128,
    vocabSize: 152064, tieWordEmbeddings: false, nativeContext: 32768, defaultDtype: 'bfloat16',
    paramsTotal: 32_763_876_352, // [shape]; the card's "32.5B" quoted in [§5] rounds differently
    checkpoints: [{ repo: 'Qwen/Qwen2.5-32B-Instruct-AWQ', quantization: 'awq' }],
  },
  {
    id: 'mistralai/Mixtral-8x7B-Instruct-v0.1',
    aliases: ['mixtral-8x7b', 'mixtral-8x7b-instruct', 'mistralai/Mixtral-8x7B-v0.1'],
    // [§5] (config dump: hidden 4096, 32 layers, 32 heads, 8 KV, 32768, 8 local experts, top-2)
    // + [cfg]: head_dim 128, intermediate 14336 per expert, vocab 32000, bfloat16
    layers: 32, hiddenSize: 4096, intermediateSize: 14336, attentionHeads: 32, kvHeads: 8, headDim: 128,
    vocabSize: 32000, tieWordEmbeddings: false, nativeContext: 32768, defaultDtype: 'bfloat16',
    experts: { total: 8, activePerToken: 2 },
    paramsTotal: 46_702_792_704, // [shape]; [§5] and the design document: "46.7B"
    paramsActive: 12_879_925_248, // [shape] with 2 of 8 experts; [§5] "~12.9 B active"
    checkpoints: [
      { repo: 'TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ', quantization: 'awq' },
      { repo: 'TheBloke/Mixtral-8x7B-Instruct-v0.1-GPTQ', quantization: 'gptq' },
    ],
  },
  {
    id: 'mistralai/Mixtral-8x22B-Instruct-v0.1',
    aliases: ['mixtral-8x22b', 'mixtral-8x22b-instruct', 'mistralai/Mixtral-8x22B-v0.1'],
    // [§5] (Megatron guide: hidden 6144, 48 heads, 56 layers, 8 KV, vocab 32768; bud-connect: 141 B total,
    // 39 B active, 64K) + [cfg]: head_dim 128, intermediate 16384 per expert, 8 experts top-2,
    // max_position_embeddings 65536, bfloat16 (the base v0.1 has vocab 32000; 0.2 % fewer parameters)
    layers: 56, hiddenSize: 6144, intermediateSize: 16384, attentionHeads: 48, kvHeads: 8, headDim: 128,
    vocabSize: 32768, tieWordEmbeddings: false, nativeContext: 65536, defaultDtype: 'bfloat16',
    experts: { total: 8, activePerToken: 2 },
    paramsTotal: 140_630_071_296, // [shape]; [§5] "141 B"
    paramsActive: 39_161_468_928, // [shape] with 2 of 8 experts; [§5] "39 B active"
  },
  {
    id: 'meta-llama/Llama-3.1-70B-Instruct',
    aliases: ['llama-3.1-70b', 'llama-3.1-70b-instruct', 'meta-llama/Meta-Llama-3.1-70B-Instruct'],
    // [§5] (oumi recipe README: hidden 8192, 80 layers, 64 heads, 8 KV, 131,072) + [cfg]: head_dim 128,
    // intermediate 28672, vocab 128256, untied, bfloat16
    layers: 80, hiddenSize: 8192, intermediateSize: 28672, attentionHeads: 64, kvHeads: 8, headDim: 128,
    vocabSize: 128256, tieWordEmbeddings: false, nativeContext: 131072, defaultDtype: 'bfloat16',
    paramsTotal: 70_553_706_496, // [shape]; [§5] "70.6 B"
    checkpoints: [{ repo: 'hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4', quantization: 'awq' }],
  },
  {
    id: 'Qwen/Qwen2.5-0.5B-Instruct',
    aliases: ['qwen2.5-0.5b', 'qwen2.5-0.5b-instruct'],
    // [cfg] Qwen/Qwen2.5-0.5B-Instruct: hidden 896, 24 layers, 14 heads, 2 KV, head_dim 64,
    // intermediate 4864, vocab 151936, tied embeddings, 32768, bfloat16 (card: "0.49B")
    layers: 24, hiddenSize: 896, intermediateSize: 4864, attentionHeads: 14, kvHeads: 2, headDim: 64,
    vocabSize: 151936, tieWordEmbeddings: true, nativeContext: 32768, defaultDtype: 'bfloat16',
    paramsTotal: 494_032_768, // [shape]
    checkpoints: [{ repo: 'Qwen/Qwen2.5-0.5B-Instruct-AWQ', quantization: 'awq' }],
  },
  {
    id: 'Qwen/Qwen2.5-1.5B-Instruct',
    aliases: ['qwen2.5-1.5b', 'qwen2.5-1.5b-instruct'],
    // [cfg] Qwen/Qwen2.5-1.5B-Instruct: hidden 1536, 28 layers, 12 heads, 2 KV, head_dim 128,
    // intermediate 8960, vocab 151936, tied, 32768, bfloat16 (card: "1.54B")
    layers: 28, hiddenSize: 1536, intermediateSize: 8960, attentionHeads: 12, kvHeads: 2, headDim: 128,
    vocabSize: 151936, tieWordEmbeddings: true, nativeContext: 32768, defaultDtype: 'bfloat16',
    paramsTotal: 1_543_714_304, // [shape]
    checkpoints: [{ repo: 'Qwen/Qwen2.5-1.5B-Instruct-AWQ', quantization: 'awq' }],
  },
  {
    id: 'Qwen/Qwen2.5-3B-Instruct',
    aliases: ['qwen2.5-3b', 'qwen2.5-3b-instruct'],
    // [cfg] Qwen/Qwen2.5-3B-Instruct: hidden 2048, 36 layers, 16 heads, 2 KV, head_dim 128,
    // intermediate 11008, vocab 151936, tied, 32768, bfloat16 (card: "3.09B")
    layers: 36, hiddenSize: 2048, intermediateSize: 11008, attentionHeads: 16, kvHeads: 2, headDim: 128,
    vocabSize: 151936, tieWordEmbeddings: true, nativeContext: 32768, defaultDtype: 'bfloat16',
    paramsTotal: 3_085_938_688, // [shape]
    checkpoints: [{ repo: 'Qwen/Qwen2.5-3B-Instruct-AWQ', quantization: 'awq' }],
  },
  {
    id: 'meta-llama/Llama-3.2-1B-Instruct',
    aliases: ['llama-3.2-1b', 'llama-3.2-1b-instruct', 'meta-llama/Llama-3.2-1B'],
    // [cfg] meta-llama/Llama-3.2-1B-Instruct: hidden 2048, 16 layers, 32 heads, 8 KV, head_dim 64,
    // intermediate 8192, vocab 128256, tie_word_embeddings true, 131072, bfloat16
    layers: 16, hiddenSize: 2048, intermediateSize: 8192, attentionHeads: 32, kvHeads: 8, headDim: 64,
    vocabSize: 128256, tieWordEmbeddings: true, nativeContext: 131072, defaultDtype: 'bfloat16',
    paramsTotal: 1_235_814_400, // [shape]
  },
  {
    id: 'meta-llama/Llama-3.2-3B-Instruct',
    aliases: ['llama-3.2-3b', 'llama-3.2-3b-instruct', 'meta-llama/Llama-3.2-3B'],
    // [cfg] meta-llama/Llama-3.2-3B-Instruct: hidden 3072, 28 layers, 24 heads, 8 KV, head_dim 128,
    // intermediate 8192, vocab 128256, tied, 131072, bfloat16
    layers: 28, hiddenSize: 3072, intermediateSize: 8192, attentionHeads: 24, kvHeads: 8, headDim: 128,
    vocabSize: 128256, tieWordEmbeddings: true, nativeContext: 131072, defaultDtype: 'bfloat16',
    paramsTotal: 3_212_749_824, // [shape]
  },
  {
    id: 'microsoft/Phi-3-mini-4k-instruct',
    aliases: ['phi-3-mini', 'phi-3-mini-4k', 'phi-3-mini-4k-instruct'],
    // [cfg] microsoft/Phi-3-mini-4k-instruct: hidden 3072, 32 layers, 32 heads, 32 KV (MHA), head_dim 96,
    // intermediate 8192 (fused gate_up), vocab 32064, untied, max_position_embeddings 4096, bfloat16
    layers: 32, hiddenSize: 3072, intermediateSize: 8192, attentionHeads: 32, kvHeads: 32, headDim: 96,
    vocabSize: 32064, tieWordEmbeddings: false, nativeContext: 4096, defaultDtype: 'bfloat16',
    paramsTotal: 3_821_079_552, // [shape]; card: "3.8B"
  },
];
