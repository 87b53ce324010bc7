// Every shell-bound config field with every hostile string: validation refuses it and names the field.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { HOSTILE_VALUES, LEGAL_ODDITIES, SHELL_FIELDS, tryHostile, validationMatrix } from '../../src/reliability/hostile-inputs';

const base = parse(readFileSync(join(__dirname, '..', '..', 'examples', 'seed-lab.yaml'), 'utf8')) as Record<string, unknown>;

describe('hostile strings in shell-bound config fields', () => {
  const matrix = validationMatrix(base);

  it('tries every field with every value', () => {
    expect(matrix).toHaveLength(SHELL_FIELDS.length * HOSTILE_VALUES.length);
  });

  it.each(SHELL_FIELDS)('%s: a refused value is refused with a problem naming the field', (field) => {
    const wrong = matrix
      .filter((v) => v.field === field && v.rejectedElsewhere)
      .map((v) => `${JSON.stringify(v.value)}: refused under ${v.problems.map((p) => p.path).join(', ')}`);
    expect(wrong).toEqual([]);
  });

  it('lets through only a space in the GPU model name (marketing names have spaces; it is compared, never run)', () => {
    // Whatever is accepted here is run through a real deploy by `npm run reliability` (hostile.ts), which
    // checks it arrives as one literal argument and runs nothing else.
    const accepted = matrix.filter((v) => v.accepted).map((v) => `${v.field} ${JSON.stringify(v.value)}`);
    expect(accepted).toEqual(['gpu.model "x y"']);
  });

  it('accepts the legal values that only need quoting', () => {
    for (const { field, value } of LEGAL_ODDITIES) expect(tryHostile(base, field, value)).toMatchObject({ accepted: true });
  });
});
