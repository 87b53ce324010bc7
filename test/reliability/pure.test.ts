// The pure parts of the reliability harness: journal comparison, host-state check, secret needles, tables.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JournalEntry } from '../../src/lab/state';
import { compareJournals, normalizeDetail } from '../../src/reliability/journal';
import { needlesOf, scanText, secretsOfConfig, textsOf, uniqueSecrets } from '../../src/reliability/secret-scan';
import { exitCodeOf, summaryTable } from '../../src/reliability/summary';
import { renderTable } from '../../src/reliability/table';

const e = (seq: number, op: string, detail: string, guest?: number): JournalEntry => ({ seq, at: new Date(seq * 1000).toISOString(), via: 'ssh', op, detail, ...(guest ? { guest } : {}) });

describe('journal comparison', () => {
  it('finds nothing between two runs that differ only in task ids, MACs, pids and times', () => {
    const a = [e(1, 'ct.create', 'create vllm', 117), e(2, 'ct.config', 'net0 hwaddr=BC:24:11:AA:BB:CC UPID:pve:0001:abc', 117), e(3, 'docker pull', 'sha256:0123456789abcdef0123 pid 123456')];
    const b = [e(7, 'ct.create', 'create vllm', 117), e(8, 'ct.config', 'net0 hwaddr=BC:24:11:11:22:33 UPID:pve:0009:def', 117), e(9, 'docker pull', 'sha256:fedcba9876543210fedc pid 654321')];
    expect(compareJournals(a, b)).toEqual({ duplicated: [], missing: [] });
  });

  it('counts an operation applied again as a duplicated side effect, and one never done as missing', () => {
    const ref = [e(1, 'vm.stop', 'stop', 151), e(2, 'vm.config', 'onboot=0', 151)];
    const crashed = [e(1, 'vm.stop', 'stop', 151), e(2, 'vm.stop', 'stop', 151), e(3, 'useradd', 'claude')];
    const c = compareJournals(ref, crashed);
    expect(c.duplicated.map((d) => `${d.kind} ${d.op}`)).toEqual(['sameKey vm.stop', 'newKey useradd']);
    expect(c.missing.map((d) => d.op)).toEqual(['vm.config']);
  });

  it('keeps what makes an effect different (values, paths, guests)', () => {
    expect(normalizeDetail('memory=8192 cores=4')).toBe('memory=8192 cores=4');
    expect(compareJournals([e(1, 'ct.config', 'memory=8192', 116)], [e(1, 'ct.config', 'memory=4096', 116)]).duplicated).toHaveLength(1);
    expect(compareJournals([e(1, 'ct.config', 'memory=8192', 116)], [e(1, 'ct.config', 'memory=8192', 118)]).duplicated).toHaveLength(1);
  });
});

describe('secret scan', () => {
  const pem = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDQ2YcGUtjWkGqL1nCkQtMmbPZ3lUeQxqKtV0ESpKqvXwAAAJgAAAAA\n-----END OPENSSH PRIVATE KEY-----\n';

  it('reads { file } and { env } references of a config, by YAML path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'secret-scan-'));
    writeFileSync(join(dir, 'token'), '0b4c0f5e-7d0e-4a33-9d62-8f5a6c2e1d00\n');
    writeFileSync(join(dir, 'c.yaml'), 'proxmox:\n  api:\n    tokenSecret: { file: token }\nvllm:\n  apiKey: { env: RELIABILITY_TEST_KEY }\n');
    expect(secretsOfConfig(join(dir, 'c.yaml'), { RELIABILITY_TEST_KEY: 'sk-test-abcdefgh' })).toEqual([
      { name: 'proxmox.api.tokenSecret', value: '0b4c0f5e-7d0e-4a33-9d62-8f5a6c2e1d00' },
      { name: 'vllm.apiKey', value: 'sk-test-abcdefgh' },
    ]);
  });

  it('finds a secret plain, base64-encoded, JSON-escaped, or a single line of a private key', () => {
    const secrets = uniqueSecrets([{ name: 'key', value: 'sk-very-secret-1234' }, { name: 'pem', value: pem.trim() }]);
    expect(scanText('a', 'Authorization: Bearer sk-very-secret-1234', secrets).map((f) => f.form)).toEqual(['plain']);
    expect(scanText('b', `data=${Buffer.from('sk-very-secret-1234').toString('base64')}`, secrets).map((f) => f.form)).toEqual(['base64']);
    expect(scanText('c', JSON.stringify({ k: pem }), secrets).map((f) => `${f.secret} ${f.form}`)).toEqual(['pem json-escaped']);
    expect(scanText('d', 'QyNTUxOQAAACDQ2YcGUtjWkGqL1nCkQtMmbPZ3lUeQxqKtV0ESpKqvXwAAAJgAAAAA', secrets).map((f) => f.form)).toEqual(['line 3']);
    expect(scanText('e', 'nothing to see', secrets)).toEqual([]);
    expect(scanText('f', 'a <key> ref', secrets)).toEqual([]);
  });

  it('masks the secret in the reported context', () => {
    const [f] = scanText('log', 'x token=sk-very-secret-1234 y', [{ name: 'vllm.apiKey', value: 'sk-very-secret-1234' }]);
    expect(f?.context).toBe('x token=<vllm.apiKey> y');
  });

  it('decodes byte arrays (history payloads) when collecting texts', () => {
    expect(textsOf({ a: [{ data: Buffer.from('"hello"') }], b: 'x' })).toEqual(['"hello"', 'x']);
  });

  it('never looks for short values (they would match everywhere)', () => {
    expect(uniqueSecrets([{ name: 'a', value: 'abc' }])).toEqual([]);
    expect(needlesOf({ name: 'a', value: 'abcdefgh' }).map((n) => n.form)).toContain('plain');
  });
});

describe('summary', () => {
  const zero = { runs: 3, killPoints: 2, faultsInjected: 1, badInputsTried: 400, badInputsMishandled: 0, secretsFound: 0, duplicatedSideEffects: 0, hostStatesLost: 0, runsNotAsExpected: 0 };
  it('passes when nothing was mishandled, however many bad inputs were tried', () => expect(exitCodeOf(zero)).toBe(0));
  it.each(['badInputsMishandled', 'secretsFound', 'duplicatedSideEffects', 'hostStatesLost', 'runsNotAsExpected'] as const)('fails when %s is not 0', (k) => {
    expect(exitCodeOf({ ...zero, [k]: 1 })).toBe(1);
  });
  it('prints one table with every count', () => {
    const t = summaryTable(zero).split('\n');
    expect(t).toHaveLength(3);
    expect(t[0]).toMatch(/^runs +kill points +faults injected +bad inputs tried .*host states lost/);
    expect(renderTable(['a', 'bb'], [[1, 'x']])).toBe('a  bb\n-  --\n1  x');
  });
});
