/**
 * Issue 6 item 2, last point, end to end: an SSH connection dropped mid-command fails the activity attempt
 * promptly with a retryable error, Temporal retries it, and the retry reconnects and succeeds. A host key
 * mismatch, by contrast, is not retried. Real OpenSSH sshd, real Temporal dev server (the shared one from
 * the jest global setup, or a private one when that did not run).
 */
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { SshPool, SshTarget } from '../../src/adapters/ssh';
import { startDevServer, DevServer } from '../../src/temporal/dev-server';
import { startSshd, TestSshd } from './sshd';
import type { SshStepActivities } from './retry-workflow';

let sshd: TestSshd;
let target: SshTarget;
let env: TestWorkflowEnvironment;
let ownServer: DevServer | undefined;
const pool = new SshPool();
const attempts: Array<{ attempt: number; outcome: string; ms: number }> = [];

const activities: SshStepActivities = {
  async sshStep(scenario) {
    const { attempt } = Context.current().info;
    const started = Date.now();
    const t = scenario === 'wrong-host-key' ? { ...target, hostKey: sshd.otherHostKeyFingerprint } : target;
    try {
      // First attempt: the command kills its own sshd session process, which drops the connection.
      const argv = attempt === 1 ? ['bash', '-c', 'kill -9 $PPID; sleep 30'] : ['echo', 'reconnected'];
      const res = await pool.session(t).exec(argv, { timeoutMs: 20_000 });
      attempts.push({ attempt, outcome: 'ok', ms: Date.now() - started });
      return { stdout: res.stdout, attempt };
    } catch (err) {
      attempts.push({ attempt, outcome: (err as Error).name, ms: Date.now() - started });
      throw err;
    }
  },
};

beforeAll(async () => {
  sshd = await startSshd();
  target = { host: sshd.host, port: sshd.port, username: 'root', privateKey: sshd.clientKey, hostKey: sshd.hostKeyFingerprint };
  const address = process.env.PVE_VLLM_TEST_TEMPORAL_ADDRESS;
  if (address) {
    env = await TestWorkflowEnvironment.createFromExistingServer({ address, namespace: 'default' });
  } else {
    ownServer = await startDevServer();
    env = ownServer.env;
  }
});

afterAll(async () => {
  await pool.close();
  if (ownServer) await ownServer.stop();
  else await env?.teardown();
  await sshd?.stop();
});

async function runScenario(scenario: 'drop-once' | 'wrong-host-key'): Promise<unknown> {
  const taskQueue = `ssh-retry-${scenario}-${process.pid}-${Date.now()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: require.resolve('./retry-workflow'),
    activities,
  });
  return worker.runUntil(
    env.client.workflow.execute('sshStepWorkflow', { taskQueue, workflowId: taskQueue, args: [scenario], workflowExecutionTimeout: '90s' }),
  );
}

it('a dropped connection fails the attempt promptly, Temporal retries, the retry reconnects', async () => {
  attempts.length = 0;
  const handshakesBefore = pool.handshakes;
  const result = await runScenario('drop-once');
  expect(result).toEqual({ stdout: 'reconnected\n', attempt: 2 });
  expect(attempts.map((a) => `${a.attempt}:${a.outcome}`)).toEqual(['1:SshConnectionError', '2:ok']);
  expect(attempts[0].ms).toBeLessThan(5_000); // not the 30 s the command would have slept, nor the 20 s timeout
  expect(pool.handshakes - handshakesBefore).toBe(2);
});

it('a host key mismatch is not retried: the workflow fails with HostKeyMismatchError after one attempt', async () => {
  attempts.length = 0;
  const err = await runScenario('wrong-host-key').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause?.cause as { type?: string; message?: string } | undefined;
  expect(cause?.type).toBe('HostKeyMismatchError');
  expect(cause?.message).toContain(`got ${sshd.hostKeyFingerprint}`);
  expect(attempts.map((a) => `${a.attempt}:${a.outcome}`)).toEqual(['1:HostKeyMismatchError']);
});
