/**
 * The API's self-signed certificate. Kept in the lab state (`keys.tls`) so a saved lab keeps its pinned
 * fingerprint across runs, the way a real node keeps /etc/pve/local/pve-ssl.pem.
 */
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import type { LabState } from '../state';

export interface ApiCertificate {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the DER certificate, upper-case colon hex, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint: string;
}

export async function ensureCertificate(state: LabState): Promise<ApiCertificate> {
  if (!state.keys.tls) {
    const notBefore = new Date(Date.now() - 60_000);
    const notAfter = new Date(notBefore.getTime() + 2 * 365 * 86400_000);
    const pems = await generate([{ name: 'commonName', value: `${state.node.name}.lab` }, { name: 'organizationName', value: 'PVE Cluster Node' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: notBefore,
      notAfterDate: notAfter,
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 2, value: state.node.name },
            { type: 7, ip: '127.0.0.1' },
            { type: 7, ip: '::1' },
          ],
        },
      ],
    });
    state.keys.tls = { certPem: pems.cert, keyPem: pems.private };
  }
  const { certPem, keyPem } = state.keys.tls;
  return { certPem, keyPem, fingerprint: new X509Certificate(certPem).fingerprint256 };
}
