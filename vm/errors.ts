/**
 * One error type for everything the engine refuses or fails at. The `code` travels over the API
 * unchanged (as `{error: {code, message}}`) so the CLI, the UI and agents can react to it; the
 * message is written for a person.
 */
export const ERROR_CODES = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  method_not_allowed: 405,
  already_exists: 409,
  busy: 409,
  failed_precondition: 409,
  payload_too_large: 413,
  resource_exhausted: 507,
  internal: 500,
  unavailable: 503,
  timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class SpritelyError extends Error {
  override name = 'SpritelyError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }

  toJSON() {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && value in ERROR_CODES;
}

/** Wraps anything thrown into a SpritelyError, keeping known codes and hiding nothing useful. */
export function toSpritelyError(err: unknown): SpritelyError {
  if (err instanceof SpritelyError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC') return new SpritelyError('resource_exhausted', `No space left on the device holding the data dir (${e.message})`);
  return new SpritelyError('internal', e?.message ?? String(err));
}
