/**
 * The deploy config schema: the shipped example validates, and a table of malformed configs each yields a
 * problem that names the field, shows the value given and says what is allowed — without ever echoing a secret.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { validateConfig, formatProblems, type ConfigProblem } from '../../src/config/load';

const EXAMPLE = join(__dirname, '../../examples/seed-lab.yaml');
const example = (): Record<string, unknown> => parse(readFileSync(EXAMPLE, 'utf8'));

type Mutation = (c: Record<string, any>) => void; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form YAML tree

function set(path: string, value: unknown): Mutation {
  return (c) => {
    const keys = path.split('.');
    let cur = c;
    for (const k of keys.slice(0, -1)) cur = cur[k] ??= {};
    if (value === undefined) delete cur[keys[keys.length - 1]];
    else cur[keys[keys.length - 1]] = value;
  };
}

function problemsOf(...mutations: Mutation[]): ConfigProblem[] {
  const config = example();
  for (const m of mutations) m(config);
  const result = validateConfig(config);
  if (result.ok) throw new Error('expected the config to be rejected');
  return result.problems;
}

describe('the seed-lab example', () => {
  it('validates and keeps the design document values', () => {
    const result = validateConfig(example());
    if (!result.ok) throw new Error(formatProblems(result.problems));
    const c = result.config;
    expect(c.proxmox.host).toBe('10.0.50.10');
    expect(c.proxmox.node).toBe('pve');
    expect(c.guests.vllm).toMatchObject({ id: 117, cores: 16, memoryMiB: 98304, endpoint: 'http://10.0.50.117:8000' });
    expect(c.guests.openwebui?.id).toBe(116);
    expect(c.guests.comfyui?.id).toBe(118);
    expect(c.guests.vm.id).toBe(151);
    expect(c.gpu.pciAddress).toBe('0000:01:00.0');
    expect(c.model).toMatchObject({ id: 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ', maxModelLen: 16384 });
    expect(c.admin.user).toBe('claude');
    expect(c.repo.path).toBe('/opt/vllm');
    expect(c.decisions.timeoutMs).toBe(24 * 3600 * 1000);
    expect(c.proxmox.api.tokenSecret).toEqual({ env: 'PVE_TOKEN_SECRET' });
  });
});

describe('valid variations', () => {
  const ok = (...mutations: Mutation[]) => {
    const config = example();
    for (const m of mutations) m(config);
    const result = validateConfig(config);
    if (!result.ok) throw new Error(formatProblems(result.problems));
    return result.config;
  };

  it('dhcp without gateway leaves the endpoint to discovery', () => {
    const c = ok(set('guests.vllm.network', { ip: 'dhcp' }), set('guests.vllm.endpoint', undefined));
    expect(c.guests.vllm.network).toEqual({ bridge: 'vmbr0', ip: 'dhcp' });
    expect(c.guests.vllm.endpoint).toBeUndefined();
  });
  it('derives the endpoint from a static ip and vllm.port', () => {
    const c = ok(set('guests.vllm.endpoint', undefined), set('vllm.port', 8001));
    expect(c.guests.vllm.endpoint).toBe('http://10.0.50.117:8001');
  });
  it('accepts a CA file, an IPv6 host, an image digest, a commit ref and a loopback endpoint', () => {
    const c = ok(
      set('proxmox.api.tls', { caFile: '/etc/ssl/pve-ca.pem' }),
      set('proxmox.host', '::1'),
      set('vllm.image', `ghcr.io/example/vllm-openai:v0.8.5@sha256:${'a'.repeat(64)}`),
      set('repo.ref', '0123456789abcdef0123456789abcdef01234567'),
      set('guests.vllm.endpoint', 'http://127.0.0.1:18000'),
    );
    expect(c.proxmox.api.tls).toEqual({ caFile: '/etc/ssl/pve-ca.pem' });
  });
  it('normalises fingerprints and PCI addresses', () => {
    const c = ok(set('gpu.pciAddress', '0000:0A:00.0'), set('proxmox.api.tls', { fingerprint: Array(32).fill('ab').join(':') }));
    expect(c.gpu.pciAddress).toBe('0000:0a:00.0');
    expect(c.proxmox.api.tls).toEqual({ fingerprint: Array(32).fill('AB').join(':') });
  });
  it('accepts the fingerprints as the tools print them', () => {
    const hex = Array(32).fill('0f').join(':');
    const c = ok(set('proxmox.api.tls', { fingerprint: `sha256 Fingerprint=${hex}` }), set('proxmox.ssh.hostKey', `SHA256:${'A'.repeat(43)}=`));
    expect(c.proxmox.api.tls).toEqual({ fingerprint: hex.toUpperCase() });
    expect(c.proxmox.ssh.hostKey).toBe(`SHA256:${'A'.repeat(43)}`);
  });
  it('takes secret files relative to the config, above it, or under ~/', () => {
    const c = ok(set('vllm.apiKey', { file: '../secrets/vllm-api-key' }), set('admin.privateKey', { file: './keys/claude' }));
    expect(c.vllm.apiKey).toEqual({ file: '../secrets/vllm-api-key' });
  });
  it('resolves a catalog alias to its repo id', () => {
    expect(ok(set('model.id', 'mistral-7b')).model.id).toBe('mistralai/Mistral-7B-Instruct-v0.2');
  });
  it('takes an unlisted model with a spec', () => {
    const c = ok(set('model.id', 'someone/Custom-7B-AWQ'), set('model.spec', {
      layers: 32, hiddenSize: 4096, intermediateSize: 14336, attentionHeads: 32, kvHeads: 8, headDim: 128,
      vocabSize: 32000, paramsTotal: 7241732096, nativeContext: 32768, defaultDtype: 'float16', quantization: 'awq',
    }));
    expect(c.model.spec).toMatchObject({ id: 'someone/Custom-7B-AWQ', tieWordEmbeddings: false });
  });
  it('accepts each non-contradictory decision pair', () => {
    for (const [openwebui, frontend] of [['keep', 'openwebui'], ['keep', 'both'], ['keep', 'comfyui'], ['scrap', 'comfyui'], ['repurpose', 'comfyui']]) {
      expect(ok(set('decisions.openwebui', openwebui), set('decisions.frontend', frontend)).decisions).toMatchObject({ openwebui, frontend });
    }
  });
  it('leaves undecided decisions to the run, with the default deadline', () => {
    expect(ok(set('decisions', undefined)).decisions).toEqual({ timeout: '24h', timeoutMs: 86400000 });
  });
});

interface BadCase {
  name: string;
  change: Mutation[];
  /** The path the problem must name. */
  path: string;
  /** A text the formatted line must show as the given value (defaults to the JSON of the value set). */
  given?: string;
  /** A secret that must not appear anywhere in the output. */
  secret?: string;
}

