/**
 * The vLLM OpenAI server behind a `vllm/vllm-openai` container: startup outcome from the model's real
 * memory needs on the 16 GiB card (proxmox-gpu-vllm.md §4/§5), v0.6-style log lines, and the HTTP API
 * (`/health`, `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/version`) with Bearer auth.
 */
import { randomBytes } from 'node:crypto';
import type { DockerContainer } from './state';

interface ModelSpec { weightsGiB: number; kvKiB: number; maxPos: number; quant?: string; arch: string; fp8GiB: number }

/** Architecture facts of the models the design and the sizing catalog name (HF config.json values). */
interface Arch { id: string; arch: string; layers: number; kvHeads: number; headDim: number; params: number; maxPos: number; vocab: number; hidden: number; tied: boolean; awq?: string[]; gptq?: string[] }

const ARCHS: Arch[] = [
  { id: 'facebook/opt-125m', arch: 'OPTForCausalLM', layers: 12, kvHeads: 12, headDim: 64, params: 125_239_296, maxPos: 2048, vocab: 50272, hidden: 768, tied: true },
  { id: 'microsoft/phi-2', arch: 'PhiForCausalLM', layers: 32, kvHeads: 32, headDim: 80, params: 2_779_683_840, maxPos: 2048, vocab: 51200, hidden: 2560, tied: false, gptq: ['TheBloke/phi-2-GPTQ'] },
  { id: 'mistralai/Mistral-7B-Instruct-v0.2', arch: 'MistralForCausalLM', layers: 32, kvHeads: 8, headDim: 128, params: 7_241_732_096, maxPos: 32768, vocab: 32000, hidden: 4096, tied: false, awq: ['TheBloke/Mistral-7B-Instruct-v0.2-AWQ'], gptq: ['TheBloke/Mistral-7B-Instruct-v0.2-GPTQ'] },
  { id: 'meta-llama/Meta-Llama-3-8B-Instruct', arch: 'LlamaForCausalLM', layers: 32, kvHeads: 8, headDim: 128, params: 8_030_261_248, maxPos: 8192, vocab: 128256, hidden: 4096, tied: false, awq: ['casperhansen/llama-3-8b-instruct-awq', 'TechxGenus/Meta-Llama-3-8B-Instruct-AWQ'] },
  { id: 'meta-llama/Llama-3.1-8B-Instruct', arch: 'LlamaForCausalLM', layers: 32, kvHeads: 8, headDim: 128, params: 8_030_261_248, maxPos: 131072, vocab: 128256, hidden: 4096, tied: false, awq: ['hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4'] },
  { id: 'Qwen/Qwen2.5-14B-Instruct', arch: 'Qwen2ForCausalLM', layers: 48, kvHeads: 8, headDim: 128, params: 14_770_033_664, maxPos: 32768, vocab: 152064, hidden: 5120, tied: false, awq: ['Qwen/Qwen2.5-14B-Instruct-AWQ'], gptq: ['Qwen/Qwen2.5-14B-Instruct-GPTQ-Int4'] },
  { id: 'Qwen/Qwen2.5-7B-Instruct', arch: 'Qwen2ForCausalLM', layers: 28, kvHeads: 4, headDim: 128, params: 7_615_616_512, maxPos: 32768, vocab: 152064, hidden: 3584, tied: false, awq: ['Qwen/Qwen2.5-7B-Instruct-AWQ'], gptq: ['Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4'] },
  { id: 'Qwen/Qwen2.5-32B-Instruct', arch: 'Qwen2ForCausalLM', layers: 64, kvHeads: 8, headDim: 128, params: 32_763_876_352, maxPos: 32768, vocab: 152064, hidden: 5120, tied: false, awq: ['Qwen/Qwen2.5-32B-Instruct-AWQ'] },
  { id: 'mistralai/Mixtral-8x7B-Instruct-v0.1', arch: 'MixtralForCausalLM', layers: 32, kvHeads: 8, headDim: 128, params: 46_702_792_704, maxPos: 32768, vocab: 32000, hidden: 4096, tied: false, awq: ['TheBloke/Mixtral-8x7B-Instruct-v0.1-AWQ'], gptq: ['TheBloke/Mixtral-8x7B-Instruct-v0.1-GPTQ'] },
  { id: 'mistralai/Mixtral-8x22B-Instruct-v0.1', arch: 'MixtralForCausalLM', layers: 56, kvHeads: 8, headDim: 128, params: 140_630_071_296, maxPos: 65536, vocab: 32768, hidden: 6144, tied: false },
  { id: 'meta-llama/Llama-3.1-70B-Instruct', arch: 'LlamaForCausalLM', layers: 80, kvHeads: 8, headDim: 128, params: 70_553_706_496, maxPos: 131072, vocab: 128256, hidden: 8192, tied: false, awq: ['hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4'] },
  { id: 'Qwen/Qwen2.5-0.5B-Instruct', arch: 'Qwen2ForCausalLM', layers: 24, kvHeads: 2, headDim: 64, params: 494_032_768, maxPos: 32768, vocab: 151936, hidden: 896, tied: true, awq: ['Qwen/Qwen2.5-0.5B-Instruct-AWQ'] },
  { id: 'Qwen/Qwen2.5-1.5B-Instruct', arch: 'Qwen2ForCausalLM', layers: 28, kvHeads: 2, headDim: 128, params: 1_543_714_304, maxPos: 32768, vocab: 151936, hidden: 1536, tied: true, awq: ['Qwen/Qwen2.5-1.5B-Instruct-AWQ'] },
  { id: 'Qwen/Qwen2.5-3B-Instruct', arch: 'Qwen2ForCausalLM', layers: 36, kvHeads: 2, headDim: 128, params: 3_085_938_688, maxPos: 32768, vocab: 151936, hidden: 2048, tied: true, awq: ['Qwen/Qwen2.5-3B-Instruct-AWQ'] },
  { id: 'meta-llama/Llama-3.2-1B-Instruct', arch: 'LlamaForCausalLM', layers: 16, kvHeads: 8, headDim: 64, params: 1_235_814_400, maxPos: 131072, vocab: 128256, hidden: 2048, tied: true },
  { id: 'meta-llama/Llama-3.2-3B-Instruct', arch: 'LlamaForCausalLM', layers: 28, kvHeads: 8, headDim: 128, params: 3_212_749_824, maxPos: 131072, vocab: 128256, hidden: 3072, tied: true },
  { id: 'microsoft/Phi-3-mini-4k-instruct', arch: 'Phi3ForCausalLM', layers: 32, kvHeads: 32, headDim: 96, params: 3_821_079_552, maxPos: 4096, vocab: 32064, hidden: 3072, tied: false },
];

