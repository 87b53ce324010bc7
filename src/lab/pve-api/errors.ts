/**
 * Errors as pveproxy answers them. The message keeps PVE's trailing newline (it is in the JSON body); the
 * HTTP reason phrase is its first line (pve-http-server AnyEvent.pm `response`).
 */
import { LabError } from '../host';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
    /** Auth failures are sent without a body (AnyEvent.pm answers them before any formatter runs). */
    readonly bare = false,
  ) {
    super(message.endsWith('\n') ? message : `${message}\n`);
    this.name = 'ApiError';
  }
}

/** raise_param_exc: 400 `Parameter verification failed.` with per-parameter errors. */
export function paramError(errors: Record<string, string>): ApiError {
  return new ApiError(400, 'Parameter verification failed.', errors);
}

/** raise_perm_exc: 403 `Permission check failed (<what>)`. */
export function permError(what?: string): ApiError {
  return new ApiError(403, what ? `Permission check failed (${what})` : 'Permission check failed');
}

/** A plain Perl `die` inside an API handler: HTTP 500 with the die text. */
export function dieError(message: string): ApiError {
  return new ApiError(500, message);
}

export function unauthorized(reason: string): ApiError {
  return new ApiError(401, reason, undefined, true);
}

/** Map anything thrown by a handler or LabHost to what pveproxy would send. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof LabError) return new ApiError(err.httpStatus, err.message);
  const text = err instanceof Error ? err.message : String(err);
  return new ApiError(500, text);
}
