/**
 * Loading the deploy config from disk (missing files, YAML syntax errors with their line, overrides from the
 * command line, defaults) and resolving secret references on the worker side.
 */
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { formatProblems, loadConfig, resolveSecret, SecretUnavailableError } from '../../src/config/load';
import { DEFAULT_IMAGE } from '../../src/config/schema';

const FIXTURES = join(__dirname, '../fixtures/configs');
const EXAMPLE = join(__dirname, '../../examples/seed-lab.yaml');

function problemsText(file: string, overrides?: Parameters<typeof loadConfig>[1]): string {
  const result = loadConfig(file, overrides);
  if (result.ok) throw new Error('expected the config to be rejected');
  return formatProblems(result.problems);
}

describe('loadConfig', () => {
  it('loads the example and reports the directory that relative { file } references start from', () => {
    const result = loadConfig(EXAMPLE);
    if (!result.ok) throw new Error(formatProblems(result.problems));
    expect(result.configDir).toBe(dirname(EXAMPLE));
    expect(result.config.guests.vllm.id).toBe(117);
  });

  it('fills the defaults a homelab user expects', () => {
    const result = loadConfig(join(FIXTURES, 'minimal.yaml'));
    if (!result.ok) throw new Error(formatProblems(result.problems));
    const c = result.config;
    expect(c.proxmox.api.port).toBe(8006);
    expect(c.proxmox.ssh).toMatchObject({ port: 22, user: 'root' });
    expect(c.vllm).toMatchObject({ port: 8000, image: DEFAULT_IMAGE });
    expect(c.model).toMatchObject({ id: 'mistralai/Mistral-7B-Instruct-v0.2', gpuMemoryUtilization: 0.9, cpuOffloadGb: 0, allowContextReduction: true });
    expect(c.model.maxModelLen).toBeUndefined();
    expect(c.guests.vllm).toMatchObject({ hostname: 'vllm', storage: 'local-lvm', network: { bridge: 'vmbr0', ip: 'dhcp' } });
    expect(c.guests.vllm.endpoint).toBeUndefined();
    expect(c.repo).toEqual({ url: 'https://github.com/vllm-project/vllm.git', ref: 'v0.6.4', path: '/opt/vllm' });
    expect(c.decisions).toEqual({ timeout: '24h', timeoutMs: 86400000 });
    expect(c.backup).toEqual({ beforeScrap: true, storage: 'local' });
    expect(c.gpu.pciAddress).toBe('0000:0a:00.0');
    expect(c.guests.openwebui).toBeUndefined();
  });

  it('reports a missing file as one problem', () => {
    const result = loadConfig(join(FIXTURES, 'does-not-exist.yaml'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(1);
    expect(formatProblems(result.problems)).toMatch(/^config error: --config: got ".*does-not-exist\.yaml"; allowed: a readable YAML .* — no such file$/);
  });

  it('reports a YAML syntax error with its line and column', () => {
    const text = problemsText(join(FIXTURES, 'syntax-error.yaml'));
    expect(text).toMatch(/syntax-error\.yaml:4:\d+: got a YAML syntax error \(\w+\); allowed: well-formed YAML/);
    expect(text).toMatch(/— line 4, column \d+: /);
  });

  it('refuses a key written twice, naming the line', () => {
    expect(problemsText(join(FIXTURES, 'duplicate-key.yaml'))).toMatch(/duplicate-key\.yaml:4:\d+: .*line 4/);
  });

  it('never quotes the source line of a syntax error (it may hold a secret)', () => {
    const text = problemsText(join(FIXTURES, 'inline-secret-syntax.yaml'));
    expect(text).toMatch(/inline-secret-syntax\.yaml:\d+:\d+/);
    expect(text).not.toContain('0f3c2b8e');
  });

  it('refuses YAML tags, which would change what a value means', () => {
    const text = problemsText(join(FIXTURES, 'tags.yaml'));
    expect(text.split('\n')).toHaveLength(3);
    expect(text).toMatch(/tags\.yaml:3:\d+: got a YAML tag .*line 3/);
    expect(text).toMatch(/tags\.yaml:4:\d+: /);
    expect(text).toMatch(/tags\.yaml:5:\d+: /);
  });

  it('refuses a document that is not a mapping', () => {
    expect(problemsText(join(FIXTURES, 'not-a-mapping.yaml'))).toMatch(/^config error: \(top level\): got a list of 2 items/);
  });

  it('treats keys named like Object.prototype members as unknown keys', () => {
    const text = problemsText(join(FIXTURES, 'prototype-keys.yaml'), { model: 'mistral-7b' });
    for (const key of ['__proto__', 'constructor', 'proxmox.toString', 'proxmox.hasOwnProperty']) {
      expect(text).toContain(`config error: ${key}: got the unknown key`);
    }
    expect(text).not.toMatch(/\(from (function|\[object)/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('applies --model and --max-model-len over the file', () => {
    const result = loadConfig(EXAMPLE, { model: 'qwen2.5-7b-instruct', maxModelLen: 8192 });
    if (!result.ok) throw new Error(formatProblems(result.problems));
    expect(result.config.model).toMatchObject({ id: 'Qwen/Qwen2.5-7B-Instruct', maxModelLen: 8192 });
  });

  it('lowers the config\'s context to a --model\'s native one, and says so; an explicit --max-model-len stays', () => {
    const phi = loadConfig(EXAMPLE, { model: 'microsoft/phi-2' });
    if (!phi.ok) throw new Error(formatProblems(phi.problems));
    expect(phi.config.model).toMatchObject({ id: 'microsoft/phi-2', maxModelLen: 2048 });
    expect(phi.notes).toEqual(['--model microsoft/phi-2: model.maxModelLen 16384 is above its native context; using 2048 (pass --max-model-len to choose)']);
    const longer = loadConfig(EXAMPLE, { model: 'qwen2.5-7b-instruct' });
    expect(longer.ok && { len: longer.config.model.maxModelLen, notes: longer.notes }).toEqual({ len: 16384, notes: [] });
    const asked = loadConfig(EXAMPLE, { model: 'microsoft/phi-2', maxModelLen: 4096 });
    expect(asked.ok && { len: asked.config.model.maxModelLen, notes: asked.notes }).toEqual({ len: 4096, notes: [] });
  });

  it('says when a bad value came from the command line', () => {
    expect(problemsText(EXAMPLE, { model: 'nobody/nothing' })).toMatch(/^config error: model\.id: got "nobody\/nothing"; allowed: .* — \(from --model\) unknown model/);
    expect(problemsText(EXAMPLE, { maxModelLen: 0 })).toMatch(/^config error: model\.maxModelLen: got 0; .* — \(from --max-model-len\)/);
    expect(problemsText(EXAMPLE, { model: 'x; rm -rf /' })).toMatch(/model\.id: got "x; rm -rf \/".*\(from --model\)/);
    // A flag parser hands over NaN for `--max-model-len abc`.
    expect(problemsText(EXAMPLE, { maxModelLen: Number('abc') })).toMatch(/^config error: model\.maxModelLen: got NaN; allowed: a context length/);
  });
});

describe('examples/', () => {
  const dir = join(__dirname, '../../examples');
  it.each(readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)))('%s validates', (file) => {
    const result = loadConfig(join(dir, file));
    if (!result.ok) throw new Error(formatProblems(result.problems));
  });
});

describe('resolveSecret', () => {
  let dir: string;
  const SECRET = 'd2f1a0c4-5b6e-4f70-8a91-b2c3d4e5f607';

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pve-vllm-config-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    delete process.env.PVE_VLLM_TEST_SECRET;
  });

  it('reads an environment variable', () => {
    process.env.PVE_VLLM_TEST_SECRET = SECRET;
    expect(resolveSecret({ env: 'PVE_VLLM_TEST_SECRET' }, dir)).toBe(SECRET);
  });

  it('names an unset variable without guessing at values', () => {
    expect(() => resolveSecret({ env: 'PVE_VLLM_TEST_SECRET' }, dir)).toThrow(SecretUnavailableError);
    expect(() => resolveSecret({ env: 'PVE_VLLM_TEST_SECRET' }, dir)).toThrow(/\{ env: PVE_VLLM_TEST_SECRET \} is not set/);
  });

  it('reads a file relative to the config directory, dropping the trailing newline', () => {
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets', 'token'), `${SECRET}\n`, { mode: 0o600 });
    expect(resolveSecret({ file: 'secrets/token' }, dir)).toBe(SECRET);
    expect(resolveSecret({ file: join(dir, 'secrets', 'token') }, '/nonexistent')).toBe(SECRET);
  });

  it('keeps a private key intact apart from the final newline', () => {
    const pem = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
    writeFileSync(join(dir, 'key'), pem);
    expect(resolveSecret({ file: './key' }, dir)).toBe(pem.slice(0, -1));
  });

  it('expands ~/ to the home directory of the worker', () => {
    const home = process.env.HOME;
    process.env.HOME = dir;
    try {
      writeFileSync(join(dir, 'pw'), 'root-pw');
      expect(resolveSecret({ file: '~/pw' }, '/elsewhere')).toBe('root-pw');
    } finally {
      process.env.HOME = home;
    }
  });

  it('names a missing or empty file, never its content', () => {
    expect(() => resolveSecret({ file: 'missing' }, dir)).toThrow(/\{ file: missing \} cannot be read from .*missing \(ENOENT\)/);
    writeFileSync(join(dir, 'empty'), '\n');
    expect(() => resolveSecret({ file: 'empty' }, dir)).toThrow(/is empty/);
  });

  it('refuses something that is not a reference', () => {
    expect(() => resolveSecret({} as never, dir)).toThrow(SecretUnavailableError);
    expect(() => resolveSecret(SECRET as never, dir)).toThrow(SecretUnavailableError);
    try {
      resolveSecret(SECRET as never, dir);
    } catch (err) {
      expect(String(err)).not.toContain(SECRET);
    }
  });
});
