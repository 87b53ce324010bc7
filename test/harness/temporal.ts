// Workflow tests use the dev server and the bundle made once in global-setup.ts.
import { TestWorkflowEnvironment } from '@temporalio/testing';

export function sharedServerAddress(): string {
  const address = process.env.PVE_VLLM_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('no Temporal dev server: test/harness/global-setup.ts did not run');
  return address;
}

export function workflowBundlePath(): string {
  const path = process.env.PVE_VLLM_TEST_WORKFLOW_BUNDLE;
  if (!path) throw new Error('no workflow bundle: test/harness/global-setup.ts did not run');
  return path;
}

export function connectTestEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createFromExistingServer({ address: sharedServerAddress(), namespace: 'default' });
}
