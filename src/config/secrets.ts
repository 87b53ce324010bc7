/**
 * Secret references. A secret never sits in the config itself: the config names where the worker finds it,
 * `{ env: NAME }` or `{ file: PATH }`, and only activities resolve it (see resolveSecret in load.ts).
 */
import { z } from 'zod';
import { envName, field, localPath } from './fields';

export type SecretRef = { env: string } | { file: string };

const envRef = z.strictObject({ env: envName });
const fileRef = z.strictObject({ file: localPath });

const SECRET_ALLOWED = 'a reference, not the secret: { env: NAME } (an environment variable of the worker) or { file: PATH } (a file the worker reads)';

export const secretRef = field(
  z
    .unknown()
    .superRefine((value, ctx) => {
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        ctx.addIssue({
          code: 'custom',
          message: 'inline secrets are refused (they would end up in files, logs and workflow history): ' +
            'put the value in an environment variable and write { env: NAME }, or in a file and write { file: PATH }',
          params: { allowed: SECRET_ALLOWED },
        });
        return;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        ctx.addIssue({ code: 'custom', message: 'must be { env: NAME } or { file: PATH }', params: { allowed: SECRET_ALLOWED } });
        return;
      }
      const keys = Object.keys(value);
      if (!(keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file'))) {
        ctx.addIssue({
          code: 'custom',
          // The keys are not named: a secret pasted as a key would be printed.
          message: keys.length
            ? `has ${keys.length === 1 ? 'a key other than env or file' : `${keys.length} keys`}; a secret reference has exactly one key, env or file`
            : 'is empty; a secret reference has exactly one key, env or file',
          params: { allowed: SECRET_ALLOWED },
        });
      }
    })
    .pipe(z.union([envRef, fileRef])),
  SECRET_ALLOWED,
);

/** Config paths (dot form) whose value is a secret reference; their given values are never echoed verbatim. */
export const SECRET_PATHS = [
  'proxmox.api.tokenSecret',
  'proxmox.root.password',
  'proxmox.ssh.privateKey',
  'vllm.apiKey',
  'vllm.hfToken',
  'admin.privateKey',
  'guests.openwebui.apiKey',
] as const;

/** Keys that smell of a secret wherever they appear (e.g. a misspelt or unknown key). */
export const SECRET_KEY_RE = /secret|passw|apikey|api_key|hftoken|hf_token|privatekey|private_key|^token$/i;
