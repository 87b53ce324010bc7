#!/usr/bin/env node
// Records deploy histories from real runs on the lab into test/replay/histories/, for the replay test.
// Run after `npm run build`: node scripts/record-histories.js [NAME…] (the named scenarios only; all by default)
// Re-record only on purpose: a saved history that stops replaying means a workflow change broke determinism.
// Record new scenarios by name: the older histories are what proves that `patched` keeps recorded runs replaying.
const { mkdtempSync, writeFileSync, mkdirSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { Client } = require('@temporalio/client');
const { NativeConnection, Worker } = require('@temporalio/worker');
const { spawnSync } = require('node:child_process');
const { startDevServer } = require('../lib/temporal/dev-server');
const { bundleWorkflows } = require('../lib/worker');
const { createActivities } = require('../lib/activities');
const { createActivityDeps } = require('../lib/activities/deps');
const { loadConfig } = require('../lib/config/load');
const { startLab } = require('../lib/lab');

const SCENARIOS = [
  { name: 'keep-openwebui', decide: { openwebui: 'keep', frontend: 'openwebui' } },
  { name: 'keep-both', decide: { openwebui: 'keep', frontend: 'both' } },
  { name: 'scrap-comfyui', decide: { openwebui: 'scrap', frontend: 'comfyui' } },
  { name: 'vllm-oom-compensated', decide: { openwebui: 'keep', frontend: 'comfyui' }, faults: ['vllm-oom'] },
  { name: 'signal-decisions', signal: { openwebui: 'keep', frontend: 'comfyui' } },
  // Recorded with undos registered before the GPU moves, the admin user's own undo and the OpenWebUI key check.
  { name: 'frontend-unreachable-compensated-v2', decide: { openwebui: 'keep', frontend: 'both' }, faults: ['frontend-unreachable'] },
  { name: 'cancelled-during-release', decide: { openwebui: 'keep', frontend: 'openwebui' }, cancelWhilePending: 'ensureGpuReleasedFromVm', timeScale: 0.5 },
  // Recorded with ComfyUI's GPU taken when it is not the frontend, and the GPU boot unit.
  { name: 'vllm-oom-openwebui-v3', decide: { openwebui: 'keep', frontend: 'openwebui' }, faults: ['vllm-oom'] },
  // Recorded with the deployment record a teardown reads.
  { name: 'keep-openwebui-v4', decide: { openwebui: 'keep', frontend: 'openwebui' } },
];

async function main() {
  const out = join(__dirname, '..', 'test', 'replay', 'histories');
  mkdirSync(out, { recursive: true });
  const server = await startDevServer();
  const bundle = await bundleWorkflows();
  const nc = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection: server.env.connection });
  try {
    const only = process.argv.slice(2);
    for (const sc of SCENARIOS.filter((x) => only.length === 0 || only.includes(x.name))) {
      const lab = await startLab({ faults: sc.faults ?? [], timeScale: sc.timeScale ?? 0.05 });
      const dir = mkdtempSync(join(tmpdir(), 'record-'));
      await lab.writeConfig(join(dir, 'lab.yaml'));
      const loaded = loadConfig(join(dir, 'lab.yaml'));
      if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
      const config = { ...loaded.config, configDir: loaded.configDir };
      const deps = createActivityDeps();
      const taskQueue = `record-${sc.name}`;
      const worker = await Worker.create({ connection: nc, taskQueue, workflowBundle: bundle, activities: createActivities(deps) });
      const workflowId = `replay-${sc.name}`;
      await worker.runUntil(async () => {
        const handle = await client.workflow.start('deploy', { taskQueue, workflowId, args: [{ config }] });
        const answers = sc.decide ?? sc.signal;
        const done = new Set();
        let cancelled = false;
        for (;;) {
          const p = await handle.query('progress').catch(() => undefined);
          if (p && p.status !== 'running') break;
          if (sc.cancelWhilePending && !cancelled) {
            const d = await handle.describe();
            if ((d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === sc.cancelWhilePending)) {
              await handle.cancel();
              cancelled = true;
            }
          }
          for (const d of p?.pending ?? []) {
            if (done.has(d.decision)) continue;
            done.add(d.decision);
            const name = d.decision === 'openwebui' ? 'decideOpenwebui' : 'decideFrontend';
            const payload = { choice: answers[d.decision], by: 'recorder' };
            if (sc.signal) await handle.signal(name, payload);
            else await handle.executeUpdate(name, { args: [payload] });
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        await handle.result().catch(() => undefined);
        // Temporal's own JSON export (historyToJSON trips over two protobufjs copies in one process)
        const show = spawnSync(server.cli.path, ['workflow', 'show', '--workflow-id', workflowId, '--address', server.address, '--output', 'json'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
        if (show.status !== 0) throw new Error(`temporal workflow show failed: ${show.stderr}`);
        const history = JSON.parse(show.stdout);
        writeFileSync(join(out, `${sc.name}.json`), `${JSON.stringify(history, null, 1)}\n`);
        process.stderr.write(`recorded ${sc.name}: ${history.events.length} events\n`);
      });
      await deps.ssh.close();
      await lab.stop();
    }
  } finally {
    await nc.close();
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
