import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { request } from 'node:https';
import { startLab, type Lab } from '../../src/lab';
import { connect, exec, sh } from './helpers';
import { INSTALL, createVllmCt, gpuToHost, must, waitFor, writeCompose } from './flow';

describe('journal and state file', () => {
  it('journals mutations only, and a second run acts on the same host', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-state-'));
    const statePath = join(dir, 'state.json');
    const lab = await startLab({ timeScale: 0.01, statePath });
    await sh(lab, 'pct list; qm config 151; cat /etc/pve/lxc/116.conf; nvidia-smi; lspci -nnk');
    expect(lab.journal()).toEqual([]);
    await sh(lab, 'pct set 118 -memory 8192 && qm stop 151 && mkdir -p /root/marker && echo hi > /root/marker/file');
    const ops = lab.journal().map((j) => `${j.via} ${j.op} ${j.guest ?? ''}`.trim());
    expect(ops).toEqual(['ssh ct.config 118', 'ssh vm.stop 151', 'ssh file.write']);
    expect(lab.journal()[2]?.detail).toBe('/root/marker/file');
    const fp = lab.ssh.hostKeyFingerprint;
    const secret = lab.secrets.tokenSecret;
    await lab.stop();
    expect(existsSync(statePath)).toBe(true);
    const again = await startLab({ timeScale: 0.01, statePath });
    try {
      expect(again.ssh.hostKeyFingerprint).toBe(fp);
      expect(again.secrets.tokenSecret).toBe(secret);
      expect((await sh(again, 'qm status 151 && pct config 118 | grep memory && cat /root/marker/file')).stdout).toBe('status: stopped\nmemory: 8192\nhi\n');
      expect(again.journal()).toHaveLength(3);
    } finally { await again.stop(); }
  });

  it('writeConfig writes a deploy config pointing at the lab with secrets referenced by file', async () => {
    const lab = await startLab({ timeScale: 0.01 });
    try {
      const dir = mkdtempSync(join(tmpdir(), 'lab-cfg-'));
      const path = join(dir, 'lab.yaml');
      await lab.writeConfig(path);
      const text = readFileSync(path, 'utf8');
      expect(text).not.toContain(lab.secrets.tokenSecret);
      expect(text).not.toContain(lab.secrets.vllmApiKey);
      const cfg = parse(text) as { proxmox: { api: { port: number; tokenSecret: { file: string }; tls: { fingerprint: string } }; ssh: { port: number; hostKey: string } }; guests: { vllm: { endpoint: string } } };
      expect(cfg.proxmox.api.port).toBe(lab.api.port);
      expect(cfg.proxmox.api.tls.fingerprint).toBe(lab.api.certFingerprint);
      expect(cfg.proxmox.ssh).toMatchObject({ port: lab.ssh.port, hostKey: lab.ssh.hostKeyFingerprint });
      expect(readFileSync(join(dir, cfg.proxmox.api.tokenSecret.file), 'utf8')).toBe(lab.secrets.tokenSecret);
      expect(cfg.guests.vllm.endpoint).toBe(lab.endpoints.vllm);
      expect(lab.endpoints.vllm).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    } finally { await lab.stop(); }
  });
});

