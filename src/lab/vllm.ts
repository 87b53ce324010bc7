/**
 * The vLLM OpenAI server behind a `vllm/vllm-openai` container: startup outcome from the model's real
 * memory needs on the 16 GiB card (proxmox-gpu-vllm.md §4/§5), v0.6-style log lines, and the HTTP API
 * (`/health`, `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/version`) with Bearer auth.
 */
import { randomBytes } from 'node:crypto';
import type { DockerContainer } from './state';

interface ModelSpec { weightsGiB: number; kvKiB: number; maxPos: number; quant?: string; arch: string }

/** The design's models (weights as loaded, KV cache per token in fp16, context limit of the config). */
const MODELS: Array<[RegExp, ModelSpec]> = [
  [/^TheBloke\/Mistral-7B-Instruct-v0\.2-AWQ$/i, { weightsGiB: 3.87, kvKiB: 128, maxPos: 32768, quant: 'awq', arch: 'MistralForCausalLM' }],
  [/^mistralai\/Mistral-7B-Instruct-v0\.[23]$/i, { weightsGiB: 13.5, kvKiB: 128, maxPos: 32768, arch: 'MistralForCausalLM' }],
  [/^Qwen\/Qwen2\.5-7B-Instruct-AWQ$/i, { weightsGiB: 5.2, kvKiB: 56, maxPos: 32768, quant: 'awq', arch: 'Qwen2ForCausalLM' }],
  [/^Qwen\/Qwen2\.5-7B-Instruct$/i, { weightsGiB: 14.2, kvKiB: 56, maxPos: 32768, arch: 'Qwen2ForCausalLM' }],
  [/^Qwen\/Qwen2\.5-14B-Instruct-AWQ$/i, { weightsGiB: 9.2, kvKiB: 192, maxPos: 32768, quant: 'awq', arch: 'Qwen2ForCausalLM' }],
  [/^Qwen\/Qwen2\.5-32B-Instruct-AWQ$/i, { weightsGiB: 17.7, kvKiB: 256, maxPos: 32768, quant: 'awq', arch: 'Qwen2ForCausalLM' }],
  [/^meta-llama\/Meta-Llama-3-8B-Instruct$/i, { weightsGiB: 14.96, kvKiB: 128, maxPos: 8192, arch: 'LlamaForCausalLM' }],
  [/^microsoft\/phi-2$/i, { weightsGiB: 5.2, kvKiB: 320, maxPos: 2048, arch: 'PhiForCausalLM' }],
  [/^TheBloke\/Mixtral-8x7B-Instruct-v0\.1-AWQ$/i, { weightsGiB: 22.7, kvKiB: 128, maxPos: 32768, quant: 'awq', arch: 'MixtralForCausalLM' }],
  [/^mistralai\/Mixtral-8x7B-Instruct-v0\.1$/i, { weightsGiB: 86.99, kvKiB: 128, maxPos: 32768, arch: 'MixtralForCausalLM' }],
];

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
  };
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
  const lines = [I('api_server.py:585', 'vLLM API server version 0.6.4.post1'), I('api_server.py:586', `args: Namespace(host=None, port=${a.port}, model='${a.model}', served_model_name=['${a.servedName}'], max_model_len=${a.maxModelLen ?? 'None'}, gpu_memory_utilization=${a.gpuMemoryUtilization}, cpu_offload_gb=${a.cpuOffloadGb}, api_key=${a.apiKey ? `'${a.apiKey}'` : 'None'})`)];
  const spec = MODELS.find(([re]) => re.test(a.model))?.[1];
  const fail = (...err: string[]): StartupPlan => ({ lines: [...lines, 'Traceback (most recent call last):', ...err], ok: false, usedMiB: 0, maxModelLen: 0, loadAt: lines.length });
  if (!spec) {
    return fail(`OSError: ${a.model} is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'`, "If this is a private repository, make sure to pass a token having permission to this repo either by logging in with `huggingface-cli login` or by passing `token=<your_token>`");
  }
  const maxLen = a.maxModelLen ?? spec.maxPos;
  if (maxLen > spec.maxPos) {
    return fail(`ValueError: User-specified max_model_len (${maxLen}) is greater than the derived max_model_len (max_position_embeddings=${spec.maxPos} or model_max_length=None in model's config.json). This may lead to incorrect model outputs or CUDA errors. To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1`);
  }
  if (spec.quant === 'awq') lines.push(I('awq_marlin.py:109', 'The model is convertible to awq_marlin during runtime. Using awq_marlin kernel.'));
  lines.push(I('llm_engine.py:249', `Initializing an LLM engine (v0.6.4.post1) with config: model='${a.model}', tokenizer='${a.model}', max_seq_len=${maxLen}, quantization=${spec.quant === 'awq' ? 'awq_marlin' : 'None'}, served_model_name=${a.servedName}`));
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
