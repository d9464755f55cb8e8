/** The error type of the crypto layer, so callers can branch on `code` rather than on messages. */

/**
 * Why an operation failed:
 * - `DECRYPT_FAILED`: authentication failed (wrong key, wrong associated data, tampered or
 *   truncated data) or the sealed value is malformed.
 * - `BAD_INPUT`: a well-typed input with an unusable value (invalid base64, a low-order X25519
 *   public key, text that is not UTF-8).
 * - `UNKNOWN_KEY`: a key id that the key ring does not hold.
 * - `BAD_PASSPHRASE`: the key file does not open with this passphrase (or was modified).
 * - `BAD_KEY_FILE`: the key file is not a readable skynet-linker key file.
 */
export type CryptoErrorCode = 'DECRYPT_FAILED' | 'BAD_INPUT' | 'UNKNOWN_KEY' | 'BAD_PASSPHRASE' | 'BAD_KEY_FILE';

/**
 * A crypto failure that is not a programming error (those are TypeError / RangeError).
 * @param code - machine-readable reason, see {@link CryptoErrorCode}.
 * @param message - human-readable explanation.
 */
export class CryptoError extends Error {
  readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CryptoError';
    this.code = code;
  }
}

/** The message of every authentication failure: the three causes can't be told apart, by design. */
export const DECRYPT_FAILED_MESSAGE = 'could not open: wrong key, wrong associated data or tampered data';

/** Builds the standard authentication-failure error. */
export function decryptFailed(detail?: string, cause?: unknown): CryptoError {
  const message = detail === undefined ? DECRYPT_FAILED_MESSAGE : `could not open: ${detail}`;
  return new CryptoError('DECRYPT_FAILED', message, cause === undefined ? undefined : { cause });
}
