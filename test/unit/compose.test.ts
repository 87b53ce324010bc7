// docker-compose.temporal.yml: Docker cannot run here, so the service graph is checked by reading it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DYNAMIC_CONFIG } from '../../src/temporal/dev-server';

interface Service {
  image: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  volumes?: string[];
  restart?: string;
  command?: string[];
}

const text = readFileSync(join(__dirname, '..', '..', 'docker-compose.temporal.yml'), 'utf8');
const doc = parse(text) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const s = doc.services;

describe('docker-compose.temporal.yml', () => {
  it('has PostgreSQL, schema setup, server, namespace creation and the UI', () => {
    expect(Object.keys(s).sort()).toEqual(['postgresql', 'temporal', 'temporal-create-namespace', 'temporal-schema', 'temporal-ui']);
  });

  it('pins every image to a version (no latest, no bare name)', () => {
    for (const [name, svc] of Object.entries(s)) {
      expect({ name, image: svc.image }).toEqual({ name, image: expect.stringMatching(/^[a-z0-9/_-]+:\d[\w.-]*$/) });
    }
    expect(s.postgresql.image).toMatch(/^postgres:16(\.|$)/);
    expect(s['temporal-schema'].image).toMatch(/^temporalio\/admin-tools:/);
    expect(s.temporal.image).toMatch(/^temporalio\/server:/);
    expect(s['temporal-ui'].image).toMatch(/^temporalio\/ui:/);
    // the server and its schema tool come from the same release
    expect(s.temporal.image.split(':')[1]).toBe(s['temporal-schema'].image.split(':')[1]);
  });

  it('keeps PostgreSQL data in a named volume', () => {
    expect(s.postgresql.volumes).toContain('temporal-pg:/var/lib/postgresql/data');
    expect(doc.volumes).toHaveProperty('temporal-pg');
  });

  it('orders start-up with health and completion conditions', () => {
    expect(s['temporal-schema'].depends_on).toEqual({ postgresql: { condition: 'service_healthy' } });
    expect(s.temporal.depends_on).toEqual({ 'temporal-schema': { condition: 'service_completed_successfully' } });
    expect(s['temporal-create-namespace'].depends_on).toEqual({ temporal: { condition: 'service_healthy' } });
    expect(s['temporal-ui'].depends_on).toEqual({ temporal: { condition: 'service_healthy' } });
    for (const name of ['postgresql', 'temporal', 'temporal-ui']) expect(s[name].healthcheck?.test.length).toBeGreaterThan(1);
  });

  it('runs the one-shot services once and makes them safe to repeat', () => {
    expect(s['temporal-schema'].restart).toBe('no');
    const schema = (s['temporal-schema'].command ?? []).join('\n');
    expect(schema).toContain('create');
    expect(schema).toContain('setup-schema -v 0.0');
    expect(schema).toContain('update-schema');
    const ns = (s['temporal-create-namespace'].command ?? []).join('\n');
    expect(ns).toMatch(/namespace describe[\s\S]*\|\|[\s\S]*namespace create/);
  });

  it('binds published ports to 127.0.0.1 by default', () => {
    const ports = Object.values(s).flatMap((x) => x.ports ?? []);
    expect(ports.length).toBeGreaterThan(0);
    for (const p of ports) expect(p).toMatch(/^\$\{TEMPORAL_BIND:-127\.0\.0\.1\}:\d+:\d+$/);
  });

  it('does not carry the upstream sample\'s MAX_ATTdMPTS typo', () => {
    expect(text).not.toMatch(/ATTdMPTS/);
    // every shell variable the namespace script reads is set before use
    const svc = s['temporal-create-namespace'] as Service & { environment?: Record<string, string> };
    const ns = (svc.command ?? []).join('\n');
    const defined = new Set([...Object.keys(svc.environment ?? {}), ...[...ns.matchAll(/(\w+)=/g)].map((m) => m[1])]);
    const used = [...ns.matchAll(/\$\$(\w+)/g)].map((m) => m[1]);
    expect(used.length).toBeGreaterThan(0);
    for (const v of used) expect({ v, defined: defined.has(v as string) }).toEqual({ v, defined: true });
  });

  it('gives the production server the step-latency settings the dev server gets', () => {
    const dyn = parse(readFileSync(join(__dirname, '..', '..', 'deploy', 'temporal', 'dynamicconfig', 'pve-vllm.yaml'), 'utf8')) as Record<string, Array<{ value: unknown }>>;
    for (const [key, value] of Object.entries(DYNAMIC_CONFIG)) {
      expect({ key, value: String(dyn[key]?.[0]?.value) }).toEqual({ key, value });
    }
  });
});
