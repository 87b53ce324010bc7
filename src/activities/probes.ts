// Checkpoints and assessments: read-only probes that return evidence (small strings, never whole logs).
import { sleep } from '@temporalio/activity';
import type { DeployConfig } from '../config/schema';
import { classifyVllmLog } from '../sizing';
import type { ChatEvidence, OpenwebuiAssessment, ReachEvidence, ServingEvidence, VllmLaunch } from './contract';
import { ActivityDeps, Host, permanent, reportProgress } from './deps';
import { VLLM_DIR } from './container';
import { frontendUrl, openwebuiKey, owuiApi } from './frontends';

const COMPOSE = `${VLLM_DIR}/docker-compose.yml`;

export function createProbeActivities(deps: ActivityDeps) {
  const h = (cfg: DeployConfig) => new Host(deps, cfg);

  async function httpStatus(url: string, init?: RequestInit): Promise<number | string> {
    try {
      const res = await deps.fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      return res.status;
    } catch (err) {
      return (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    }
  }

  return {
    async assessOpenwebui(cfg: DeployConfig): Promise<OpenwebuiAssessment> {
      const host = h(cfg);
      const owui = cfg.guests.openwebui;
      const vmid = owui?.id ?? 0;
      const list = (await host.api().get(`/nodes/${host.node}/lxc`)) as Array<{ vmid: number | string; status: string }>;
      const entry = list.find((c) => Number(c.vmid) === vmid);
      if (!owui || !entry) {
        return {
          vmid, exists: false, status: 'missing', cores: 0, memoryMiB: 0, gpuPassthrough: false, reachable: false, connectedToVllm: false,
          recommendation: 'scrap', reasons: [owui ? `CT ${vmid} does not exist` : 'no OpenWebUI CT in the config'],
        };
      }
      const conf = (await host.api().get(`/nodes/${host.node}/lxc/${vmid}/config`)) as Record<string, unknown> & { lxc?: Array<[string, string]> };
      const raw = (await host.read(`/etc/pve/lxc/${vmid}.conf`)) ?? '';
      const gpuPassthrough = /\/dev\/nvidia|c 195:/.test(raw) || Object.entries(conf).some(([k, v]) => /^dev\d+$/.test(k) && String(v).includes('nvidia'));
      const url = frontendUrl(cfg, 'openwebui');
      const health = url ? await httpStatus(`${url}/health`) : 'no url configured';
      const reachable = health === 200;
      const cores = Number(conf.cores ?? 1);
      const memoryMiB = Number(conf.memory ?? 512);
      const reasons = [
        `CT ${vmid} is ${entry.status}, ${cores} cores, ${memoryMiB} MiB`,
        gpuPassthrough ? 'it has NVIDIA passthrough, so it could host vLLM' : 'it has no GPU passthrough, so it cannot host vLLM',
        reachable ? `OpenWebUI answers at ${url}` : `OpenWebUI does not answer at ${url ?? '(no url)'}: ${health}`,
      ];
      // Scrap is for good: it is recommended only for a CT that runs and whose UI does not answer, never for one that
      // is merely stopped or that there is no URL to look at.
      const broken = entry.status === 'running' && url !== undefined && !reachable;
      const recommendation = gpuPassthrough && !reachable ? 'repurpose' : broken ? 'scrap' : 'keep';
      reasons.push(
        recommendation === 'keep'
          ? reachable
            ? 'recommended: keep it as a chat frontend and connect it to vLLM (then shrink it: vLLM does the heavy lifting)'
            : `recommended: keep it (it is ${entry.status === 'running' ? 'running' : 'stopped'}${url ? '' : ', and guests.openwebui.url is not set'}: not enough to call it broken; scrap destroys it for good)`
          : recommendation === 'repurpose' ? 'recommended: repurpose it for vLLM' : 'recommended: scrap it and reclaim its resources',
      );
      return {
        vmid, exists: true, status: entry.status === 'running' ? 'running' : 'stopped', cores, memoryMiB, gpuPassthrough, reachable,
        connectedToVllm: false, recommendation, reasons,
      };
    },

    async verifyVllmServing(cfg: DeployConfig, vmid: number, launch: VllmLaunch): Promise<ServingEvidence> {
      const host = h(cfg);
      const base = cfg.guests.vllm.endpoint;
      if (!base) throw permanent('guests.vllm.endpoint is unknown (network.ip is dhcp): set guests.vllm.endpoint in the config', 'EndpointUnknown');
      const key = host.secret(cfg.vllm.apiKey);
      const started = Date.now();
      const deadline = started + 30 * 60_000;
      for (let attempt = 0; Date.now() < deadline; attempt++) {
        const health = await httpStatus(`${base}/health`);
        if (health === 200) break;
        // Every few polls, check that the container is still alive; if it died, say why from its log.
        if (attempt % 3 === 2) {
          const ps = await host.ct(vmid, ['docker', 'compose', '-f', COMPOSE, 'ps', '--all', '--format', 'json']);
          if (ps.code === 0 && /"State":"(exited|dead|restarting)"/.test(ps.stdout)) {
            const logs = await host.ct(vmid, ['docker', 'compose', '-f', COMPOSE, 'logs', '--no-color', '--tail', '200']);
            // vLLM prints its arguments at start-up, --api-key in clear text: nothing of the log reaches history unmasked.
            const stdout = withoutSecret(logs.stdout, key);
            const causes = classifyVllmLog(`${stdout}\n${withoutSecret(logs.stderr, key)}`);
            const first = causes[0];
            return {
              ok: false,
              models: [],
              evidence: `vLLM exited during start-up after ${Math.round((Date.now() - started) / 1000)} s`,
              failure: first
                ? { cause: first.cause, explanation: first.explanation, remedy: first.remedy, ...(first.estimatedMaxLen ? { estimatedMaxLen: first.estimatedMaxLen } : {}), ...(first.suggestedMaxModelLen ? { suggestedMaxModelLen: first.suggestedMaxModelLen } : {}) }
                : { cause: 'unknown', explanation: `vLLM exited; last log line: ${lastLine(stdout)}`, remedy: `read \`docker compose -f ${COMPOSE} logs\` in CT ${vmid}` },
            };
          }
        }
        reportProgress(`waiting for vLLM to load ${launch.model} (${Math.round((Date.now() - started) / 1000)} s, /health: ${health})`);
        await sleep(1000);
      }
      const res = await deps.fetch(`${base}/v1/models`, { headers: { Authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(10_000) });
      if (res.status === 401) throw permanent('vLLM refused the API key (401): the key in vllm.apiKey differs from the one in the CT\'s .env', 'VllmAuthFailed');
      const body = (await res.json()) as { data?: Array<{ id: string; max_model_len?: number }> };
      const models = (body.data ?? []).map((m) => m.id);
      const served = body.data?.find((m) => m.id === launch.servedModelName);
      if (!served) return { ok: false, models, evidence: `/v1/models lists ${models.join(', ') || 'nothing'}, not ${launch.servedModelName}` };
      return {
        ok: true,
        models,
        maxModelLen: served.max_model_len,
        evidence: `GET ${base}/health -> 200; GET /v1/models (API key) lists ${served.id}${served.max_model_len ? ` (max_model_len ${served.max_model_len})` : ''}`,
      };
    },

    async verifyFrontendReachesVllm(cfg: DeployConfig, frontend: 'openwebui' | 'comfyui', servedModelName: string): Promise<ReachEvidence> {
      const host = h(cfg);
      const vmid = (frontend === 'openwebui' ? cfg.guests.openwebui?.id : cfg.guests.comfyui?.id) as number;
      const url = `${cfg.guests.vllm.endpoint}/health`;
      const r = await host.ct(vmid, ['curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', url]);
      if (r.code !== 0 || r.stdout.trim() !== '200') {
        const evidence = `pct exec ${vmid} -- curl ${url} -> exit ${r.code} ${r.stderr.trim() || r.stdout.trim()}; check the bridge/firewall between CT ${vmid} and the vLLM CT`;
        return { frontend, ok: false, evidence };
      }
      if (frontend === 'comfyui') return { frontend, ok: true, evidence: `pct exec ${vmid} -- curl ${url} -> 200` };
      // OpenWebUI lists a connection's models only once it reaches them; a transient miss is retried.
      const models = await owuiApi(deps, host, cfg, '/api/models');
      if (!((models.data as Array<{ id: string }> | undefined) ?? []).some((m) => m.id === servedModelName)) {
        throw new Error(`OpenWebUI does not list ${servedModelName} yet, though CT ${vmid} reaches ${url}`);
      }
      return { frontend, ok: true, evidence: `pct exec ${vmid} -- curl ${url} -> 200; OpenWebUI lists ${servedModelName}` };
    },

    async verifyChatThroughFrontend(cfg: DeployConfig, frontend: 'openwebui' | 'comfyui', servedModelName: string): Promise<ChatEvidence> {
      const base = frontendUrl(cfg, frontend);
      if (!base) throw permanent(`guests.${frontend}.url is not set: the integration test needs it`, 'FrontendUrlMissing');
      const prompt = 'Reply with the single word OK.';
      if (frontend === 'openwebui') {
        const res = await deps.fetch(`${base}/api/chat/completions`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${openwebuiKey(h(cfg), cfg)}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ model: servedModelName, messages: [{ role: 'user', content: prompt }], stream: false }),
          signal: AbortSignal.timeout(120_000),
        });
        const text = await res.text();
        if (res.status !== 200) return { frontend, ok: false, reply: '', evidence: `POST ${base}/api/chat/completions -> ${res.status} ${text.slice(0, 200)}` };
        const reply = (JSON.parse(text) as { choices?: Array<{ message?: { content?: string } }> }).choices?.[0]?.message?.content ?? '';
        return { frontend, ok: reply.length > 0, reply: reply.slice(0, 200), evidence: `OpenWebUI /api/chat/completions with ${servedModelName} -> "${reply.slice(0, 60)}"` };
      }
      const key = h(cfg).secret(cfg.vllm.apiKey);
      const graph = comfyChatGraph(`${cfg.guests.vllm.endpoint}/v1`, key, servedModelName, prompt);
      const post = await deps.fetch(`${base}/prompt`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: graph, client_id: 'pve-vllm' }) });
      const posted = (await post.json()) as { prompt_id?: string; error?: { message?: string }; node_errors?: unknown };
      if (post.status !== 200 || !posted.prompt_id) {
        return { frontend, ok: false, reply: '', evidence: `POST ${base}/prompt -> ${post.status} ${posted.error?.message ?? ''} ${JSON.stringify(posted.node_errors ?? {}).slice(0, 200)}` };
      }
      for (let i = 0; i < 600; i++) {
        const hist = (await (await deps.fetch(`${base}/history/${posted.prompt_id}`)).json()) as Record<string, ComfyHistory>;
        const entry = hist[posted.prompt_id];
        if (entry?.status?.completed || entry?.status?.status_str === 'error') {
          const reply = entry.outputs?.['3']?.text?.[0] ?? '';
          const ok = entry.status.status_str === 'success' && reply.length > 0;
          return { frontend, ok, reply: reply.slice(0, 200), evidence: `ComfyUI prompt ${posted.prompt_id} (OpenAI API node -> ${servedModelName}): ${entry.status.status_str} "${reply.slice(0, 60)}"` };
        }
        reportProgress(`ComfyUI prompt ${posted.prompt_id} running`);
        await sleep(500);
      }
      return { frontend, ok: false, reply: '', evidence: `ComfyUI prompt ${posted.prompt_id} did not finish` };
    },
  };
}

interface ComfyHistory {
  status?: { status_str?: string; completed?: boolean };
  outputs?: Record<string, { text?: string[] }>;
}

/** OpenAI API client node -> chat completion -> "Preview as Text" (core PreviewAny), in ComfyUI's API format. */
export function comfyChatGraph(baseUrl: string, apiKey: string, model: string, prompt: string): Record<string, unknown> {
  return {
    '1': { class_type: 'OAIAPIClient', inputs: { base_url: baseUrl, api_key: apiKey, max_retries: 2, timeout: 600 } },
    '2': { class_type: 'OAIAPI_ChatCompletion', inputs: { client: ['1', 0], model, prompt } },
    '3': { class_type: 'PreviewAny', inputs: { source: ['2', 0] } },
  };
}

/** `text` with every occurrence of `secret` replaced by `***`. */
export function withoutSecret(text: string, secret: string): string {
  return secret ? text.split(secret).join('***') : text;
}

function lastLine(text: string): string {
  return text.trim().split('\n').slice(-1)[0]?.slice(0, 200) ?? '';
}
