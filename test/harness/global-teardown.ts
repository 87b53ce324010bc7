import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { TEST_USER } from '../ssh/sshd';

export default async function globalTeardown(): Promise<void> {
  await globalThis.__PVE_VLLM_DEV_SERVER__?.stop();
  removeTestUser();
}

/** The SSH tests' sudo user (test/ssh/sshd.ts) is shared by every test file, so it goes only after all of them. */
function removeTestUser(): void {
  if (process.getuid?.() !== 0) return;
  rmSync(`/etc/sudoers.d/${TEST_USER}`, { force: true });
  try {
    execFileSync('id', [TEST_USER], { stdio: 'ignore' });
  } catch {
    return; // never created (no SSH test ran)
  }
  try {
    execFileSync('userdel', ['-r', TEST_USER], { stdio: 'pipe' });
  } catch (e) {
    // e.g. a process of it still running: say so, the tests themselves are done
    process.stderr.write(`could not remove the test user ${TEST_USER}: ${(e as Error).message.split('\n')[0]}\n`);
  }
}
