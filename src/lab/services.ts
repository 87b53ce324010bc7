/**
 * The HTTP services behind the containers, each on its own 127.0.0.1 port: vLLM (only while a vllm
 * container has finished starting; one port stands for CT 117's address, another for CT 116's, and each
 * answers only when vLLM runs in its CT), OpenWebUI (CT 116) and ComfyUI (CT 118). Also answers
 * in-lab requests (curl from a CT, OpenWebUI/ComfyUI calling vLLM) by CT address or lab port.
 */
import { ComfyUi, OPENAI_PACK_REPO } from './comfyui';
import { HttpPort } from './http-port';
import { parseEnvFile } from './compose';
import { parseVllmArgs, planStartup, vllmHandle, type HttpReply, type VllmArgs } from './vllm';
import type { DockerContainer, OpenWebuiConfig } from './state';
import type { ServiceHooks, World } from './world';

export type LabResponse = HttpReply | { unreachable: true } | null;

interface ActiveVllm { vmid: number; containerId: string; args: VllmArgs; maxLen: number }

const OPENWEBUI_CT = 116;
const VLLM_CT = 117;
const COMFYUI_CT = 118;

export class LabServices implements ServiceHooks {
  /** vLLM at CT 117's address (the vLLM CT), and at CT 116's (OpenWebUI's CT repurposed for vLLM). */
  vllmPort!: HttpPort;
  vllmRepurposedPort!: HttpPort;
  openwebuiPort!: HttpPort;
  comfyuiPort!: HttpPort;
  private active: ActiveVllm | null = null;
  private generation = 0;
  private comfy: ComfyUi;

  constructor(private readonly world: World) {
    this.comfy = new ComfyUi(() => this.world.runtime(String(COMFYUI_CT)).comfyui?.loadedPacks ?? [], (b, k, mdl, p) => this.chat(COMFYUI_CT, b, k, mdl, p));
  }

  async start(): Promise<void> {
    // A saved lab keeps its service ports, as a real host keeps its addresses: URLs written into configs stay valid.
    const state = this.host().state;
    const saved = state.servicePorts ?? {};
    const ports = {
      vllm: await HttpPort.portOrFree(saved.vllm),
      vllmRepurposed: await HttpPort.portOrFree(saved.vllmRepurposed),
      openwebui: await HttpPort.portOrFree(saved.openwebui),
      comfyui: await HttpPort.portOrFree(saved.comfyui),
    };
    state.servicePorts = ports;
    const vllmIn = (vmid: number) => async (m: string, p: string, h: Record<string, string>, b: string): Promise<HttpReply> =>
      this.active?.vmid === vmid ? vllmHandle(this.active.args, this.active.maxLen, m, p, h, b) : { status: 503, headers: {}, body: '' };
    this.vllmPort = new HttpPort(ports.vllm, vllmIn(VLLM_CT));
    this.vllmRepurposedPort = new HttpPort(ports.vllmRepurposed, vllmIn(OPENWEBUI_CT));
    this.openwebuiPort = new HttpPort(ports.openwebui, (m, p, h, b) => this.openwebui(m, p, h, b));
    this.comfyuiPort = new HttpPort(ports.comfyui, (m, p, _h, b) => this.comfy.handle(m, p, b));
    await this.resumeAfterLoad();
    await this.sync();
  }

  async stop(): Promise<void> {
    this.generation++;
    await Promise.all([this.vllmPort.down(), this.vllmRepurposedPort.down(), this.openwebuiPort.down(), this.comfyuiPort.down()]);
    for (const port of [this.vllmPort, this.vllmRepurposedPort, this.openwebuiPort, this.comfyuiPort]) port.release();
  }

  private host = (): World['host'] => this.world.host;

  private serviceUp(vmid: number, unit: string): boolean {
    return this.host().guest(vmid)?.status === 'running' && this.world.runtime(String(vmid)).services[unit] === 'active';
  }

  /** Open or close the frontend ports to follow their CT and systemd unit. */
  async sync(): Promise<void> {
    await (this.serviceUp(OPENWEBUI_CT, 'open-webui.service') ? this.openwebuiPort.up() : this.openwebuiPort.down());
    await (this.serviceUp(COMFYUI_CT, 'comfyui.service') ? this.comfyuiPort.up() : this.comfyuiPort.down());
  }