function bad(name: string, path: string, value: unknown, extra: Partial<BadCase> = {}): BadCase {
  const given = value === undefined ? 'nothing' : typeof value === 'object' ? undefined : JSON.stringify(value);
  return { name, change: [set(path, value)], path, given, ...extra };
}

const UUID = '0f3c2b8e-1234-4abc-9def-0123456789ab';

const TABLE: BadCase[] = [
  // wrong types
  bad('vmid as a string', 'guests.vllm.id', '117'),
  bad('cores as a float', 'guests.vllm.cores', 2.5),
  bad('port as text', 'vllm.port', 'eight thousand'),
  bad('boolean as a string', 'backup.beforeScrap', 'yes'),
  bad('a section as a list', 'gpu', ['0000:01:00.0'], { given: 'a list of 1 item' }),
  bad('ref read by YAML as a number', 'repo.ref', 1.1),
  // missing fields
  bad('no model section', 'model', undefined),
  bad('no token id', 'proxmox.api.tokenId', undefined),
  bad('no API key reference', 'vllm.apiKey', undefined),
  bad('no host key', 'proxmox.ssh.hostKey', undefined),
  bad('no GPU address', 'gpu.pciAddress', undefined),
  bad('no vLLM CT id', 'guests.vllm.id', undefined),
  // out-of-range numbers
  bad('CT id below 100', 'guests.vllm.id', 99),
  bad('CT id above 999999999', 'guests.openwebui.id', 1000000000),
  bad('negative VM id', 'guests.vm.id', -151),
  bad('zero cores', 'guests.vllm.cores', 0),
  bad('memory below the PVE minimum', 'guests.vllm.memoryMiB', 8),
  bad('port 0', 'proxmox.api.port', 0),
  bad('port above 65535', 'proxmox.ssh.port', 70000),
  bad('maxModelLen zero', 'model.maxModelLen', 0),
  bad('maxModelLen above 1048576', 'model.maxModelLen', 2000000),
  bad('gpuMemoryUtilization 0', 'model.gpuMemoryUtilization', 0),
  bad('gpuMemoryUtilization above 1', 'model.gpuMemoryUtilization', 1.5),
  bad('negative reduceTo memory', 'guests.comfyui.reduceTo.memoryMiB', -1),
  // duplicate ids
  bad('vLLM CT id equal to the VM', 'guests.vllm.id', 151),
  bad('vLLM CT id equal to OpenWebUI', 'guests.vllm.id', 116),
  bad('vLLM CT id equal to ComfyUI', 'guests.vllm.id', 118),
  bad('ComfyUI id equal to OpenWebUI', 'guests.comfyui.id', 116),
  // network
  bad('octet above 255', 'guests.vllm.network.ip', '10.0.50.300/24'),
  bad('no prefix length', 'guests.vllm.network.ip', '10.0.50.117'),
  bad('prefix 33', 'guests.vllm.network.ip', '10.0.50.117/33'),
  bad('network address as host', 'guests.vllm.network.ip', '10.0.50.0/24'),
  bad('broadcast address as host', 'guests.vllm.network.ip', '10.0.50.255/24'),
  bad('gateway outside the subnet', 'guests.vllm.network.gateway', '10.0.51.1'),
  bad('gateway equal to the CT address', 'guests.vllm.network.gateway', '10.0.50.117'),
  bad('gateway with dhcp', 'guests.vllm.network.ip', 'dhcp', { path: 'guests.vllm.network.gateway', given: '"10.0.50.1"' }),
  bad('gateway not an address', 'guests.vllm.network.gateway', 'router'),
  bad('bridge with a space', 'guests.vllm.network.bridge', 'vmbr0 x'),
  // unknown keys
  bad('misspelt key', 'proxmox.api.tokenSecert', { env: 'X' }, { given: '"tokenSecert"' }),
  bad('unknown top-level section', 'extras', { a: 1 }, { given: '"extras"' }),
  bad('unknown key in a guest', 'guests.vllm.swap', 512, { given: '"swap"' }),
  bad('unknown key holding a secret', 'vllm.api_key_value', UUID, { given: '"api_key_value"', secret: UUID }),
  // inline secrets
  bad('inline token secret', 'proxmox.api.tokenSecret', UUID, { given: 'hidden', secret: UUID }),
  bad('inline root password', 'proxmox.root.password', 'hunter2-root', { given: 'hidden', secret: 'hunter2-root' }),
  bad('inline API key', 'vllm.apiKey', 'sk-local-abcdef', { given: 'hidden', secret: 'sk-local-abcdef' }),
  bad('inline HF token', 'vllm.hfToken', 'hf_abcdefghijklmnop', { given: 'hidden', secret: 'hf_abcdefghijklmnop' }),
  bad('inline private key', 'admin.privateKey', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----',
    { given: 'hidden', secret: 'b3BlbnNzaC1rZXktdjEAAAAA' }),
  bad('inline OpenWebUI API key', 'guests.openwebui.apiKey', 'sk-0123456789abcdef0123', { given: 'hidden', secret: 'sk-0123456789abcdef0123' }),
  bad('an API key for ComfyUI, which has none', 'guests.comfyui.apiKey', { env: 'COMFY_KEY' }, { given: '"apiKey"' }),
  bad('secret under a made-up key', 'proxmox.api.tokenSecret', { value: 'pw-9f8e7d' }, { given: 'hidden', secret: 'pw-9f8e7d' }),
  bad('HF token pasted as the model id', 'model.id', 'hf_AbCdEfGhIjKlMnOpQrStUvWx', { given: 'looks like a secret', secret: 'hf_AbCdEfGhIjKlMnOpQrStUvWx' }),
  bad('API key pasted as the token id', 'proxmox.api.tokenId', 'sk-abcdefghijklmnop1234', { given: 'looks like a secret', secret: 'sk-abcdefghijklmnop1234' }),
  bad('secret pasted as an unknown key', `proxmox.${UUID}`, 1, { path: 'proxmox.(hidden key)', given: 'looks like a secret', secret: UUID }),
  bad('secret pasted as a key name', 'proxmox.api.tokenSecret', { [UUID]: true }, { given: 'hidden', secret: UUID }),
  bad('both env and file', 'vllm.apiKey', { env: 'A', file: '/b' }),
  bad('bad env name', 'vllm.apiKey', { env: 'VLLM KEY' }, { path: 'vllm.apiKey.env' }),
  bad('secret pasted as env name', 'vllm.apiKey', { env: UUID }, { path: 'vllm.apiKey.env', secret: UUID }),
  bad('credentials in a URL', 'guests.openwebui.url', 'http://admin:pw-in-url@10.0.50.116:8080', { given: undefined }),
  // images, repos, URLs
  bad(':latest image', 'vllm.image', 'vllm/vllm-openai:latest'),
  bad('untagged image', 'vllm.image', 'vllm/vllm-openai'),
  bad('upper-case image name', 'vllm.image', 'VLLM/vllm-openai:v1'),
  bad('http repo URL', 'repo.url', 'http://github.com/vllm-project/vllm.git'),
  bad('ssh repo URL', 'repo.url', 'git@github.com:vllm-project/vllm.git'),
  bad('repo URL with a query', 'repo.url', 'https://github.com/vllm-project/vllm.git?x=1'),
  bad('ref with ..', 'repo.ref', 'v0..6'),
  bad('ref starting with -', 'repo.ref', '--upload-pack=evil'),
  bad('endpoint without scheme', 'guests.vllm.endpoint', '10.0.50.117:8000'),
  bad('endpoint with ftp scheme', 'guests.vllm.endpoint', 'ftp://10.0.50.117/'),
  bad('API host with scheme', 'proxmox.host', 'https://10.0.50.10:8006'),
  // decisions
  bad('unknown openwebui decision', 'decisions.openwebui', 'burn'),
  bad('unknown frontend decision', 'decisions.frontend', 'ollama'),
  bad('scrap with frontend openwebui', 'decisions.openwebui', 'scrap', { path: 'decisions.frontend', given: '"openwebui"' }),
  { name: 'scrap with frontend both', change: [set('decisions.openwebui', 'scrap'), set('decisions.frontend', 'both')], path: 'decisions.frontend', given: '"both"' },
  bad('repurpose with frontend openwebui', 'decisions.openwebui', 'repurpose', { path: 'decisions.frontend', given: '"openwebui"' }),
  bad('frontend comfyui without a ComfyUI guest', 'guests.comfyui', undefined, { path: 'decisions.frontend', given: '"comfyui"', change: [set('guests.comfyui', undefined), set('decisions.frontend', 'comfyui')] }),
  bad('repurpose without an address for OpenWebUI\'s CT', 'guests.openwebui.url', undefined, { path: 'decisions.openwebui', given: '"repurpose"', change: [set('guests.openwebui.url', undefined), set('decisions.openwebui', 'repurpose'), set('decisions.frontend', 'comfyui')] }),
  bad('frontend openwebui without its admin API key', 'guests.openwebui.apiKey', undefined, { path: 'decisions.frontend', given: '"openwebui"', change: [set('guests.openwebui.apiKey', undefined), set('decisions.frontend', 'openwebui')] }),
  bad('OpenWebUI decision without an OpenWebUI guest', 'guests.openwebui', undefined, { path: 'decisions.openwebui', given: '"keep"', change: [set('guests.openwebui', undefined), set('decisions.frontend', 'comfyui')] }),
  bad('deadline with no unit', 'decisions.timeout', '24'),
  bad('deadline forever', 'decisions.timeout', 'forever'),
  // identities, keys, fingerprints
  bad('token id without realm', 'proxmox.api.tokenId', 'root!pve-vllm'),
  bad('short host key', 'proxmox.ssh.hostKey', 'SHA256:abc'),
  bad('MD5 host key', 'proxmox.ssh.hostKey', 'MD5:12:34:56'),
  bad('TLS fingerprint of 20 bytes', 'proxmox.api.tls', { fingerprint: Array(20).fill('AB').join(':') }, { path: 'proxmox.api.tls.fingerprint' }),
  bad('TLS fingerprint and CA file together', 'proxmox.api.tls', { fingerprint: Array(32).fill('AB').join(':'), caFile: '/ca.pem' }),
  bad('public key with a bad type', 'admin.publicKey', 'ssh-dss AAAAB3NzaC1kc3MAAACBAP1 x'),
  bad('truncated public key', 'admin.publicKey', 'ssh-ed25519 AAAA'),
  bad('private key pasted as public key', 'admin.publicKey', '-----BEGIN OPENSSH PRIVATE KEY-----', { given: 'looks like a secret' }),
  bad('admin user root', 'admin.user', 'root'),
  bad('PCI address without domain', 'gpu.pciAddress', '01:00.0'),
  bad('PCI function 8', 'gpu.pciAddress', '0000:01:00.8'),
  bad('template not a vztmpl volume', 'guests.vllm.template', '/var/lib/vz/template/cache/debian.tar.zst'),
  bad('storage id with a slash', 'guests.vllm.storage', 'local/lvm'),
  bad('relative repo path', 'repo.path', 'opt/vllm'),
  bad('repo path with ..', 'repo.path', '/opt/../etc'),
  // models
  bad('unknown model', 'model.id', 'nobody/Unknown-Model-7B'),
  bad('model id with a URL', 'model.id', 'https://huggingface.co/TheBloke/Mistral-7B-Instruct-v0.2-AWQ'),
  bad('model id with three parts', 'model.id', 'a/b/c'),
  bad('spec with params in billions', 'model.id', 'someone/Custom-7B', {
    path: 'model.spec',
    given: 'an object',
    change: [set('model.id', 'someone/Custom-7B'), set('model.spec', {
      layers: 32, hiddenSize: 4096, intermediateSize: 14336, attentionHeads: 32, kvHeads: 8, headDim: 128,
      vocabSize: 32000, paramsTotal: 7, nativeContext: 32768, defaultDtype: 'float16',
    })],
  }),
  bad('spec with an unknown dtype', 'model.spec', { layers: 1 }, {
    path: 'model.spec.defaultDtype',
    given: 'nothing',
    change: [set('model.id', 'someone/Custom-7B'), set('model.spec', {
      layers: 32, hiddenSize: 4096, intermediateSize: 14336, attentionHeads: 32, kvHeads: 8, headDim: 128,
      vocabSize: 32000, paramsTotal: 7241732096, nativeContext: 32768,
    })],
  }),
];

