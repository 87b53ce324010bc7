/**
 * The config the lab writes for itself (src/lab writeConfig) must pass the same validation as a user's file:
 * the lab is the stand-in for a real host, so its config may not take shortcuts the schema refuses.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatProblems, loadConfig, resolveSecret } from '../../src/config/load';
import { startLab, type Lab } from '../../src/lab';

describe('the lab config', () => {
  let lab: Lab;
  let dir: string;

  beforeAll(async () => {
    lab = await startLab({ timeScale: 0.05 });
    dir = mkdtempSync(join(tmpdir(), 'pve-vllm-labcfg-'));
  });
  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('validates, points at loopback only, and its secret files resolve to the lab secrets', async () => {
    const path = join(dir, 'lab.yaml');
    await lab.writeConfig(path);
    const result = loadConfig(path);
    if (!result.ok) throw new Error(formatProblems(result.problems));
    const c = result.config;
    expect(c.proxmox.host).toBe('127.0.0.1');
    for (const url of [c.guests.vllm.endpoint, c.guests.openwebui?.url, c.guests.comfyui?.url]) {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    }
    expect(resolveSecret(c.proxmox.api.tokenSecret, result.configDir)).toBe(lab.secrets.tokenSecret);
    expect(resolveSecret(c.vllm.apiKey, result.configDir)).toBe(lab.secrets.vllmApiKey);
  });
});
