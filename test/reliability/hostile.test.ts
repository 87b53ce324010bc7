// Hostile strings in the lab's own config: refused naming the field, or deployed and arriving as one
// literal argument with nothing else run; invalid decisions refused by the update validator, run waiting.
import { hostileCheck } from '../../src/reliability/hostile';
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

it('refuses or neutralises every hostile string, and refuses every invalid decision while the run waits', async () => {
  const r = await hostileCheck(env);
  process.stderr.write(`[hostile] ${r.tried} tried, ${r.rejected} refused; deployed: ${JSON.stringify(r.deployed)}\n`);
  expect(r.problems).toEqual([]);
  expect(r.misnamed).toEqual([]);
  expect(r.decisionsRefused).toBe(r.decisionsTried);
  expect(r.decisionsTried).toBeGreaterThanOrEqual(10);
  expect(r.deployed.map((d) => d.field)).toEqual(r.accepted.map((a) => a.field));
});