const GIB = 1024 ** 3;

/** Weights as loaded (fp16/bf16: 2 bytes/param; 4-bit: linears at ~0.515 bytes/param, embeddings stay 16-bit). */
function lookupModel(model: string): ModelSpec | undefined {
  const want = model.toLowerCase();
  for (const a of ARCHS) {
    const kvKiB = (2 * a.layers * a.kvHeads * a.headDim * 2) / 1024;
    const embed = a.vocab * a.hidden * (a.tied ? 1 : 2);
    const quantGiB = ((a.params - embed) * 0.5 * 1.03 + embed * 2) / GIB;
    // --quantization fp8 on a 16-bit checkpoint: linears at one byte per parameter, embeddings stay 16-bit.
    const fp8GiB = ((a.params - embed) * 1.0 + embed * 2) / GIB;
    if (a.id.toLowerCase() === want) return { weightsGiB: (a.params * 2) / GIB, kvKiB, maxPos: a.maxPos, arch: a.arch, fp8GiB };
    if (a.awq?.some((r) => r.toLowerCase() === want)) return { weightsGiB: quantGiB, kvKiB, maxPos: a.maxPos, quant: 'awq', arch: a.arch, fp8GiB };
    if (a.gptq?.some((r) => r.toLowerCase() === want)) return { weightsGiB: quantGiB, kvKiB, maxPos: a.maxPos, quant: 'gptq', arch: a.arch, fp8GiB };
  }
  return undefined;
}

const TOTAL_GIB = 15.7; // what torch reports for a 16376 MiB card
const ACTIVATION_GIB = 1.1; // profile peak beyond the weights (approximation)

export interface VllmArgs {
  model: string;
  servedName: string;
  maxModelLen?: number;
  gpuMemoryUtilization: number;
  apiKey?: string;
  port: number;
  cpuOffloadGb: number;
  quantization?: string;
  kvCacheDtype: string;
}