  /** A state file may hold a vllm container that was running: bring the server back as a restart would. */
  private async resumeAfterLoad(): Promise<void> {
    for (const [key, rt] of Object.entries(this.host().state.runtimes)) {
      for (const c of rt.docker.containers) {
        if (c.state === 'running' && /vllm-openai/.test(c.image)) this.containerStarted(Number(key), c.id);
      }
    }
  }

  private container(vmid: number, id: string): DockerContainer | undefined {
    return this.world.runtime(String(vmid)).docker.containers.find((c) => c.id === id);
  }

  containerStarted(vmid: number, containerId: string): void {
    const c = this.container(vmid, containerId);
    if (!c || !/vllm-openai/.test(c.image)) return;
    const gen = ++this.generation;
    const args = parseVllmArgs(c);
    c.logs = [];
    c.gpuMiB = 0;
    const noGpu = c.gpu && !this.world.ctNodeVisible(vmid, 'nvidia0');
    // CUDA needs /dev/nvidia-uvm as well: without it cuInit fails (999) and torch sees no device.
    const noUvm = c.gpu && !noGpu && !this.world.ctNodeVisible(vmid, 'nvidia-uvm');
    const plan = noGpu || noUvm
      ? {
          lines: [
            ...(noUvm ? ['UserWarning: CUDA initialization: CUDA unknown error - this may be due to an incorrectly set up environment, e.g. changing env variable CUDA_VISIBLE_DEVICES after program start. Setting the available devices to be zero.'] : []),
            'Traceback (most recent call last):',
            'RuntimeError: No CUDA GPUs are available',
          ],
          ok: false, usedMiB: 0, maxModelLen: 0, loadAt: 0,
        }
      : planStartup(args, this.host().takeFault('vllm-oom'));
    void (async () => {
      for (let i = 0; i < plan.lines.length; i++) {
        await this.host().delay(i === plan.loadAt ? 3000 : 120);
        if (gen !== this.generation) return;
        c.logs.push(plan.lines[i] ?? '');
      }
      if (!plan.ok) {
        c.exitCode = 1;
        c.state = /^(always|unless-stopped|on-failure)/.test(c.restart) ? 'restarting' : 'exited';
        return;
      }
      c.gpuMiB = plan.usedMiB;
      this.active = { vmid, containerId, args, maxLen: plan.maxModelLen };
      await this.vllmPortOf(vmid)?.up();
    })();
  }

  containerStopped(vmid: number, containerId: string): void {
    const c = this.container(vmid, containerId);
    if (c) { c.gpuMiB = 0; c.state = 'exited'; c.exitCode = 0; }
    if (this.active?.containerId === containerId || (c && /vllm-openai/.test(c.image))) {
      this.generation++;
      this.active = null;
      void this.vllmPort.down();
      void this.vllmRepurposedPort.down();
    }
  }

  /** The loopback port that stands for the address of the CT vLLM runs in. */
  private vllmPortOf(vmid: number): HttpPort | undefined {
    return vmid === VLLM_CT ? this.vllmPort : vmid === OPENWEBUI_CT ? this.vllmRepurposedPort : undefined;
  }

  /** A CT stopped: its containers stop with it; a started CT restarts containers with a restart policy. */
  guestStopped(vmid: number): void {
    for (const c of this.world.runtime(String(vmid)).docker.containers) {
      if (c.state === 'running' || c.state === 'restarting') { const keep = c.restart; this.containerStopped(vmid, c.id); c.restart = keep; c.exitCode = 137; }
    }
    void this.sync();
  }

  guestStarted(vmid: number): void {
    const rt = this.world.runtime(String(vmid));
    // systemd starts the enabled frontend units with the CT; they re-read their config as on any start.
    for (const unit of ['open-webui.service', 'comfyui.service']) {
      if (rt.enabledServices.includes(unit)) { rt.services[unit] = 'active'; this.serviceRestarted(vmid, unit); }
    }
    if (rt.services['docker.service'] === 'active') {
      for (const c of rt.docker.containers) {
        if (c.exitCode === 137 && /^(always|unless-stopped)/.test(c.restart)) { c.state = 'running'; c.exitCode = 0; this.containerStarted(vmid, c.id); }
      }
    }
    void this.sync();
  }