// Names and strings that may reach a shell, each tried with the classic injections.
const INJECTIONS = ['; rm -rf /', '$(id)', '`id`', '\nid', "'", '"', ' && reboot', '| sh', '> /etc/passwd', '\\', '${IFS}'];
const SHELL_FIELDS: Array<[string, string]> = [
  ['guests.vllm.hostname', 'vllm'],
  ['proxmox.host', '10.0.50.10'],
  ['proxmox.node', 'pve'],
  ['admin.user', 'claude'],
  ['proxmox.ssh.user', 'root'],
  ['repo.path', '/opt/vllm'],
  ['guests.vllm.template', 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst'],
  ['guests.vllm.storage', 'local-lvm'],
  ['backup.storage', 'local'],
  ['model.id', 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ'],
  ['repo.ref', 'v0.6.4'],
  ['repo.url', 'https://github.com/vllm-project/vllm.git'],
  ['vllm.image', 'vllm/vllm-openai:v0.6.4.post1'],
  ['guests.vllm.endpoint', 'http://10.0.50.117:8000'],
  ['gpu.model', 'NVIDIA GeForce RTX 4070 Ti SUPER'],
  ['proxmox.api.tokenId', 'root@pam!pve-vllm'],
];
for (const [path, good] of SHELL_FIELDS) {
  for (const injection of INJECTIONS) TABLE.push(bad(`${path} + ${JSON.stringify(injection)}`, path, `${good}${injection}`));
}
for (const injection of ['$(id)', '`id`', "x'y", '; rm -rf /']) {
  TABLE.push(bad(`secret file path + ${JSON.stringify(injection)}`, 'admin.privateKey', { file: `~/.ssh/key${injection}` }, { path: 'admin.privateKey.file' }));
}

describe('malformed configs', () => {
  it.each(TABLE.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const problems = problemsOf(...c.change);
    const named = problems.filter((p) => p.path === c.path);
    if (!named.length) throw new Error(`no problem names ${c.path}; got:\n${formatProblems(problems)}`);
    const text = formatProblems(problems);
    // One line per problem, and each names the field, the value given and what is allowed.
    expect(text.split('\n')).toHaveLength(problems.length);
    for (const p of named) {
      const line = formatProblems([p]);
      expect(line.startsWith(`config error: ${c.path}: got `)).toBe(true);
      expect(p.allowed.length).toBeGreaterThan(2);
      expect(line).toContain(`; allowed: ${p.allowed}`);
      if (c.given !== undefined) expect(line).toContain(c.given);
    }
    if (c.secret) {
      expect(text).not.toContain(c.secret);
      expect(JSON.stringify(problems)).not.toContain(c.secret);
    }
  });

  it('reports every problem of a file at once', () => {
    const problems = problemsOf(set('guests.vllm.id', 50), set('vllm.image', 'x:latest'), set('decisions.frontend', 'ollama'), set('guests.vllm.network.gateway', '10.9.9.9'));
    expect(problems.map((p) => p.path).sort()).toEqual(['decisions.frontend', 'guests.vllm.id', 'guests.vllm.network.gateway', 'vllm.image']);
  });

  it('says why contradictory decisions contradict', () => {
    const [p] = problemsOf(set('decisions.openwebui', 'scrap')).filter((x) => x.path === 'decisions.frontend');
    expect(p.message).toMatch(/scrap destroys OpenWebUI CT 116/);
  });

  it('suggests the key a misspelling meant', () => {
    const [p] = problemsOf(set('proxmox.api.tokenSecert', { env: 'X' })).filter((x) => x.path === 'proxmox.api.tokenSecert');
    expect(p.message).toMatch(/did you mean tokenSecret/);
    expect(p.allowed).toMatch(/port, tokenId, tokenSecret, tls/);
  });

  it('names the shell characters it refused', () => {
    const [p] = problemsOf(set('admin.user', 'claude$(id)')).filter((x) => x.path === 'admin.user');
    expect(p.message).toContain('"$"');
  });

  it('keeps terminal control characters out of the report', () => {
    const text = formatProblems(problemsOf(set('guests.vllm.hostname', 'vllm\u001b[2J\u009b31m'), set('model.spec', { id: 'x\u001b[31m/y' })));
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });

  it('rejects a document that is not a mapping', () => {
    const result = validateConfig(['a', 'list']);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(formatProblems(result.problems)).toMatch(/^config error: \(top level\): got a list of 2 items; allowed: a section with the keys proxmox, gpu/);
  });
});