describe('frontends', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ timeScale: 0.01 });
    const c = await connect(lab);
    try {
      await gpuToHost(c);
      await createVllmCt(c);
      await must(c, 'pct exec 117 -- bash -s', INSTALL);
      await writeCompose(c, 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', 8192, lab.secrets.vllmApiKey);
      await must(c, 'pct exec 117 -- docker compose --project-directory /opt/vllm-deploy up -d');
    } finally { c.end(); }
    await waitFor(async () => (await fetch(`${lab.endpoints.vllm}/health`).catch(() => null))?.status === 200);
  });
  afterAll(async () => { await lab.stop(); });

  it('OpenWebUI: the env file alone does not change an initialised instance; the admin API does', async () => {
    expect(await (await fetch(`${lab.endpoints.openwebui}/health`)).json()).toEqual({ status: true });
    const key = lab.state().runtimes['116']?.openwebui?.adminApiKey ?? '';
    const env = `ENABLE_OPENAI_API=true\nOPENAI_API_BASE_URLS=http://10.0.50.117:8000/v1\nOPENAI_API_KEYS=${lab.secrets.vllmApiKey}\n`;
    await sh(lab, "pct exec 116 -- bash -c 'cat >> /root/.env && systemctl restart open-webui'", env);
    expect(lab.state().runtimes['116']?.openwebui?.config.OPENAI_API_BASE_URLS).toEqual(['https://api.openai.com/v1']);
    const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const upd = await fetch(`${lab.endpoints.openwebui}/openai/config/update`, { method: 'POST', headers: auth, body: JSON.stringify({ ENABLE_OPENAI_API: true, OPENAI_API_BASE_URLS: ['http://10.0.50.117:8000/v1'], OPENAI_API_KEYS: [lab.secrets.vllmApiKey] }) });
    expect(upd.status).toBe(200);
    const models = (await (await fetch(`${lab.endpoints.openwebui}/api/models`, { headers: auth })).json()) as { data: Array<{ id: string }> };
    expect(models.data.map((m) => m.id)).toEqual(['mistral-7b-awq']);
    expect((await fetch(`${lab.endpoints.openwebui}/api/models`)).status).toBe(401);
  });

  it('ComfyUI: the OpenAI-API node appears after git clone + restart and runs a prompt against vLLM', async () => {
    const info = async (): Promise<Record<string, unknown>> => (await (await fetch(`${lab.endpoints.comfyui}/object_info`)).json()) as Record<string, unknown>;
    expect(Object.keys(await info())).not.toContain('OAIAPIClient');
    expect((await sh(lab, 'pct exec 118 -- git clone https://github.com/hekmon/comfyui-openai-api /opt/ComfyUI/custom_nodes/comfyui-openai-api')).code).toBe(0);
    expect(Object.keys(await info())).not.toContain('OAIAPIClient');
    await sh(lab, 'pct exec 118 -- systemctl restart comfyui');
    await new Promise((r) => setTimeout(r, 200));
    expect(Object.keys(await info())).not.toContain('OAIAPIClient'); // IMPORT FAILED: no `openai` in the venv
    const uv = await sh(lab, 'pct exec 118 -- uv pip install --python /opt/ComfyUI/venv/bin/python openai');
    expect(uv.stderr).toContain(' + openai==');
    await sh(lab, 'pct exec 118 -- systemctl restart comfyui');
    await waitFor(async () => Object.keys(await info()).includes('OAIAPIClient'), 5000);
    const graph = {
      '1': { class_type: 'OAIAPIClient', inputs: { base_url: 'http://10.0.50.117:8000/v1', api_key: lab.secrets.vllmApiKey, max_retries: 2, timeout: 600 } },
      '2': { class_type: 'OAIAPI_ChatCompletion', inputs: { client: ['1', 0], model: 'mistral-7b-awq', prompt: 'Say OK' } },
      '3': { class_type: 'PreviewAny', inputs: { source: ['2', 0] } },
    };
    const res = await fetch(`${lab.endpoints.comfyui}/prompt`, { method: 'POST', body: JSON.stringify({ prompt: graph, client_id: 't' }) });
    const body = await res.text();
    expect(body).toMatch(/^\{"prompt_id": "[0-9a-f-]{36}", "number": 0, "node_errors": \{\}\}$/);
    const id = (JSON.parse(body) as { prompt_id: string }).prompt_id;
    let hist: Record<string, { outputs: Record<string, { text: string[] }>; status: { status_str: string } }> = {};
    await waitFor(async () => { hist = (await (await fetch(`${lab.endpoints.comfyui}/history/${id}`)).json()) as typeof hist; return Object.keys(hist).length > 0; }, 5000);
    expect(hist[id]?.status.status_str).toBe('success');
    expect(hist[id]?.outputs['3']?.text).toEqual(['OK']);
    expect((await fetch(`${lab.endpoints.comfyui}/prompt`, { method: 'POST', body: '{}' })).status).toBe(400);
  });

  it('ComfyUI without its GPU fails to start unless ExecStart has --cpu', async () => {
    const c = await connect(lab);
    try {
      await must(c, "sed -i '/nvidia/d' /etc/pve/lxc/118.conf && pct stop 118 && pct start 118");
      await waitFor(async () => (await exec(c, 'pct exec 118 -- systemctl is-active comfyui')).stdout === 'failed\n', 5000);
      expect(await fetch(`${lab.endpoints.comfyui}/system_stats`).then(() => 'answered', () => 'refused')).toBe('refused');
      await must(c, 'pct exec 118 -- mkdir -p /etc/systemd/system/comfyui.service.d');
      await must(c, "pct exec 118 -- bash -c 'cat > /etc/systemd/system/comfyui.service.d/cpu.conf'", '[Service]\nExecStart=\nExecStart=/opt/ComfyUI/venv/bin/python /opt/ComfyUI/main.py --listen --port 8188 --cpu\n');
      await must(c, 'pct exec 118 -- systemctl daemon-reload && pct exec 118 -- systemctl restart comfyui');
      await waitFor(async () => (await fetch(`${lab.endpoints.comfyui}/system_stats`).catch(() => null))?.status === 200, 5000);
    } finally { c.end(); }
  });
});

