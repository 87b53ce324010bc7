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