  serviceRestarted(vmid: number, unit: string): void {
    void (async () => {
      const active = this.world.runtime(String(vmid)).services[unit] === 'active';
      if (active && vmid === OPENWEBUI_CT && unit === 'open-webui.service') await this.reloadOpenWebui();
      if (active && vmid === COMFYUI_CT && unit === 'comfyui.service') await this.reloadComfy();
      await this.sync();
    })();
  }

  private async reloadOpenWebui(): Promise<void> {
    const rt = this.world.runtime(String(OPENWEBUI_CT));
    const m = this.world.machine(String(OPENWEBUI_CT));
    if (!rt.openwebui || !m) return;
    const env = parseEnvFile(await m.fs.readFile('/root/.env').catch(() => ''));
    const persistent = !/^(false|0)$/i.test(env.ENABLE_PERSISTENT_CONFIG ?? 'true');
    // PersistentConfig: once initialised, the database wins unless ENABLE_PERSISTENT_CONFIG=False.
    if (persistent && rt.openwebui.initialised) return;
    const list = (a?: string, b?: string): string[] | undefined => (a !== undefined ? a.split(';') : b !== undefined ? [b] : undefined);
    const next: OpenWebuiConfig = { ...rt.openwebui.config };
    if (env.ENABLE_OPENAI_API !== undefined) next.ENABLE_OPENAI_API = /^(true|1)$/i.test(env.ENABLE_OPENAI_API);
    if (env.ENABLE_OLLAMA_API !== undefined) next.ENABLE_OLLAMA_API = /^(true|1)$/i.test(env.ENABLE_OLLAMA_API);
    next.OPENAI_API_BASE_URLS = list(env.OPENAI_API_BASE_URLS, env.OPENAI_API_BASE_URL)?.map((u) => u.replace(/\/+$/, '')) ?? next.OPENAI_API_BASE_URLS;
    next.OPENAI_API_KEYS = list(env.OPENAI_API_KEYS, env.OPENAI_API_KEY) ?? next.OPENAI_API_KEYS;
    rt.openwebui.config = next;
    rt.openwebui.initialised = true;
  }

  private async reloadComfy(): Promise<void> {
    const rt = this.world.runtime(String(COMFYUI_CT));
    const m = this.world.machine(String(COMFYUI_CT));
    if (!m) return;
    const packs: string[] = [];
    for (const d of await m.fs.readdir('/opt/ComfyUI/custom_nodes').catch(() => [] as string[])) {
      const meta = await m.fs.readFile(`/opt/ComfyUI/custom_nodes/${d}/.git/lab-repo`).catch(() => '');
      if (meta) packs.push((JSON.parse(meta) as { url: string }).url);
    }
    // The OpenAI pack imports `openai`: without it in the venv ComfyUI logs IMPORT FAILED and skips the pack.
    rt.comfyui = { loadedPacks: packs.filter((p) => p === OPENAI_PACK_REPO && rt.packages.includes('pip:openai')) };
    // CUDA torch without a visible GPU exits at start unless ExecStart carries --cpu (unit or drop-in).
    let execStart = '';
    const units = ['/etc/systemd/system/comfyui.service'];
    for (const d of await m.fs.readdir('/etc/systemd/system/comfyui.service.d').catch(() => [] as string[])) if (d.endsWith('.conf')) units.push(`/etc/systemd/system/comfyui.service.d/${d}`);
    for (const u of units) {
      for (const line of (await m.fs.readFile(u).catch(() => '')).split('\n')) {
        const mm = /^ExecStart=(.*)$/.exec(line.trim());
        if (mm) execStart = mm[1] ?? '';
      }
    }
    if (!/(^|\s)--cpu(\s|$)/.test(execStart) && !this.world.ctNodeVisible(COMFYUI_CT, 'nvidia0')) {
      rt.services['comfyui.service'] = 'failed';
    }
  }

