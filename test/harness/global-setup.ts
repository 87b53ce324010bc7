// One Temporal dev server and one workflow bundle for the whole jest run (workflow tests connect to it).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startDevServer, DevServer } from '../../src/temporal/dev-server';

declare global {
  var __PVE_VLLM_DEV_SERVER__: DevServer | undefined;
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  // Never a skip: if no server can be had, the whole run fails with what was tried.
  const server = await startDevServer({ log: (l) => process.stderr.write(`[temporal] ${l}\n`) });
  globalThis.__PVE_VLLM_DEV_SERVER__ = server;
  const outDir = join(__dirname, '..', '..', 'test-output');
  mkdirSync(outDir, { recursive: true });
  const bundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../src/workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: (m: string) => process.stderr.write(`${m}\n`), log() {} },
  });
  const bundlePath = join(outDir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  process.env.PVE_VLLM_TEST_TEMPORAL_ADDRESS = server.address;
  process.env.PVE_VLLM_TEST_WORKFLOW_BUNDLE = bundlePath;
  process.stderr.write(
    `\n[temporal] dev server ${server.address} from ${server.cli.source} (${server.cli.path ?? 'sdk download'}); ` +
      `started and bundled in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
}
