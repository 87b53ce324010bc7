// Saved histories of real runs must replay on today's workflow code: a change that breaks determinism fails CI.
// Record new ones with `node scripts/record-histories.js` after a deliberate, patched() workflow change.
// The replays run in a child process (replay-child.mjs says why).
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { workflowBundlePath } from '../harness/temporal';

const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
const tampered = `tampered:${join(dir, files[0] ?? 'none.json')}`;

interface Outcome { file: string; ok: boolean; error?: string }
let outcomes: Outcome[] = [];

beforeAll(async () => {
  const args = [join(__dirname, 'replay-child.mjs'), workflowBundlePath(), ...files.map((f) => join(dir, f)), tampered];
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 });
  outcomes = stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Outcome);
}, 120_000);

const outcomeOf = (file: string): Outcome | undefined => outcomes.find((o) => o.file === file);

describe('replay of saved deploy histories', () => {
  it('has saved histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  it.each(files)('%s replays without a determinism violation', (file) => {
    expect(outcomeOf(join(dir, file))).toEqual({ file: join(dir, file), ok: true });
  });
});

describe('the replay check can fail', () => {
  it('flags a history whose activity no longer matches the workflow code', () => {
    const outcome = outcomeOf(tampered);
    expect(outcome?.ok).toBe(false);
    expect(outcome?.error).toMatch(/[Nn]ondeterminis|determinism/);
  });
});
