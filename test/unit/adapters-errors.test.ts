import * as errors from '../../src/adapters/errors';
import { classifyPveError, NON_RETRYABLE_ERROR_TYPES, nonRetryableErrorTypes, AdapterError } from '../../src/adapters/errors';

const URL_BASE = 'https://10.0.50.10:8006/api2/json';

/** Exactly what proxmox-api 1.1.1 throws (see ProxmoxEngine.doRequest). */
function returnError(method: string, path: string, status: number, statusText: string, body: unknown): Error {
  return new Error(`${method} ${URL_BASE}${path} return Error ${status} ${statusText}: ${JSON.stringify(body)}`);
}
function connectionFailed(method: string, path: string, status: number, statusText: string, body: unknown): Error {
  return new Error(`${method} ${URL_BASE}${path} connection failed with ${status} ${statusText} return: ${JSON.stringify(body)}`);
}

describe('classifyPveError', () => {
  it('400 -> PveValidationError with per-parameter errors', () => {
    const raw = returnError('POST', '/access/users/root@pam/token/pve-vllm', 400, 'Parameter verification failed.', {
      message: 'Parameter verification failed.\n',
      data: null,
      errors: { tokenid: 'Token already exists.' },
    });
    const e = classifyPveError(raw) as errors.PveValidationError;
    expect(e.name).toBe('PveValidationError');
    expect(e.status).toBe(400);
    expect(e.paramErrors).toEqual({ tokenid: 'Token already exists.' });
    expect(e.message).toBe(
      'Proxmox rejected POST /access/users/root@pam/token/pve-vllm with 400: Parameter verification failed. (tokenid: Token already exists.)',
    );
    expect(e.cause).toBe(raw);
  });

  it('403 (the generic "connection failed" branch) -> PvePermissionError with PVE message and root@pam remedy', () => {
    const e = classifyPveError(
      connectionFailed('PUT', '/nodes/pve/lxc/117/config', 403, 'Permission check failed (/vms/117, VM.Config.Disk)', {
        data: null,
        message: 'Permission check failed (/vms/117, VM.Config.Disk)\n',
      }),
    );
    expect(e.name).toBe('PvePermissionError');
    expect(e.message).toContain('PUT /nodes/pve/lxc/117/config');
    expect(e.message).toContain('Permission check failed (/vms/117, VM.Config.Disk)');
    expect(e.message).toMatch(/root@pam/);
  });

  it('401 -> PveAuthError, also with an empty body', () => {
    const e = classifyPveError(returnError('GET', '/version', 401, 'No ticket', { data: null, errors: '' }));
    expect(e.name).toBe('PveAuthError');
    expect(e.message).toContain('No ticket');
  });

  it('500 -> retryable PveServerError; 500 "does not exist" and 501 -> PveNotFoundError', () => {
    const busy = classifyPveError(returnError('POST', '/nodes/pve/lxc', 500, 'got timeout', { data: null, message: 'got timeout\n' }));
    expect(busy.name).toBe('PveServerError');
    expect((busy as AdapterError).retryable).toBe(true);
    const gone = classifyPveError(
      returnError('GET', '/nodes/pve/lxc/117/config', 500, "Configuration file 'nodes/pve/lxc/117.conf' does not exist", {
        data: null,
        message: "Configuration file 'nodes/pve/lxc/117.conf' does not exist\n",
      }),
    );
    expect(gone.name).toBe('PveNotFoundError');
    const unknown = classifyPveError(connectionFailed('GET', '/nodes/pve/foo', 501, "Method 'GET /nodes/pve/foo' not implemented", { data: null }));
    expect(unknown.name).toBe('PveNotFoundError');
  });

  it('59x from a proxied node (reason with a colon inside) -> retryable PveServerError', () => {
    const e = classifyPveError(
      connectionFailed('GET', '/nodes/pve2/status', 595, 'Errors during connection establishment, proxy handshake: No route to host', { data: null }),
    );
    expect(e.name).toBe('PveServerError');
    expect(e.message).toContain('proxy handshake: No route to host');
  });

  it('password login failure -> PveAuthError; other shapes pass through or become PveConnectionError', () => {
    const wrapped = new Error(`Auth ${URL_BASE}/access/ticket Failed!`);
    wrapped.cause = new Error('login failed with 401: authentication failure ');
    expect(classifyPveError(wrapped).name).toBe('PveAuthError');
    const refused = new Error(`FaILED to call GET ${URL_BASE}/version cause by:connect ECONNREFUSED 10.0.50.10:8006`);
    expect(classifyPveError(refused).name).toBe('PveConnectionError');
    const odd = new Error('something else entirely');
    expect(classifyPveError(odd)).toBe(odd);
    const typed = new errors.PveConfigError('x');
    expect(classifyPveError(typed)).toBe(typed);
  });
});

describe('error classes', () => {
  const classes = Object.entries(errors).filter(
    ([name, v]) => typeof v === 'function' && /Error$/.test(name) && v.prototype instanceof AdapterError,
  ) as Array<[string, new (...args: never[]) => AdapterError]>;

  // One argument list every constructor accepts: (details-or-target, string, array).
  const make = (Cls: new (...args: never[]) => AdapterError): AdapterError =>
    new (Cls as unknown as new (...args: unknown[]) => AdapterError)(
      { method: 'GET', url: `${URL_BASE}/x`, status: 500, pveMessage: 'm', paramErrors: {} },
      'a',
      [],
    );

  it('every class sets name to its class name (Temporal uses it as the failure type)', () => {
    expect(classes.length).toBeGreaterThanOrEqual(15);
    for (const [name, Cls] of classes) expect(make(Cls).name).toBe(name);
  });

  it('NON_RETRYABLE_ERROR_TYPES lists exactly the classes with retryable === false', () => {
    const permanent = classes
      .filter(([, Cls]) => make(Cls).retryable === false)
      .map(([name]) => name)
      .sort();
    expect([...NON_RETRYABLE_ERROR_TYPES].sort()).toEqual(permanent);
    expect(nonRetryableErrorTypes).toBe(NON_RETRYABLE_ERROR_TYPES);
  });
});
