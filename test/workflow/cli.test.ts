/* eslint-disable @typescript-eslint/no-explicit-any -- these tests edit arbitrary YAML trees to break them */
// The CLI contract: help works, bad flags and bad configs exit 2 with a clear message, and start nothing.
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { main } from '../../src/client';
import { startLab } from '../../src/lab';
import { sh } from '../lab/helpers';
import { sharedServerAddress } from '../harness/temporal';

const seed = parse(readFileSync(join(__dirname, '..', '..', 'examples', 'seed-lab.yaml'), 'utf8')) as Record<string, any>;
const dir = mkdtempSync(join(tmpdir(), 'cli-'));
const notLabState = join(dir, 'not-a-lab-state.json');
writeFileSync(notLabState, '{"version": 2}\n');
const secretNotState = join(dir, 'vllm.env');
writeFileSync(secretNotState, 'sk-live-abcdef123456\n');

/** A config file in `dir`: `base` (the seed unless told) with `edit` applied. */
function configWith(edit: (c: Record<string, any>) => void, base: Record<string, any> = seed): string {
  const c = structuredClone(base);
  edit(c);
  const path = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, stringify(c));
  return path;
}

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(['node', 'pve-vllm', ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

async function workflowCount(client: Client): Promise<number> {
  let n = 0;
  for await (const _ of client.workflow.list({ query: 'WorkflowType = "deploy"' })) n++;
  return n;
}

describe('pve-vllm CLI', () => {
  let client: Client;
  beforeAll(async () => {
    client = new Client({ connection: await Connection.connect({ address: sharedServerAddress() }) });
  });
  afterAll(async () => client.connection.close());

  it.each([[['--help']], [['worker', '--help']], [['deploy', '--help']], [['decide', '--help']], [['demo', '--help']]])('%j prints help and exits 0', async (args) => {
    const r = await run(args);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Usage: pve-vllm/);
  });

  it.each([
    [['deploy'], /required option '-c, --config <file>'/],
    [['deploy', '--config', 'x.yaml', '--max-model-len', 'lots'], /--max-model-len: got "lots"; allowed: a positive integer/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['status', 'id', '--colour'], /unknown option '--colour'/],
    [['lab', '--fault', 'meteor'], /--fault: got "meteor"; allowed: pve-500/],
    [['demo', '--decide', 'openwebui:keep'], /--decide: got "openwebui:keep"/],
    [['demo', '--fault', 'meteor'], /--fault: got "meteor"; allowed: pve-500, ssh-drop/],
    [['demo', '--decide', 'openwebui=maybe'], /--decide openwebui: got "maybe"; allowed: repurpose, keep, scrap/],
    [['demo', '--decide', 'openwebui=scrap', '--decide', 'frontend=both'], /--decide: openwebui: scrap destroys .* cannot also be the frontend/],
    // refused before connecting: nothing listens on port 1
    [['decide', 'some-run', 'frontend', 'all', '--address', '127.0.0.1:1'], /frontend: got "all"; allowed: openwebui, comfyui, both/],
    [['status', 'some-run', '--address', '127.0.0.1:99999'], /--address: got "127\.0\.0\.1:99999"; allowed: host or host:port/],
    [['lab', '--state', notLabState], /--state: got ".*not-a-lab-state\.json"; allowed: a state file the lab wrote .* not a lab state/],
    [['demo', '--lab-state', notLabState], /--lab-state: got ".*not-a-lab-state\.json"; allowed: a state file the lab wrote/],
    [['lab', '--state', secretNotState], /--state: got ".*vllm\.env"; allowed: a state file the lab wrote .* it is not JSON; remove it/],
    [['status', '', '--address', '127.0.0.1:1'], /workflowId: got ""; allowed: 1 to 1000 characters/],
    [['deploy', '--config', 'x.yaml', '--workflow-id', ' padded'], /--workflow-id: got " padded"; allowed: 1 to 1000 characters/],
    [['status', 'some-run', '--ui-url', 'ftp://ui'], /--ui-url: got "ftp:\/\/ui"; allowed: an http/],
    [['worker', '--tls-cert-path', '/etc/hostname', '--address', '127.0.0.1:1'], /--tls-cert-path: got "\/etc\/hostname" without --tls-key-path/],
    [['status', 'some-run', '--tls-ca-path', '/nonexistent-ca.pem', '--address', '127.0.0.1:1'], /--tls-ca-path: got "\/nonexistent-ca\.pem"; allowed: a readable PEM file — no such file/],
    [['plan', '--config', 'examples/seed-lab.yaml', '--max-model-len', '100'], /model\.maxModelLen: got 100; allowed: .* from 512 to 1048576/],
    [['demo', '--time-scale', 'abc'], /--time-scale: got "abc"; allowed: a number greater than 0, at most 100/],
    [['demo', '--time-scale', '0'], /--time-scale: got "0"; allowed: a number greater than 0/],
    [['demo', '--time-scale', '1e9'], /--time-scale: got "1e9"; allowed: .* at most 100/],
    [['lab', '--time-scale', '-1'], /--time-scale: got "-1"; allowed: a number greater than 0/],
    [['demo', '--ui-port', '70000'], /--ui-port: got "70000"; allowed: a TCP port, 1 to 65535/],
    [['teardown', '--config', 'no-such.yaml', '--address', '127.0.0.1:1'], /--config: got "no-such\.yaml"; allowed: a readable YAML deploy config file .* — no such file/],
    [['teardown', '--config', 'examples/seed-lab.yaml', '--workflow-id', ' x'], /--workflow-id: got " x"; allowed: 1 to 1000 characters/],
  ])('%j is bad input: exit 2 with a clear message', async (args, message) => {
    const r = await run(args as string[]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).not.toContain('sk-live');
  });

  it('demo refuses a Web UI port in use before starting anything', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    const port = (busy.address() as AddressInfo).port;
    try {
      const r = await run(['demo', '--ui-port', String(port)]);
      expect(r.code).toBe(2);
      expect(r.err).toBe(`--ui-port: ${port} is in use on 127.0.0.1 (another demo or Temporal dev server?); allowed: a free port, e.g. --ui-port ${port + 1}\n`);
    } finally {
      busy.close();
    }
  });

  it('demo with a bad override exits 2 and leaves nothing behind: no lab state file, no config directory', async () => {
    const state = join(dir, 'never-written-state.json');
    const demoDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('pve-vllm-demo-')).length;
    const before = demoDirs();
    const r = await run(['demo', '--max-model-len', '100', '--lab-state', state]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/model\.maxModelLen: got 100; allowed: .* from 512/);
    expect(existsSync(state)).toBe(false);
    expect(demoDirs()).toBe(before);
  });

  it.each([
    ['wrong type', (c: any) => (c.guests.vllm.cores = 'sixteen'), /guests\.vllm\.cores: got "sixteen"/],
    ['missing field', (c: any) => delete c.proxmox.node, /proxmox\.node/],
    ['CT id out of range', (c: any) => (c.guests.vllm.id = 42), /guests\.vllm\.id: got 42/],
    ['bad CIDR', (c: any) => (c.guests.vllm.network.ip = '10.0.50.117/33'), /guests\.vllm\.network\.ip/],
    ['unknown model', (c: any) => (c.model.id = 'acme/NoSuchModel-7B'), /model\.id/],
    ['contradictory decisions', (c: any) => Object.assign(c.decisions, { openwebui: 'scrap', frontend: 'openwebui' }), /decisions/],
    ['inline secret', (c: any) => (c.vllm.apiKey = 'sk-live-123'), /vllm\.apiKey/],
    ['shell metacharacters in a hostname', (c: any) => (c.guests.vllm.hostname = 'vllm;reboot'), /guests\.vllm\.hostname/],
    ['a model that does not fit', (c: any) => (c.model = { id: 'mistralai/Mixtral-8x7B-Instruct-v0.1', maxModelLen: 32768 }), /does not fit/],
  ])('deploy with a config with %s exits 2, names the field and starts no workflow', async (_name, edit, message) => {
    const before = await workflowCount(client);
    const r = await run(['deploy', '--config', configWith(edit), '--address', sharedServerAddress()]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).not.toContain('sk-live-123');
    expect(await workflowCount(client)).toBe(before);
  });

  it('refuses a second deploy on the same node while one runs, and says which run holds it', async () => {
    // No worker polls this queue: the first run waits, and nothing connects to the example's 10.x host.
    const args = ['deploy', '--config', configWith(() => undefined), '--address', sharedServerAddress(), '--task-queue', `idle-${Date.now()}`];
    const id = `pve-vllm-${seed.proxmox.node}`;
    const first = await run(args);
    try {
      expect({ code: first.code, err: first.err }).toEqual({ code: 0, err: '' });
      expect(first.out).toContain(`started ${id}`);
      const second = await run(args);
      expect(second.code).toBe(1);
      expect(second.err).toContain(`a deploy on node ${seed.proxmox.node} is already running (workflow ${id})`);
      expect(second.err).toContain(`pve-vllm cancel ${id}`);
    } finally {
      await client.workflow.getHandle(id).terminate('test cleanup');
    }
  });

  it('cancel stops a running deploy, and refuses one that has already ended without touching it', async () => {
    const id = `cancel-test-${Date.now()}`;
    const args = ['deploy', '--config', configWith(() => undefined), '--address', sharedServerAddress(), '--task-queue', `idle-${Date.now()}`, '--workflow-id', id];
    expect((await run(args)).code).toBe(0);
    const handle = client.workflow.getHandle(id);
    try {
      const cancel = await run(['cancel', id, '--no-wait', '--address', sharedServerAddress()]);
      expect(cancel).toMatchObject({ code: 0, out: expect.stringContaining(`cancellation requested for ${id}`) });
      await handle.terminate('test: end it'); // no worker polls the idle queue: the cancel cannot finish by itself
      const again = await run(['cancel', id, '--address', sharedServerAddress()]);
      expect(again.code).toBe(2);
      expect(again.err).toContain(`workflow ${id}: got a run that has already ended (terminated); allowed: a running deploy. Nothing was changed.`);
      expect((await handle.describe()).status.name).toBe('TERMINATED');
    } finally {
      await handle.terminate('test cleanup').catch(() => undefined);
    }
  });

  it('plan --live reads the host and says what the deploy would do to it, changing nothing; exits 1 when the host cannot be read', async () => {
    const lab = await startLab({ timeScale: 0.05 });
    try {
      const path = join(dir, 'live.yaml');
      await lab.writeConfig(path);
      const labYaml = parse(readFileSync(path, 'utf8')) as Record<string, any>;
      const mutations = lab.journal().length;
      const r = await run(['plan', '--live', '--config', path]);
      expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
      expect(r.out).toMatch(/\n  GPU 0000:01:00\.0 +AD103 \[GeForce RTX 4070 Ti SUPER\], driver vfio-pci\n +-> vfio-pci -> nvidia\n/);
      expect(r.out).toMatch(/\n  VM 151 +passes the card through; running, onboot 1\n +-> shut down, onboot 0/);
      expect(r.out).toMatch(/\n  CT 118 \(ComfyUI\) +running, with GPU passthrough\n +-> if chosen at step 6, the frontend: .*; if not, GPU passthrough removed, --cpu\n/);
      expect(r.out).toMatch(/\n  deployment record +none: a first deploy\n/);
      // The config's decisions shape the answer (here with ComfyUI stopped).
      expect(lab.journal().length).toBe(mutations);
      expect((await sh(lab, 'pct stop 118')).code).toBe(0);
      const stopped = lab.journal().length;
      const liveWith = async (decisions: Record<string, string>) => {
        const decided = configWith((c) => (c.decisions = decisions), labYaml);
        const j = await run(['plan', '--live', '--json', '--config', decided]);
        expect({ code: j.code, err: j.err }).toEqual({ code: 0, err: '' });
        return (JSON.parse(j.out) as { live: Array<{ what: string; now: string; then: string }> }).live;
      };
      const repurposed = await liveWith({ openwebui: 'repurpose', frontend: 'comfyui' });
      expect(repurposed).toContainEqual({ what: 'CT 117 (vLLM)', now: 'absent', then: "not used: vLLM goes into OpenWebUI's CT 116 (repurpose)" });
      expect(repurposed.find((l) => l.what === 'CT 116 (OpenWebUI)')?.then).toBe('repurposed: vLLM runs in it');
      expect(repurposed.find((l) => l.what === 'CT 118 (ComfyUI)')?.then).toBe('the frontend: GPU passthrough removed, --cpu, 4 cores / 8192 MiB, LLM node and chat workflow (it must be running: start it first)');
      const kept = await liveWith({ openwebui: 'keep', frontend: 'openwebui' });
      expect(kept).toContainEqual({ what: 'CT 117 (vLLM)', now: 'absent', then: 'created' });
      expect(kept).toContainEqual({ what: 'CT 118 (ComfyUI)', now: 'stopped, with GPU passthrough', then: 'GPU passthrough removed, stays stopped; --cpu on a re-run once it runs' });
      expect(lab.journal().length).toBe(stopped);
      // An SSH user that is not root and has no sudo (a PVE host has none by default) would read an empty host.
      expect((await sh(lab, 'useradd -m bob && mkdir -p /home/bob/.ssh && cp /root/.ssh/authorized_keys /home/bob/.ssh/ && chmod 700 /home/bob/.ssh && chmod 600 /home/bob/.ssh/authorized_keys')).code).toBe(0);
      const asBob = configWith((c) => (c.proxmox.ssh.user = 'bob'), labYaml);
      const bob = await run(['plan', '--live', '--config', asBob]);
      expect({ code: bob.code, err: bob.err }).toEqual({ code: 1, err: 'could not read the host: the SSH user bob is not root and cannot use sudo without a password (bash: sudo: command not found): pve-vllm needs root, or passwordless sudo\n' });
      // A host that does not answer: the offline plan still prints, the reason goes to stderr, exit 1.
      const closed = await new Promise<number>((resolve) => {
        const srv = createServer();
        srv.listen(0, '127.0.0.1', () => {
          const { port } = srv.address() as AddressInfo;
          srv.close(() => resolve(port));
        });
      });
      const down = configWith((c) => (c.proxmox.api.port = closed), labYaml);
      const bad = await run(['plan', '--live', '--config', down]);
      expect(bad.code).toBe(1);
      expect(bad.out).toMatch(/vLLM flags:/);
      expect(bad.err).toMatch(/^could not read the host: /);
    } finally {
      await lab.stop();
    }
  });

  it('plan explains the sizing and exits 0 for the design model, 2 with alternatives for Mixtral', async () => {
    const ok = await run(['plan', '--config', join(__dirname, '..', '..', 'examples', 'seed-lab.yaml')]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/Mistral-7B-Instruct-v0\.2-AWQ/);
    expect(ok.out).toMatch(/checkpoint 1/);
    const bad = await run(['plan', '--config', join(__dirname, '..', '..', 'examples', 'seed-lab.yaml'), '--model', 'mistralai/Mixtral-8x7B-Instruct-v0.1']);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/Nearest configurations that fit/);
  });

  it.each([
    ['meta-llama/Llama-3.1-8B-Instruct', [], {}],
    ['hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', ['--max-model-len', '65536'], {}],
    ['meta-llama/Llama-3.1-8B-Instruct', ['--max-model-len', '65536'], { quantization: 'fp8', cpuOffloadGb: 4 }],
  ])('every configuration plan offers for %s %j %j can be asked for as printed, and then fits', async (model, more, base) => {
    const dir0 = mkdtempSync(join(tmpdir(), 'offer-base-'));
    const example = join(dir0, 'base.yaml');
    const baseDoc = parse(readFileSync(join(__dirname, '..', '..', 'examples', 'seed-lab.yaml'), 'utf8')) as { model: Record<string, unknown> };
    Object.assign(baseDoc.model, base);
    writeFileSync(example, stringify(baseDoc));
    const first = await run(['plan', '--config', example, '--model', model, ...more]);
    expect(first.code).toBe(2);
    const offers = [...first.out.matchAll(/^ {2}\d+\. (.+?)(?: \([^)]*\))?: needs /gm)].map((m) => m[1] ?? '');
    expect(offers.length).toBeGreaterThan(2);
    for (const offer of offers) {
      // What the line says: pve-vllm's flags, then `model.key: value` pairs for the config.
      const doc = parse(readFileSync(example, 'utf8')) as { model: Record<string, unknown> };
      doc.model.id = model;
      const keys = [...offer.matchAll(/model\.(\w+): ([^,\s]+)/g)];
      for (const [, k = '', v = ''] of keys) doc.model[k] = Number.isNaN(Number(v)) ? v : Number(v);
      for (const [, k = ''] of offer.matchAll(/\bno model\.(\w+)/g)) delete doc.model[k];
      const flags = [...offer.matchAll(/(--model|--max-model-len) (\S+)/g)].flatMap((m) => [m[1] ?? '', m[2] ?? '']);
      expect(keys.length + flags.length).toBeGreaterThan(0);
      const dir = mkdtempSync(join(tmpdir(), 'offer-'));
      writeFileSync(join(dir, 'c.yaml'), stringify(doc));
      const flagsGiven = flags.includes('--max-model-len') ? flags : [...flags, ...more];
      const again = await run(['plan', '--config', join(dir, 'c.yaml'), ...flagsGiven]);
      expect({ offer, code: again.code, err: again.err }).toEqual({ offer, code: 0, err: expect.any(String) });
    }
  });
});
