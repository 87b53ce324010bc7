/** ComfyUI's HTTP API (server.py): /prompt, /history, /object_info, /system_stats, /queue — Python json.dumps spacing. */
import { randomUUID } from 'node:crypto';
import type { HttpReply } from './vllm';

/** json.dumps default separators: `", "` and `": "`. */
export function pyJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyJson).join(', ')}]`;
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x)}`).join(', ')}}`;
  return JSON.stringify(v ?? null);
}

const reply = (status: number, obj: unknown): HttpReply => ({ status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: pyJson(obj) });

interface NodeInfo { input: unknown; output: string[]; output_node: boolean; category: string; display_name: string }

const CORE: Record<string, NodeInfo> = {
  CheckpointLoaderSimple: { input: { required: { ckpt_name: [[]] } }, output: ['MODEL', 'CLIP', 'VAE'], output_node: false, category: 'loaders', display_name: 'Load Checkpoint' },
  CLIPTextEncode: { input: { required: { text: ['STRING', { multiline: true }], clip: ['CLIP'] } }, output: ['CONDITIONING'], output_node: false, category: 'conditioning', display_name: 'CLIP Text Encode (Prompt)' },
  KSampler: { input: { required: { model: ['MODEL'] } }, output: ['LATENT'], output_node: false, category: 'sampling', display_name: 'KSampler' },
  SaveImage: { input: { required: { images: ['IMAGE'] } }, output: [], output_node: true, category: 'image', display_name: 'Save Image' },
  PreviewAny: { input: { required: { source: ['*', {}] } }, output: [], output_node: true, category: 'utils', display_name: 'Preview Any' },
  PrimitiveString: { input: { required: { value: ['STRING', {}] } }, output: ['STRING'], output_node: false, category: 'utils/primitive', display_name: 'String' },
};

const OPENAI_PACK: Record<string, NodeInfo> = {
  OAIAPIClient: { input: { required: { base_url: ['STRING', { default: 'https://api.openai.com/v1' }], max_retries: ['INT', { default: 2 }], timeout: ['INT', { default: 600 }] }, optional: { api_key: ['STRING', {}] } }, output: ['OAIAPI_CLIENT'], output_node: false, category: 'OpenAI API', display_name: 'OpenAI API - Client' },
  OAIAPI_ChatCompletion: { input: { required: { client: ['OAIAPI_CLIENT'], model: ['STRING', {}], prompt: ['STRING', { multiline: true }] }, optional: { system_prompt: ['STRING', {}], history: ['OAIAPI_HISTORY'], options: ['OAIAPI_OPTIONS'] } }, output: ['STRING', 'OAIAPI_HISTORY'], output_node: false, category: 'OpenAI API', display_name: 'OpenAI API - Chat Completion' },
};

export const OPENAI_PACK_REPO = 'https://github.com/hekmon/comfyui-openai-api';

function describe(name: string, n: NodeInfo): Record<string, unknown> {
  const req = (n.input as { required?: Record<string, unknown> }).required ?? {};
  return { input: n.input, input_order: { required: Object.keys(req) }, output: n.output, output_is_list: n.output.map(() => false), output_name: n.output, name, display_name: n.display_name, description: '', python_module: 'nodes', category: n.category, output_node: n.output_node };
}

/** Calls vLLM (or whatever base_url names) for the OpenAI pack's chat node. */
export type ChatCall = (baseUrl: string, apiKey: string, model: string, prompt: string) => Promise<{ ok: true; text: string } | { ok: false; error: string }>;

export class ComfyUi {
  private history = new Map<string, unknown>();
  private counter = 0;
  constructor(private readonly packs: () => string[], private readonly chat: ChatCall) {}

  private nodes(): Record<string, NodeInfo> {
    return { ...CORE, ...(this.packs().includes(OPENAI_PACK_REPO) ? OPENAI_PACK : {}) };
  }

  async handle(method: string, rawPath: string, body: string): Promise<HttpReply> {
    const path = (rawPath.split('?')[0] ?? '/').replace(/^\/api(?=\/)/, '');
    const nodes = this.nodes();
    if (path === '/object_info' && method === 'GET') return reply(200, Object.fromEntries(Object.entries(nodes).map(([k, n]) => [k, describe(k, n)])));
    const oi = /^\/object_info\/(.+)$/.exec(path);
    if (oi && method === 'GET') {
      const n = nodes[decodeURIComponent(oi[1] ?? '')];
      return reply(200, n ? { [oi[1] ?? '']: describe(oi[1] ?? '', n) } : {});
    }
    if (path === '/system_stats') return reply(200, { system: { os: 'posix', ram_total: 34359738368, ram_free: 30000000000, comfyui_version: '0.3.40', python_version: '3.12.3', pytorch_version: '2.7.0+cu128', embedded_python: false, argv: ['main.py', '--listen', '--port', '8188'] }, devices: [] });
    if (path === '/queue') return reply(200, { queue_running: [], queue_pending: [] });
    if (path === '/history' && method === 'GET') return reply(200, Object.fromEntries(this.history));
    const h = /^\/history\/(.+)$/.exec(path);
    if (h && method === 'GET') {
      const e = this.history.get(h[1] ?? '');
      return reply(200, e ? { [h[1] ?? '']: e } : {});
    }
    if (path === '/prompt' && method === 'POST') return this.prompt(body, nodes);
    return { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '404: Not Found' };
  }

  private prompt(body: string, nodes: Record<string, NodeInfo>): HttpReply {
    let req: { prompt?: Record<string, { class_type?: string; inputs?: Record<string, unknown> }>; client_id?: string };
    try { req = JSON.parse(body || '{}') as typeof req; } catch { return reply(400, { error: { type: 'invalid_prompt', message: 'Invalid JSON', details: '', extra_info: {} }, node_errors: {} }); }
    if (!req.prompt) return reply(400, { error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: {} });
    const graph = req.prompt;
    for (const [id, n] of Object.entries(graph)) {
      if (!n.class_type || !nodes[n.class_type]) {
        return reply(400, { error: { type: 'invalid_prompt', message: `Cannot execute because node ${n.class_type ?? 'undefined'} does not exist.`, details: `Node ID '#${id}'`, extra_info: {} }, node_errors: {} });
      }
    }
    const outputs = Object.entries(graph).filter(([, n]) => nodes[n.class_type ?? '']?.output_node);
    if (outputs.length === 0) return reply(400, { error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} }, node_errors: {} });
    const promptId = randomUUID();
    const number = this.counter++;
    void this.execute(promptId, number, graph, req.client_id ?? '', outputs.map(([id]) => id));
    return reply(200, { prompt_id: promptId, number, node_errors: {} });
  }

  private async execute(promptId: string, number: number, graph: Record<string, { class_type?: string; inputs?: Record<string, unknown> }>, clientId: string, outputIds: string[]): Promise<void> {
    const values = new Map<string, unknown>();
    const messages: unknown[] = [['execution_start', { prompt_id: promptId, timestamp: Date.now() }]];
    const resolve = (v: unknown): unknown => (Array.isArray(v) && typeof v[0] === 'string' && typeof v[1] === 'number' ? (values.get(`${v[0]}:${v[1]}`)) : v);
    const outputs: Record<string, unknown> = {};
    let error: string | null = null;
    const order = Object.keys(graph).sort((a, b) => Number(a) - Number(b));
    for (let pass = 0; pass < order.length && !error; pass++) {
      for (const id of order) {
        if (values.has(`${id}:0`) || outputs[id] || error) continue;
        const n = graph[id] ?? {};
        const inputs = Object.fromEntries(Object.entries(n.inputs ?? {}).map(([k, v]) => [k, resolve(v)]));
        if (Object.values(inputs).some((v) => v === undefined)) continue;
        if (n.class_type === 'OAIAPIClient') values.set(`${id}:0`, { base_url: inputs.base_url, api_key: inputs.api_key ?? '' });
        else if (n.class_type === 'PrimitiveString') values.set(`${id}:0`, inputs.value);
        else if (n.class_type === 'OAIAPI_ChatCompletion') {
          const client = inputs.client as { base_url: string; api_key: string };
          const r = await this.chat(String(client.base_url), String(client.api_key), String(inputs.model), String(inputs.prompt));
          if (!r.ok) { error = r.error; messages.push(['execution_error', { prompt_id: promptId, node_id: id, node_type: n.class_type, exception_message: r.error, exception_type: 'openai.APIConnectionError', traceback: [], timestamp: Date.now() }]); break; }
          values.set(`${id}:0`, r.text);
          values.set(`${id}:1`, []);
        } else if (n.class_type === 'PreviewAny') outputs[id] = { text: [String(inputs.source)] };
        else values.set(`${id}:0`, null);
      }
    }
    if (!error) messages.push(['execution_success', { prompt_id: promptId, timestamp: Date.now() }]);
    this.history.set(promptId, {
      prompt: [number, promptId, graph, { client_id: clientId }, outputIds],
      outputs,
      status: { status_str: error ? 'error' : 'success', completed: !error, messages },
      meta: Object.fromEntries(Object.keys(outputs).map((id) => [id, { node_id: id, display_node: id, parent_node: null, real_node_id: id }])),
    });
  }
}
