// The PVE client pins the lab's certificate: the right fingerprint works, a wrong one is refused before any
// request (and so before the token) is sent, with a message that says what to do.
import { createPveClient } from '../../src/adapters/pve';
import { TlsPinMismatchError } from '../../src/adapters/errors';
import { startLab, type Lab } from '../../src/lab';

describe('TLS pinning against the lab', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ timeScale: 0.02 });
  });
  afterAll(async () => lab?.stop());

  const target = (fingerprint: string) => ({
    host: '127.0.0.1',
    port: lab.api.port,
    tokenId: lab.secrets.tokenId,
    tokenSecret: lab.secrets.tokenSecret,
    tls: { fingerprint },
  });

  it('accepts the pinned certificate', async () => {
    const pve = createPveClient(target(lab.api.certFingerprint), 'token');
    const version = (await pve.get('/version')) as { version: string };
    expect(version.version).toMatch(/^8\./);
    await pve.close();
  });

  it('refuses a wrong fingerprint with a clear, typed, permanent error', async () => {
    const wrong = lab.api.certFingerprint.replace(/^[0-9A-F]{2}/, (h) => (h === 'AA' ? 'AB' : 'AA'));
    const pve = createPveClient(target(wrong), 'token');
    const err = (await pve.get('/version').catch((e: unknown) => e)) as TlsPinMismatchError;
    expect(err).toBeInstanceOf(TlsPinMismatchError);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(`expected ${wrong}`);
    expect(err.message).toContain(lab.api.certFingerprint);
    expect(err.message).toMatch(/proxmox\.api\.tls\.fingerprint/);
    expect(lab.journal()).toEqual([]);
    await pve.close();
  });
});
