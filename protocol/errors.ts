/**
 * Error codes used across the hub. Inside the hub a `LinkerError` carries one of these; the
 * router maps it to a TRPCError in one place, and clients read it back from `error.data.code`.
 */
export const ERROR_CODES = {
  BAD_REQUEST: 'BAD_REQUEST',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  TOO_MANY_REQUESTS: 'TOO_MANY_REQUESTS',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  TIMEOUT: 'TIMEOUT',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type LinkerErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable string code and optional structured details (e.g. current version). */
export class LinkerError extends Error {
  override readonly name = 'LinkerError';
  constructor(
    readonly code: LinkerErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isLinkerError(e: unknown): e is LinkerError {
  return e instanceof LinkerError;
}