/** Read the engine args from the container command (after the image's entrypoint) and env. */
export function parseVllmArgs(c: DockerContainer): VllmArgs {
  const cmd = c.command;
  const get = (name: string): string | undefined => {
    for (let i = 0; i < cmd.length; i++) {
      const a = cmd[i] ?? '';
      if (a === name) return cmd[i + 1];
      if (a.startsWith(`${name}=`)) return a.slice(name.length + 1);
    }
    return undefined;
  };
  const model = get('--model') ?? (cmd[0] && !cmd[0].startsWith('-') ? cmd[0] : 'facebook/opt-125m');
  const args: VllmArgs = {
    model,
    servedName: get('--served-model-name') ?? model,
    gpuMemoryUtilization: Number(get('--gpu-memory-utilization') ?? '0.9'),
    port: Number(get('--port') ?? '8000'),
    cpuOffloadGb: Number(get('--cpu-offload-gb') ?? '0'),
    kvCacheDtype: get('--kv-cache-dtype') ?? 'auto',
  };
  const q = get('--quantization') ?? get('-q');
  if (q !== undefined) args.quantization = q;
  const ml = get('--max-model-len');
  if (ml !== undefined) args.maxModelLen = Number(ml);
  const key = get('--api-key') ?? c.env.VLLM_API_KEY;
  if (key) args.apiKey = key;
  return args;
}

export interface StartupPlan {
  lines: string[]; // log lines in order
  ok: boolean;
  usedMiB: number;
  maxModelLen: number;
  /** Index in `lines` after which loading is slow (weights), for pacing. */
  loadAt: number;
}

