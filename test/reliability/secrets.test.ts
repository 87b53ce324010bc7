// After a full happy run and a compensated vllm-oom run (worker in its own process), and one `pve-vllm demo`,
// no secret of the run is in any history, worker log, CLI output or lab journal.
import { SECRET_SCENARIOS, scanDemo, secretsCheck } from '../../src/reliability/secrets';
import { openEnv, type Env } from '../../src/reliability/session';
import { sharedServerAddress, workflowBundlePath } from '../harness/temporal';

jest.setTimeout(20 * 60_000);

let env: Env;
beforeAll(async () => {
  env = await openEnv({ address: sharedServerAddress(), bundlePath: workflowBundlePath() });
});
afterAll(async () => {
  await env?.close();
});

describe('secrets never leave the worker', () => {
  it('are in no history, worker log, CLI output or journal after a happy and a compensated run', async () => {
    const r = await secretsCheck(env, { scenarios: SECRET_SCENARIOS });
    for (const g of r.gaps) process.stderr.write(`[secrets] not scanned: ${g}\n`);
    expect(r.statuses).toEqual(['secrets-happy: completed', 'secrets-vllm-oom: compensated']);
    expect(r.places.filter((p) => p.startsWith('history') && !p.includes('failed')).length).toBe(4);
    expect(r.places.filter((p) => p.startsWith('CLI')).length).toBe(12);
    expect(r.findings).toEqual([]);
  });

  it('are not in the output of `pve-vllm demo --teardown`, which deploys and takes it all back', async () => {
    const d = await scanDemo(['--decide', 'openwebui=keep', '--decide', 'frontend=openwebui', '--teardown'], 'happy', env.workDir);
    expect(d.status).toBe('demo happy exit 0');
    expect(d.output).toMatch(/checkpoint 6 Final integration/);
    expect(d.output).toMatch(/✔ 6\. Forget the deployment[\s\S]*guests now: 116 running, 118 running \(GPU\), 151 running \(GPU\)$/m);
    expect(d.findings).toEqual([]);
  });
});