  private ctIp(vmid: number): string | undefined {
    return /ip=([0-9.]+)\//.exec(this.host().guest(vmid)?.config.net0 ?? '')?.[1];
  }

  /** Which service a URL reaches from inside the lab (`fromVmid` null = the host). */
  async request(fromVmid: number | null, url: URL, init: { method: string; headers: Record<string, string>; body?: string }): Promise<LabResponse> {
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const h = url.hostname;
    const local = h === '127.0.0.1' || h === 'localhost';
    let target: 'vllm' | 'openwebui' | 'comfyui' | null = null;
    let targetVmid: number | null = null;
    let via: HttpPort | undefined; // the loopback port of one CT's vLLM, when the URL names one
    if (local && (port === this.vllmPort.port || port === this.vllmRepurposedPort.port)) {
      target = 'vllm';
      via = port === this.vllmPort.port ? this.vllmPort : this.vllmRepurposedPort;
    }
    else if (local && port === this.openwebuiPort.port) target = 'openwebui';
    else if (local && port === this.comfyuiPort.port) target = 'comfyui';
    else {
      targetVmid = local ? fromVmid : (this.host().guests().find((g) => g.type === 'lxc' && this.ctIp(g.vmid) === h)?.vmid ?? null);
      if (targetVmid === null) return local ? null : { unreachable: true };
      if (this.host().guest(targetVmid)?.status !== 'running') return { unreachable: true };
      if (targetVmid === OPENWEBUI_CT && port === 8080) target = 'openwebui';
      else if (targetVmid === COMFYUI_CT && port === 8188) target = 'comfyui';
      else if (this.active?.vmid === targetVmid && this.active.args.port === port) target = 'vllm';
      else if (this.world.runtime(String(targetVmid)).docker.containers.some((c) => c.state === 'running' && c.ports.some((p) => p.host === port && p.container === this.active?.args.port))) target = 'vllm';
    }
    if (target === 'vllm') {
      if (fromVmid !== null && fromVmid !== this.active?.vmid && this.host().hasFault('frontend-unreachable')) return { unreachable: true };
      if (!this.active) return null;
      const at = this.vllmPortOf(this.active.vmid);
      if (via ? via !== at || !via.open : !at?.open) return null;
      return vllmHandle(this.active.args, this.active.maxLen, init.method, url.pathname + url.search, init.headers, init.body ?? '');
    }
    if (target === 'openwebui') return this.openwebuiPort.open ? this.openwebui(init.method, url.pathname, init.headers, init.body ?? '') : null;
    if (target === 'comfyui') return this.comfyuiPort.open ? this.comfy.handle(init.method, url.pathname + url.search, init.body ?? '') : null;
    return null;
  }