describe('PVE API and SSH share one host', () => {
  /** Token-authenticated HTTPS call to the lab API; the certificate is pinned by fingerprint. */
  function api(lab: Lab, method: string, path: string, form?: Record<string, string>): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const body = form ? new URLSearchParams(form).toString() : undefined;
      const req = request({
        host: '127.0.0.1', port: lab.api.port, method, path: `/api2/json${path}`, rejectUnauthorized: false,
        headers: { authorization: `PVEAPIToken=${lab.secrets.tokenId}=${lab.secrets.tokenSecret}`, ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      }, (res) => {
        const cert = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
        if (cert.fingerprint256 !== lab.api.certFingerprint) { reject(new Error('certificate mismatch')); return; }
        let text = '';
        res.on('data', (d: Buffer) => { text += d.toString(); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('a CT created through the API is a machine pct can start and exec in', async () => {
    const lab = await startLab({ timeScale: 0.01 });
    try {
      const created = await api(lab, 'POST', '/nodes/pve/lxc', { vmid: '140', ostemplate: 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst', hostname: 't140', rootfs: 'local-lvm:8', storage: 'local-lvm' });
      expect(created.status).toBe(200);
      await waitFor(async () => (await sh(lab, 'pct status 140')).code === 0, 5000);
      const c = await connect(lab);
      try {
        await waitFor(async () => (await exec(c, 'pct start 140')).code === 0 || (await exec(c, 'pct status 140')).stdout === 'status: running\n', 5000);
        expect((await exec(c, 'pct exec 140 -- hostname')).stdout).toBe('t140\n');
        expect((await exec(c, 'pct exec 140 -- docker ps')).code).toBe(127);
        expect((await exec(c, 'pct exec 140 -- apt-get install -y docker-ce')).stderr).toBe('E: Unable to locate package docker-ce\n');
        expect(lab.journal().some((j) => j.via === 'api' && j.op === 'ct.create' && j.guest === 140)).toBe(true);
      } finally { c.end(); }
    } finally { await lab.stop(); }
  });
});

describe('the written config is a valid deploy config', () => {
  it('passes the deploy config loader', async () => {
    const { loadConfig } = await import('../../src/config/load');
    const lab = await startLab({ timeScale: 0.01 });
    try {
      const dir = mkdtempSync(join(tmpdir(), 'lab-cfg-'));
      const path = join(dir, 'lab.yaml');
      await lab.writeConfig(path);
      const r = loadConfig(path);
      if (!r.ok) throw new Error(JSON.stringify(r));
      expect(r.ok).toBe(true);
    } finally { await lab.stop(); }
  });
});