function stamp(): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** Decide how the engine starts and what it logs (vLLM 0.6.x V0 engine texts). */
export function planStartup(a: VllmArgs, oomFault: boolean): StartupPlan {
  // Like vLLM 0.6.x, the `args: Namespace(...)` line carries --api-key in clear text: whoever keeps these logs
  // (errors, workflow history) must redact them, exactly as on a real host.
  const I = (src: string, msg: string): string => `INFO ${stamp()} ${src}] ${msg}`;
  const lines = [I('api_server.py:585', 'vLLM API server version 0.6.4.post1'), I('api_server.py:586', `args: Namespace(host=None, port=${a.port}, model='${a.model}', served_model_name=['${a.servedName}'], max_model_len=${a.maxModelLen ?? 'None'}, gpu_memory_utilization=${a.gpuMemoryUtilization}, kv_cache_dtype='${a.kvCacheDtype}', quantization=${a.quantization ? `'${a.quantization}'` : 'None'}, cpu_offload_gb=${a.cpuOffloadGb}, api_key=${a.apiKey ? `'${a.apiKey}'` : 'None'})`)];
  const found = lookupModel(a.model);
  const fail = (...err: string[]): StartupPlan => ({ lines: [...lines, 'Traceback (most recent call last):', ...err], ok: false, usedMiB: 0, maxModelLen: 0, loadAt: lines.length });
  if (!['auto', 'fp8', 'fp8_e4m3', 'fp8_e5m2'].includes(a.kvCacheDtype)) {
    return { lines: [`api_server.py: error: argument --kv-cache-dtype: invalid choice: '${a.kvCacheDtype}' (choose from 'auto', 'fp8', 'fp8_e5m2', 'fp8_e4m3')`], ok: false, usedMiB: 0, maxModelLen: 0, loadAt: 0 };
  }
  const spec = found && a.quantization === 'fp8' && !found.quant ? { ...found, weightsGiB: found.fp8GiB, quant: 'fp8' } : found;
  if (spec && a.kvCacheDtype !== 'auto') {
    spec.kvKiB /= 2;
    lines.push(I('config.py:653', 'Using fp8 data type to store kv cache. It reduces the GPU memory footprint and boosts the performance. Meanwhile, it may cause accuracy drop without a proper scaling factor'));
  }
  if (found?.quant && a.quantization && a.quantization !== found.quant && !(found.quant === 'awq' && a.quantization === 'awq_marlin')) {
    return fail(`ValueError: Quantization method specified in the model config (${found.quant}) does not match the quantization method specified in the \`quantization\` argument (${a.quantization}).`);
  }
  if (!spec) {
    return fail(`OSError: ${a.model} is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'`, "If this is a private repository, make sure to pass a token having permission to this repo either by logging in with `huggingface-cli login` or by passing `token=<your_token>`");
  }
  const maxLen = a.maxModelLen ?? spec.maxPos;
  if (maxLen > spec.maxPos) {
    return fail(`ValueError: User-specified max_model_len (${maxLen}) is greater than the derived max_model_len (max_position_embeddings=${spec.maxPos} or model_max_length=None in model's config.json). This may lead to incorrect model outputs or CUDA errors. To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1`);
  }
  if (spec.quant === 'awq') lines.push(I('awq_marlin.py:109', 'The model is convertible to awq_marlin during runtime. Using awq_marlin kernel.'));
  lines.push(I('llm_engine.py:249', `Initializing an LLM engine (v0.6.4.post1) with config: model='${a.model}', tokenizer='${a.model}', max_seq_len=${maxLen}, quantization=${spec.quant === 'awq' ? 'awq_marlin' : spec.quant === 'fp8' ? 'fp8' : 'None'}, served_model_name=${a.servedName}`));
  lines.push(I('selector.py:135', 'Using Flash Attention backend.'), I('model_runner.py:1072', `Starting to load model ${a.model}...`), I('weight_utils.py:243', "Using model weights format ['*.safetensors']"));
  const loadAt = lines.length;
  const weightsOnGpu = Math.max(0, spec.weightsGiB - a.cpuOffloadGb);
  if (weightsOnGpu > TOTAL_GIB - 0.3) {
    const free = Math.max(0.05, TOTAL_GIB - 0.3 - (TOTAL_GIB - 0.5));
    return fail(`torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 224.00 MiB. GPU 0 has a total capacity of ${TOTAL_GIB.toFixed(2)} GiB of which ${(free * 1024).toFixed(2)} MiB is free. Process 1 has ${(TOTAL_GIB - free).toFixed(2)} GiB memory in use. Of the allocated memory ${(TOTAL_GIB - 0.6).toFixed(2)} GiB is allocated by PyTorch, and 87.23 MiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)`);
  }
  lines.push(I('model_runner.py:1077', `Loading model weights took ${(weightsOnGpu * 1.0737).toFixed(4)} GB`));
  const budget = a.gpuMemoryUtilization * TOTAL_GIB;
  const kvGiB = budget - weightsOnGpu - ACTIVATION_GIB;
  lines.push(I('worker.py:232', `Memory profiling results: total_gpu_memory=${TOTAL_GIB.toFixed(2)}GiB initial_memory_usage=${(weightsOnGpu + 0.22).toFixed(2)}GiB peak_torch_memory=${(weightsOnGpu + ACTIVATION_GIB).toFixed(2)}GiB memory_usage_post_profile=${(weightsOnGpu + 0.25).toFixed(2)}GiB non_torch_memory=0.24GiB kv_cache_size=${Math.max(0, kvGiB).toFixed(2)}GiB gpu_memory_utilization=${a.gpuMemoryUtilization.toFixed(2)}`));
  if (oomFault || kvGiB <= 0) {
    lines.push(I('gpu_executor.py:113', '# GPU blocks: 0, # CPU blocks: 2048'));
    return { ...fail('ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.'), loadAt };
  }
  const blocks = Math.floor((kvGiB * 1024 * 1024) / (spec.kvKiB * 16));
  const tokens = blocks * 16;
  lines.push(I('gpu_executor.py:113', `# GPU blocks: ${blocks}, # CPU blocks: 2048`), I('gpu_executor.py:117', `Maximum concurrency for ${maxLen} tokens per request: ${(tokens / maxLen).toFixed(2)}x`));
  if (maxLen > tokens) {
    return { ...fail(`ValueError: The model's max seq len (${maxLen}) is larger than the maximum number of tokens that can be stored in KV cache (${tokens}). Try increasing \`gpu_memory_utilization\` or decreasing \`max_model_len\` when initializing the engine.`), loadAt };
  }
  lines.push(I('model_runner.py:1400', 'Capturing cudagraphs for decoding. This may lead to unexpected consequences if the model is not static.'), I('model_runner.py:1518', 'Graph capturing finished in 9 secs, took 0.31 GiB'));
  lines.push(I('launcher.py:19', 'Available routes are:'));
  for (const [r, mth] of [['/openapi.json', 'HEAD, GET'], ['/health', 'GET'], ['/version', 'GET'], ['/v1/models', 'GET'], ['/v1/chat/completions', 'POST'], ['/v1/completions', 'POST']]) lines.push(I('launcher.py:27', `Route: ${r}, Methods: ${mth}`));
  lines.push('INFO:     Started server process [1]', 'INFO:     Waiting for application startup.', 'INFO:     Application startup complete.', `INFO:     Uvicorn running on http://0.0.0.0:${a.port} (Press CTRL+C to quit)`);
  return { lines, ok: true, usedMiB: Math.round(budget * 1024), maxModelLen: maxLen, loadAt };
}

