// Saved histories of real runs must replay on today's workflow code: a change that breaks determinism fails CI.
// Record new ones with `node scripts/record-histories.js` after a deliberate, patched() workflow change.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { workflowBundlePath } from '../harness/temporal';

const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('replay of saved deploy histories', () => {
  it('has saved histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  it.each(files)('%s replays without a determinism violation', async (file) => {
    const history = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    await Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, history, file.replace(/\.json$/, ''));
  });
});

describe('the replay check can fail', () => {
  it('flags a history whose activity no longer matches the workflow code', async () => {
    const history = JSON.parse(readFileSync(join(dir, files[0] as string), 'utf8'));
    const scheduled = history.events.find((e: Record<string, unknown>) => e.activityTaskScheduledEventAttributes);
    scheduled.activityTaskScheduledEventAttributes.activityType.name = 'renamedActivity';
    await expect(Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, history, 'tampered')).rejects.toThrow(/[Nn]ondeterminis|determinism/);
  });
});