  /** The OpenAI python client's view of a call to base_url/chat/completions from a frontend CT. */
  private async chat(fromVmid: number, baseUrl: string, apiKey: string, model: string, prompt: string): Promise<{ ok: true; text: string } | { ok: false; error: string }> {
    let url: URL;
    try { url = new URL(`${baseUrl.replace(/\/+$/, '')}/chat/completions`); } catch { return { ok: false, error: 'Request URL is missing an \'http://\' or \'https://\' protocol.' }; }
    const r = await this.request(fromVmid, url, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content: prompt }] }) });
    if (!r || 'unreachable' in r) return { ok: false, error: 'Connection error.' };
    if (r.status !== 200) return { ok: false, error: `Error code: ${r.status} - ${r.body}` };
    const body = JSON.parse(r.body) as { choices: Array<{ message: { content: string } }> };
    return { ok: true, text: body.choices[0]?.message.content ?? '' };
  }

  private async openwebui(method: string, rawPath: string, headers: Record<string, string>, body: string): Promise<HttpReply> {
    const path = rawPath.split('?')[0] ?? '/';
    const rt = this.world.runtime(String(OPENWEBUI_CT));
    const json = (status: number, obj: unknown): HttpReply => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(obj) });
    if (path === '/health') return json(200, { status: true });
    if (path === '/health/db') return json(200, { status: true });
    if (path === '/api/version') return json(200, { version: '0.6.5' });
    if (path === '/api/config') return json(200, { status: true, name: 'Open WebUI', version: '0.6.5', default_locale: '', features: { auth: true, enable_api_key: true, enable_signup: false, enable_login_form: true } });
    const ow = rt.openwebui;
    if (!ow) return json(500, { detail: 'Internal Server Error' });
    if ((headers.authorization ?? '') !== `Bearer ${ow.adminApiKey}`) return json(401, { detail: 'Not authenticated' });
    if (path === '/openai/config' && method === 'GET') return json(200, { ...ow.config, OPENAI_API_CONFIGS: {} });
    if (path === '/openai/config/update' && method === 'POST') {
      const req = JSON.parse(body || '{}') as Partial<OpenWebuiConfig>;
      const next: OpenWebuiConfig = { ...ow.config };
      if (typeof req.ENABLE_OPENAI_API === 'boolean') next.ENABLE_OPENAI_API = req.ENABLE_OPENAI_API;
      if (Array.isArray(req.OPENAI_API_BASE_URLS)) next.OPENAI_API_BASE_URLS = req.OPENAI_API_BASE_URLS.map(String);
      if (Array.isArray(req.OPENAI_API_KEYS)) next.OPENAI_API_KEYS = req.OPENAI_API_KEYS.map(String);
      if (JSON.stringify(next) !== JSON.stringify(ow.config)) {
        ow.config = next;
        this.host().record('api', 'openwebui.config', OPENWEBUI_CT, next.OPENAI_API_BASE_URLS.join(';'));
      }
      return json(200, { ...ow.config, OPENAI_API_CONFIGS: {} });
    }
    if (path === '/api/models' && method === 'GET') {
      const data: unknown[] = [];
      if (ow.config.ENABLE_OPENAI_API) {
        for (let i = 0; i < ow.config.OPENAI_API_BASE_URLS.length; i++) {
          let url: URL;
          try { url = new URL(`${ow.config.OPENAI_API_BASE_URLS[i] ?? ''}/models`); } catch { continue; }
          const r = await this.request(OPENWEBUI_CT, url, { method: 'GET', headers: { authorization: `Bearer ${ow.config.OPENAI_API_KEYS[i] ?? ''}` } });
          if (!r || 'unreachable' in r || r.status !== 200) continue;
          for (const mdl of (JSON.parse(r.body) as { data: Array<{ id: string; created: number }> }).data) {
            data.push({ id: mdl.id, name: mdl.id, object: 'model', created: mdl.created, owned_by: 'openai', openai: mdl, urlIdx: i, connection_type: 'external' });
          }
        }
      }
      return json(200, { data });
    }
    if (path === '/api/chat/completions' && method === 'POST') {
      // OpenWebUI routes a chat to the connection that lists the model, with that connection's key.
      const req = JSON.parse(body || '{}') as { model?: string; messages?: Array<{ role: string; content: string }> };
      const prompt = req.messages?.map((m) => m.content).join('\n') ?? '';
      for (let i = 0; ow.config.ENABLE_OPENAI_API && i < ow.config.OPENAI_API_BASE_URLS.length; i++) {
        const base = ow.config.OPENAI_API_BASE_URLS[i] ?? '';
        const key = ow.config.OPENAI_API_KEYS[i] ?? '';
        let url: URL;
        try { url = new URL(`${base}/models`); } catch { continue; }
        const r = await this.request(OPENWEBUI_CT, url, { method: 'GET', headers: { authorization: `Bearer ${key}` } });
        if (!r || 'unreachable' in r || r.status !== 200) continue;
        if (!(JSON.parse(r.body) as { data: Array<{ id: string }> }).data.some((x) => x.id === req.model)) continue;
        const out = await this.chat(OPENWEBUI_CT, base, key, req.model ?? '', prompt);
        if (!out.ok) return json(500, { detail: out.error });
        return json(200, {
          id: `chatcmpl-${Date.now().toString(16)}`, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: req.model,
          choices: [{ index: 0, message: { role: 'assistant', content: out.text }, finish_reason: 'stop' }],
        });
      }
      return json(400, { detail: 'Model not found' });
    }
    return json(404, { detail: 'Not Found' });
  }
}
