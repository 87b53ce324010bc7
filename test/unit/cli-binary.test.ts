import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTemporalCli, TemporalCliNotFoundError } from '../../src/temporal/cli-binary';

describe('findTemporalCli', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  const fake = join(dir, 'temporal');
  writeFileSync(fake, '#!/bin/sh\n');
  chmodSync(fake, 0o755);

  it('takes TEMPORAL_CLI_PATH first', () => {
    expect(findTemporalCli({ env: { TEMPORAL_CLI_PATH: fake, PATH: '' } })).toMatchObject({ path: fake, source: 'TEMPORAL_CLI_PATH' });
  });

  it('fails loudly when TEMPORAL_CLI_PATH points nowhere, saying what was tried', () => {
    expect(() => findTemporalCli({ env: { TEMPORAL_CLI_PATH: '/nowhere/temporal', CI: 'true', PATH: dir } })).toThrow(TemporalCliNotFoundError);
    expect(() => findTemporalCli({ env: { TEMPORAL_CLI_PATH: '/nowhere/temporal' } })).toThrow(/TEMPORAL_CLI_PATH=\/nowhere\/temporal: not an executable file/);
  });

  it('then `temporal` on PATH, then the cache', () => {
    expect(findTemporalCli({ env: { PATH: dir } })).toMatchObject({ path: fake, source: 'PATH' });
    const cacheHome = mkdtempSync(join(tmpdir(), 'cache-'));
    const env = { PATH: '', XDG_CACHE_HOME: cacheHome, CI: 'true' };
    expect(() => findTemporalCli({ env, allowBuild: false })).toThrow(/cache .* not present[\s\S]*disabled under CI=true/);
  });

  it('offers the SDK download only outside CI', () => {
    const env = { PATH: '', XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), 'cache-')) };
    expect(findTemporalCli({ env, allowBuild: false })).toMatchObject({ source: 'sdk download' });
  });
});
