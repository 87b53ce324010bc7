// Every activity heartbeats (so a killed worker is noticed fast) and turns permanent adapter errors into
// non-retryable failures; checked in Temporal's MockActivityEnvironment.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CHECKPOINT_LOOKS, heartbeatEveryMs, instrument, lookAgain, reportProgress } from '../../src/activities/deps';
import { HostKeyMismatchError, SshConnectionError } from '../../src/adapters/errors';

describe('instrument()', () => {
  it('heartbeats every second with reported progress, and not at all for a step that ends sooner', async () => {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const act = instrument(async () => {
      reportProgress('pulling vllm/vllm-openai: 3/12 layers');
      await new Promise((r) => setTimeout(r, 1100));
      return 'ok';
    });
    await expect(env.run(act)).resolves.toBe('ok');
    // reportProgress's own beat, then the 1 s tick carrying the same text.
    expect(beats).toEqual(['pulling vllm/vllm-openai: 3/12 layers', 'pulling vllm/vllm-openai: 3/12 layers']);

    const quiet: unknown[] = [];
    const env2 = new MockActivityEnvironment();
    env2.on('heartbeat', (d: unknown) => quiet.push(d));
    await expect(env2.run(instrument(async () => 'fast'))).resolves.toBe('fast');
    expect(quiet).toEqual([]);
  });

  it('ticks at half the heartbeat timeout: a step shorter than that sends no heartbeat at all', async () => {
    expect(heartbeatEveryMs(5000)).toBe(2500); // the deploy's steps
    expect(heartbeatEveryMs(1200)).toBe(1000); // never more often than once a second
    expect(heartbeatEveryMs(undefined)).toBe(1000);
    const beats: number[] = [];
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 3000 });
    const started = Date.now();
    env.on('heartbeat', () => beats.push(Date.now() - started));
    await expect(env.run(instrument(async () => new Promise((r) => setTimeout(() => r('ok'), 1400))))).resolves.toBe('ok');
    expect(beats).toEqual([]);
    await expect(env.run(instrument(async () => new Promise((r) => setTimeout(() => r('ok'), 1700))))).resolves.toBe('ok');
    expect(beats).toHaveLength(1);
    expect(beats[0]).toBeGreaterThanOrEqual(1400 + 1500);
  });

  it('marks permanent adapter errors non-retryable with their class name as the type', async () => {
    const env = new MockActivityEnvironment();
    const act = instrument(async () => {
      throw new HostKeyMismatchError('root@10.0.50.10:22', 'SHA256:aaa', 'SHA256:bbb');
    });
    const err = (await env.run(act).catch((e: unknown) => e)) as ApplicationFailure;
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.nonRetryable).toBe(true);
    expect(err.type).toBe('HostKeyMismatchError');
    expect(err.message).toMatch(/expected SHA256:aaa, got SHA256:bbb/);
  });

  it('lets retryable errors through unchanged so Temporal retries them', async () => {
    const env = new MockActivityEnvironment();
    const act = instrument(async () => {
      throw new SshConnectionError('root@h:22', 'connection reset');
    });
    const err = await env.run(act).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshConnectionError);
    expect((err as Error).name).toBe('SshConnectionError');
  });
});

describe('lookAgain() (checkpoints)', () => {
  it('passes on a later look when the host catches up', async () => {
    const looks: number[] = [];
    const started = Date.now();
    const got = await new MockActivityEnvironment().run(() =>
      lookAgain(async () => {
        looks.push(Date.now() - started);
        return looks.length < 2 ? { notYet: 'sudo -n true -> exit 1' } : { ok: 'evidence' };
      }),
    );
    expect(got).toBe('evidence');
    expect(looks).toHaveLength(2);
    expect(looks[1]! - looks[0]!).toBeGreaterThanOrEqual(CHECKPOINT_LOOKS.gapMs - 50);
  });

  it('fails for good with the last reason after its looks', async () => {
    let n = 0;
    const err = (await new MockActivityEnvironment()
      .run(() => lookAgain(async () => ({ notYet: `checkpoint 1 failed: look ${++n}` })))
      .catch((e: unknown) => e)) as ApplicationFailure;
    expect(n).toBe(CHECKPOINT_LOOKS.tries);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.nonRetryable).toBe(true);
    expect(err.type).toBe('CheckpointFailed');
    expect(err.message).toContain(`checkpoint 1 failed: look ${CHECKPOINT_LOOKS.tries}`);
    expect(err.message).toContain(`looked ${CHECKPOINT_LOOKS.tries} times`);
  }, 15_000);

  it('stops looking when the activity is cancelled', async () => {
    const env = new MockActivityEnvironment();
    let n = 0;
    const run = env.run(() => lookAgain(async () => ({ notYet: `look ${++n}` })));
    setTimeout(() => env.cancel(), 200);
    await expect(run).rejects.toThrow();
    expect(n).toBe(1);
  });
});

