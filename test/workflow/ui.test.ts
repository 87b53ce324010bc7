// The user's view: a real browser (Debian's chromium via playwright-core) reads the run in the Temporal Web UI.
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startDevServer, DevServer } from '../../src/temporal/dev-server';
import { runDeploy, withClient } from '../harness/deploy-run';

jest.setTimeout(240_000);

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

describe('Temporal Web UI', () => {
  let server: DevServer;
  beforeAll(async () => {
    server = await startDevServer({ uiPort: await freePort() });
  });
  afterAll(async () => server?.stop());

  it('shows the deploy, its step summaries and its checkpoints (screenshot in test-output/)', async () => {
    if (!CHROMIUM) throw new Error('chromium is not installed: apt-get install -y chromium (.ci/run does this)');
    const { progress, lab, workflowId } = await runDeploy({ address: server.address, decide: { openwebui: 'keep', frontend: 'openwebui' } });
    await lab.stop();
    expect(progress.status).toBe('completed');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1500, height: 2400 } });
      const runId = await withClient((c) => c.workflow.getHandle(workflowId).describe().then((d) => d.runId), server.address);
      await page.goto(`${server.uiUrl}/namespaces/default/workflows/${workflowId}/${runId}/history`, { waitUntil: 'networkidle' });
      await page.getByText(workflowId).first().waitFor({ timeout: 30_000 });
      await page.getByText('Release GPU 0000:01:00.0 from VM 151').first().waitFor({ timeout: 30_000 });
      const text = await page.locator('body').innerText();
      expect(text).toContain('Completed');
      for (const summary of ['Create sudo user claude', 'Checkpoint 3: nvidia-smi in CT 117', 'Checkpoint 6: chat completion through openwebui']) {
        expect(text).toContain(summary);
      }
      mkdirSync(join(__dirname, '..', '..', 'test-output'), { recursive: true });
      await page.screenshot({ path: join(__dirname, '..', '..', 'test-output', 'temporal-ui-deploy.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
