// Item 2: the cost of one more SSH step, ours (Temporal activity over the pooled ssh2 connection) against
// Ansible's (a playbook task over OpenSSH with pipelining), both against the same loopback sshd.
// Per-step overhead = (T(N) - T(1)) / (N - 1): start-up and the first connection cancel out.
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { SshPool, type SshTarget } from '../adapters/ssh';
import { quietLogger } from '../worker';
import { findAnsiblePlaybook, prepareAnsible } from './ansible';
import { freshQueue, type BenchContext } from './context';
import { createSshStepActivities } from './ssh-activities';
import { startBenchSshd } from './sshd';
import { checkTarget, emptySection, pairedRatio, repeat, summarize, type Section } from './stats';

export interface StepOverheadOptions {
  runs: number;
  n: number;
}

export async function benchStepOverhead(ctx: BenchContext, opts: StepOverheadOptions): Promise<Section> {
  const out = emptySection();
  const { n, runs } = opts;
  const sshd = await startBenchSshd();
  const pool = new SshPool({ idleTimeoutMs: 60_000 });
  const target: SshTarget = { host: sshd.host, port: sshd.port, username: sshd.user, privateKey: sshd.clientKey, hostKey: sshd.hostKeyFingerprint };
  const ansibleInfo = findAnsiblePlaybook();
  const ansible = ansibleInfo ? prepareAnsible(ansibleInfo, sshd) : undefined;
  try {
    const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows'), logger: quietLogger });
    const taskQueue = freshQueue('steps');
    const worker = await Worker.create({
      connection: ctx.nc,
      taskQueue,
      workflowBundle: bundle,
      activities: createSshStepActivities(pool, target),
    });
    const ours1: number[] = [];
    const oursN: number[] = [];
    const ans1: number[] = [];
    const ansN: number[] = [];
    const handshakesPerRun: number[] = [];
    const noop1: number[] = [];
    const noopN: number[] = [];
    await worker.runUntil(async () => {
      let wf = 0;
      const runOurs = async (steps: number, workflow: 'sshSteps' | 'noopSteps' = 'sshSteps'): Promise<number> => {
        const started = performance.now();
        const ok = await ctx.client.workflow.execute(workflow, { taskQueue, workflowId: `${taskQueue}-${++wf}`, args: [steps] });
        const ms = performance.now() - started;
        if (ok !== steps) throw new Error(`${workflow}(${steps}) completed only ${ok} steps`);
        return ms;
      };
      // Warm-up, not counted: the first connection, Ansible's first ControlPersist master, the worker's caches.
      await runOurs(1);
      await runOurs(n);
      if (ansible) {
        await ansible.run(1);
        await ansible.run(n);
      }
      // Interleaved, so a slow moment of the shared machine hits both tools rather than one.
      for (let i = 0; i < runs; i++) {
        ours1.push(await runOurs(1));
        const before = pool.handshakes;
        oursN.push(await runOurs(n));
        handshakesPerRun.push(pool.handshakes - before);
        if (ansible) {
          ans1.push(await ansible.run(1));
          ansN.push(await ansible.run(n));
        }
        noop1.push(await runOurs(1, 'noopSteps'));
        noopN.push(await runOurs(n, 'noopSteps'));
        ctx.log(`  step overhead run ${i + 1}/${runs}: ours ${fmt(perStep(oursN, ours1, n).at(-1))} ms/step` +
          (ansible ? `, ansible ${fmt(perStep(ansN, ans1, n).at(-1))} ms/step` : ''));
      }
    });
    const oursPer = perStep(oursN, ours1, n);
    out.figures['ours: workflow of 1 SSH step'] = summarize(ours1, 'ms');
    out.figures[`ours: workflow of ${n} SSH steps`] = summarize(oursN, 'ms');
    out.figures['ours: per-step overhead'] = summarize(oursPer, 'ms', `(T(${n}) - T(1)) / ${n - 1}`);
    // 0 when the pooled connection survived since the previous run, 1 when it had idled out while Ansible ran.
    out.figures[`ours: SSH handshakes per ${n}-step workflow`] = summarize(handshakesPerRun, 'handshakes', 'one pooled connection, reused');
    out.targets.push(checkTarget({ figure: 'ours: per-step overhead', op: '<=', limit: 50, unit: 'ms' }, out.figures['ours: per-step overhead']));
    // The split: what the Temporal round trip of a step costs with no SSH at all.
    out.figures['ours: per-step overhead, Temporal only (no-op activity)'] = summarize(perStep(noopN, noop1, n), 'ms');
    if (ansible && ansibleInfo) {
      const ansPer = perStep(ansN, ans1, n);
      out.figures['ansible: playbook of 1 task'] = summarize(ans1, 'ms');
      out.figures[`ansible: playbook of ${n} tasks`] = summarize(ansN, 'ms');
      out.figures['ansible: per-step overhead'] = summarize(ansPer, 'ms', `ansible-core ${ansibleInfo.version}, pipelining, ControlPersist`);
      out.ratios['per-step overhead ours / ansible'] = pairedRatio(oursPer, ansPer);
      out.targets.push(checkTarget({ figure: 'per-step overhead ours / ansible', op: '<=', limit: 0.2, unit: 'x' }, out.ratios['per-step overhead ours / ansible']));
      out.notes.push(`Ansible: ${ansibleInfo.path} (core ${ansibleInfo.version}), pipelining on, gather_facts false, forks 1, default ControlPersist.`);
    } else {
      out.notes.push('ansible-playbook is not installed (Debian: apt-get install -y ansible-core): only our column is measured.');
    }
    // The split's other half: one `/bin/true` through the pooled connection, with no Temporal in between.
    const session = pool.session(target);
    out.figures['ours: SSH exec round trip (pool, no Temporal)'] = summarize(
      await repeat(runs, async () => {
        const started = performance.now();
        for (let i = 0; i < n; i++) await session.exec(['/bin/true']);
        return (performance.now() - started) / n;
      }),
      'ms',
    );
    await pool.close();
    // The pool's promises beyond the per-step figure: an idle connection closes, and the next call reconnects.
    out.figures['ours: reconnect after idle timeout'] = summarize([await idleReconnect(target)], 'handshakes', 'expected 2: closed when idle, reopened on demand');
  } finally {
    await pool.close();
    ansible?.cleanup();
    await sshd.stop();
  }
  return out;
}

function perStep(tn: number[], t1: number[], n: number): number[] {
  return tn.map((t, i) => (t - (t1[i] as number)) / (n - 1));
}

function fmt(v: number | undefined): string {
  return v === undefined ? '-' : v.toFixed(1);
}

async function idleReconnect(target: SshTarget): Promise<number> {
  const pool = new SshPool({ idleTimeoutMs: 200 });
  try {
    await pool.session(target).exec(['/bin/true']);
    await new Promise((r) => setTimeout(r, 500));
    if (pool.openConnections !== 0) throw new Error('the pooled connection stayed open past its idle timeout');
    await pool.session(target).exec(['/bin/true']);
    return pool.handshakes;
  } finally {
    await pool.close();
  }
}
