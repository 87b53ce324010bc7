// A one-step workflow for the SSH retry test: the retry policy the deploy uses (typed permanent errors are
// not retried), around one activity that runs a command over SSH.
import { proxyActivities } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../../src/adapters/errors';

export interface SshStepActivities {
  sshStep(scenario: 'drop-once' | 'wrong-host-key'): Promise<{ stdout: string; attempt: number }>;
}

const { sshStep } = proxyActivities<SshStepActivities>({
  startToCloseTimeout: '60s',
  retry: { initialInterval: '200ms', backoffCoefficient: 1, maximumAttempts: 4, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

export async function sshStepWorkflow(scenario: 'drop-once' | 'wrong-host-key'): Promise<{ stdout: string; attempt: number }> {
  return await sshStep(scenario);
}
