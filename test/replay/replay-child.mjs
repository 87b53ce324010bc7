// Runs in its own Node process, spawned by replay.test.ts. Replay workers run workflow code on the main thread
// (debugMode) and install process-wide hooks (Error.prepareStackTrace, v8 promise hooks) that are never removed;
// inside jest's long-lived --runInBand process those hooks pile up across test files until the stack overflows.
// Usage: node replay-child.mjs <workflow-bundle.js> <history.json>...  — prints one JSON object per history.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';

// The expected nondeterminism of the tampered history is reported in our JSON; keep the worker's logs to errors.
Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } } });

async function main() {
  const [codePath, ...files] = process.argv.slice(2);
  for (const file of files) {
    const tamper = file.startsWith('tampered:');
    const path = tamper ? file.slice('tampered:'.length) : file;
    const history = JSON.parse(readFileSync(path, 'utf8'));
    if (tamper) {
      const scheduled = history.events.find((e) => e.activityTaskScheduledEventAttributes);
      scheduled.activityTaskScheduledEventAttributes.activityType.name = 'renamedActivity';
    }
    const name = (tamper ? 'tampered-' : '') + basename(path, '.json');
    try {
      await Worker.runReplayHistory({ workflowBundle: { codePath } }, history, name);
      process.stdout.write(JSON.stringify({ file, ok: true }) + '\n');
    } catch (err) {
      process.stdout.write(JSON.stringify({ file, ok: false, error: String(err && err.message ? err.message : err) }) + '\n');
    }
  }
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