export interface HttpReply { status: number; headers: Record<string, string>; body: string }

const json = (status: number, obj: unknown): HttpReply => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(obj) });

/** Answer one request to a ready vLLM server. */
export function vllmHandle(a: VllmArgs, maxLen: number, method: string, path: string, headers: Record<string, string>, body: string): HttpReply {
  const p = path.split('?')[0] ?? '/';
  if (p === '/health' && method === 'GET') return { status: 200, headers: { 'content-length': '0' }, body: '' };
  if (p === '/version') return json(200, { version: '0.6.4.post1' });
  if (p.startsWith('/v1')) {
    const auth = headers.authorization ?? '';
    if (a.apiKey && auth !== `Bearer ${a.apiKey}`) return json(401, { error: 'Unauthorized' });
  }
  const created = Math.floor(Date.now() / 1000);
  if (p === '/v1/models' && method === 'GET') {
    return json(200, { object: 'list', data: [{ id: a.servedName, object: 'model', created, owned_by: 'vllm', root: a.model, parent: null, max_model_len: maxLen, permission: [{ id: `modelperm-${randomBytes(16).toString('hex')}`, object: 'model_permission', created, allow_create_engine: false, allow_sampling: true, allow_logprobs: true, allow_search_indices: false, allow_view: true, allow_fine_tuning: false, organization: '*', group: null, is_blocking: false }] }] });
  }
  if ((p === '/v1/chat/completions' || p === '/v1/completions') && method === 'POST') {
    let req: { model?: string; messages?: Array<{ role: string; content: unknown }>; prompt?: string; max_tokens?: number; stream?: boolean };
    try { req = JSON.parse(body || '{}') as typeof req; } catch { return json(400, { object: 'error', message: 'Invalid JSON body', type: 'BadRequestError', param: null, code: 400 }); }
    if (req.model !== a.servedName) return json(404, { object: 'error', message: `The model \`${req.model ?? ''}\` does not exist.`, type: 'NotFoundError', param: null, code: 404 });
    const prompt = p === '/v1/completions' ? String(req.prompt ?? '') : (req.messages ?? []).map((mm) => (typeof mm.content === 'string' ? mm.content : JSON.stringify(mm.content))).join('\n');
    const promptTokens = Math.max(1, Math.ceil(prompt.length / 4)) + 8;
    if (promptTokens + (req.max_tokens ?? 0) > maxLen) {
      return json(400, { object: 'error', message: `This model's maximum context length is ${maxLen} tokens. However, you requested ${promptTokens + (req.max_tokens ?? 0)} tokens (${promptTokens} in the messages, ${req.max_tokens ?? 0} in the completion). Please reduce the length of the messages or completion.`, type: 'BadRequestError', param: null, code: 400 });
    }
    const said = /say\s+(\w+)/i.exec(prompt)?.[1];
    const text = said ?? `This is the lab's ${a.servedName} answering: ${prompt.slice(0, 60)}`;
    const completionTokens = Math.max(1, Math.ceil(text.length / 4));
    const usage = { prompt_tokens: promptTokens, total_tokens: promptTokens + completionTokens, completion_tokens: completionTokens };
    const id = `${p === '/v1/completions' ? 'cmpl' : 'chat'}-${randomBytes(16).toString('hex')}`;
    if (p === '/v1/completions') {
      return json(200, { id, object: 'text_completion', created, model: a.servedName, choices: [{ index: 0, text, logprobs: null, finish_reason: 'stop', stop_reason: null, prompt_logprobs: null }], usage });
    }
    if (req.stream) {
      const chunk = (delta: unknown, finish: string | null): string => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: a.servedName, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
      return { status: 200, headers: { 'content-type': 'text/event-stream; charset=utf-8' }, body: chunk({ role: 'assistant', content: '' }, null) + chunk({ content: text }, null) + chunk({}, 'stop') + 'data: [DONE]\n\n' };
    }
    return json(200, { id, object: 'chat.completion', created, model: a.servedName, choices: [{ index: 0, message: { role: 'assistant', content: text, tool_calls: [] }, logprobs: null, finish_reason: 'stop', stop_reason: null }], usage, prompt_logprobs: null });
  }
  return json(404, { detail: 'Not Found' });
}
