// The connection flags' parsers: what users really write is taken, what the SDK would choke on is refused.
import { InvalidArgumentError } from 'commander';
import { parseAddress, parseName, parseWebUrl } from '../../src/cli/connection';

describe('--address', () => {
  it.each(['localhost:7233', 'localhost', '127.0.0.1:7233', '[::1]:7233', '[::1]', 'temporal_frontend:7233', 'temporal.example.com.:7233', 'temporal-frontend.temporal.svc.cluster.local:443'])(
    'takes %s',
    (v) => expect(parseAddress(v)).toBe(v),
  );
  it('takes an empty value (an empty TEMPORAL_ADDRESS) as the default', () => expect(parseAddress('')).toBe('localhost:7233'));
  it.each(['host:abc', '127.0.0.1:99999', 'host:0', 'a b:7233', ':7233', 'http://localhost:7233', 'host:7233:1'])('refuses %s, naming it and what is allowed', (v) => {
    expect(() => parseAddress(v)).toThrow(InvalidArgumentError);
    expect(() => parseAddress(v)).toThrow(`--address: got ${JSON.stringify(v)}; allowed: host or host:port`);
  });
});

describe('--namespace and --task-queue', () => {
  const ns = parseName('--namespace', 'default');
  it('takes a name, and an empty value as the default', () => {
    expect(ns('pve-lab')).toBe('pve-lab');
    expect(ns('')).toBe('default');
  });
  it.each(['two words', 'tab\there', 'x'.repeat(256)])('refuses %j', (v) => expect(() => ns(v)).toThrow(/--namespace: got .*; allowed: 1 to 255 characters/));
});

describe('--ui-url', () => {
  it('takes http and https URLs, and an empty value as "derive it from --address"', () => {
    expect(parseWebUrl('http://localhost:8233')).toBe('http://localhost:8233');
    expect(parseWebUrl('https://temporal.example.com/ui')).toBe('https://temporal.example.com/ui');
    expect(parseWebUrl('')).toBeUndefined();
  });
  it.each(['ftp://host', 'localhost:8233', 'not a url'])('refuses %j', (v) => expect(() => parseWebUrl(v)).toThrow(/--ui-url: got .*; allowed: an http/));
});
