/**
 * NaCl `secretbox` and `box`, byte-compatible with libsodium (`crypto_secretbox_easy`,
 * `crypto_box_easy`, nonce prepended) and PyNaCl (`SecretBox`, `Box`), so agents in other
 * languages can exchange end-to-end encrypted payloads with ours. Layout: `nonce(24)‖mac(16)‖ct`.
 */
import { hsalsa, xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { clean, randomBytes, u32, u8 } from '@noble/ciphers/utils.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { assertBytes } from './bytes.js';
import { CryptoError, decryptFailed } from './errors.js';

/** Byte length of a secretbox key. */
export const SECRETBOX_KEY_LENGTH = 32;
/** Byte length of the XSalsa20 nonce that starts every sealed value. */
export const NONCE_LENGTH = 24;
/** Byte length of the Poly1305 MAC that follows the nonce. */
export const MAC_LENGTH = 16;
/** Byte length of an X25519 public key. */
export const BOX_PUBLIC_KEY_LENGTH = 32;
/** Byte length of an X25519 secret key. */
export const BOX_SECRET_KEY_LENGTH = 32;

/** Options of the seal functions. */
export interface SealOptions {
  /** A 24-byte nonce to use instead of a random one: for known-answer tests only, never reuse. */
  nonce?: Uint8Array;
}

/** An X25519 key pair for {@link boxSeal} / {@link boxOpen}. */
export interface BoxKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** @returns a fresh random 32-byte secretbox key. */
export function secretboxKey(): Uint8Array {
  return randomBytes(SECRETBOX_KEY_LENGTH);
}

/**
 * Encrypts and authenticates with XSalsa20-Poly1305 under a fresh random nonce.
 * @param key - 32-byte shared key.
 * @param plaintext - bytes to seal.
 * @param options - see {@link SealOptions}.
 * @returns `nonce(24)‖mac(16)‖ciphertext`.
 * @throws TypeError / RangeError for a non-Uint8Array argument or a key/nonce of the wrong length.
 */
export function secretboxSeal(key: Uint8Array, plaintext: Uint8Array, options?: SealOptions): Uint8Array {
  assertBytes(key, 'key', SECRETBOX_KEY_LENGTH);
  assertBytes(plaintext, 'plaintext');
  const nonce = pickNonce(options);
  const boxed = xsalsa20poly1305(key, nonce).encrypt(plaintext);
  const out = new Uint8Array(NONCE_LENGTH + boxed.length);
  out.set(nonce);
  out.set(boxed, NONCE_LENGTH);
  return out;
}

/**
 * Opens a value made by {@link secretboxSeal} (or libsodium / PyNaCl with the nonce prepended).
 * @param key - 32-byte shared key.
 * @param sealed - `nonce(24)‖mac(16)‖ciphertext`.
 * @returns the plaintext.
 * @throws CryptoError `DECRYPT_FAILED` when the key is wrong or the data was tampered with or truncated.
 * @throws TypeError / RangeError for a non-Uint8Array argument or a key of the wrong length.
 */
export function secretboxOpen(key: Uint8Array, sealed: Uint8Array): Uint8Array {
  assertBytes(key, 'key', SECRETBOX_KEY_LENGTH);
  assertBytes(sealed, 'sealed');
  const min = NONCE_LENGTH + MAC_LENGTH;
  if (sealed.length < min) throw decryptFailed(`sealed data is ${sealed.length} bytes, shorter than the ${min}-byte nonce and MAC`);
  try {
    return xsalsa20poly1305(key, sealed.subarray(0, NONCE_LENGTH)).decrypt(sealed.subarray(NONCE_LENGTH));
  } catch (cause) {
    throw decryptFailed(undefined, cause);
  }
}

/** @returns a fresh random X25519 key pair (32-byte public and secret keys). */
export function boxKeyPair(): BoxKeyPair {
  const { publicKey, secretKey } = x25519.keygen();
  return { publicKey, secretKey };
}

/**
 * Rebuilds a box key pair from its 32-byte secret key (e.g. one loaded from the key file).
 * @throws TypeError / RangeError when `secretKey` is not 32 bytes.
 */
export function boxKeyPairFromSecretKey(secretKey: Uint8Array): BoxKeyPair {
  assertBytes(secretKey, 'secretKey', BOX_SECRET_KEY_LENGTH);
  return { publicKey: x25519.getPublicKey(secretKey), secretKey: secretKey.slice() };
}

// "expand 32-byte k" as native-endian words, the form noble's hsalsa expects.
const SIGMA = /* @__PURE__ */ u32(new TextEncoder().encode('expand 32-byte k'));

/**
 * The precomputed box key, `crypto_box_beforenm`: HSalsa20 of the X25519 shared secret (zero
 * input, sigma constant). Worth caching when sealing many messages to the same peer.
 * @param theirPublicKey - the peer's 32-byte X25519 public key.
 * @param mySecretKey - our 32-byte X25519 secret key.
 * @returns a 32-byte key usable with {@link secretboxSeal} / {@link secretboxOpen}.
 * @throws CryptoError `BAD_INPUT` when `theirPublicKey` is a low-order point (as libsodium does).
 * @throws TypeError / RangeError for a wrong-type or wrong-length key.
 */
export function boxSharedKey(theirPublicKey: Uint8Array, mySecretKey: Uint8Array): Uint8Array {
  assertBytes(theirPublicKey, 'theirPublicKey', BOX_PUBLIC_KEY_LENGTH);
  assertBytes(mySecretKey, 'mySecretKey', BOX_SECRET_KEY_LENGTH);
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(mySecretKey, theirPublicKey);
  } catch (cause) {
    throw new CryptoError('BAD_INPUT', 'theirPublicKey is a low-order X25519 point (it would give an all-zero shared secret); refusing it', { cause });
  }
  // slice(): u32 needs a 4-byte aligned buffer of our own.
  const k = u32(shared.slice());
  const out = new Uint32Array(8);
  hsalsa(SIGMA, k, new Uint32Array(4), out);
  clean(shared, k);
  return u8(out);
}

/**
 * Encrypts to a peer: X25519 + XSalsa20-Poly1305 (`crypto_box_easy`, PyNaCl `Box.encrypt`).
 * @param theirPublicKey - recipient's 32-byte X25519 public key.
 * @param mySecretKey - sender's 32-byte X25519 secret key.
 * @param plaintext - bytes to seal.
 * @param options - see {@link SealOptions}.
 * @returns `nonce(24)‖mac(16)‖ciphertext`.
 * @throws CryptoError `BAD_INPUT` for a low-order public key; TypeError / RangeError for bad arguments.
 */
export function boxSeal(theirPublicKey: Uint8Array, mySecretKey: Uint8Array, plaintext: Uint8Array, options?: SealOptions): Uint8Array {
  assertBytes(plaintext, 'plaintext');
  const nonce = pickNonce(options);
  const key = boxSharedKey(theirPublicKey, mySecretKey);
  try {
    return secretboxSeal(key, plaintext, { nonce });
  } finally {
    clean(key);
  }
}

/**
 * Opens a value from {@link boxSeal} (or libsodium / PyNaCl) sent by the owner of `theirPublicKey`.
 * @param theirPublicKey - sender's 32-byte X25519 public key.
 * @param mySecretKey - recipient's 32-byte X25519 secret key.
 * @param sealed - `nonce(24)‖mac(16)‖ciphertext`.
 * @returns the plaintext.
 * @throws CryptoError `DECRYPT_FAILED` for wrong keys or tampered / truncated data, `BAD_INPUT`
 *   for a low-order public key; TypeError / RangeError for bad arguments.
 */
export function boxOpen(theirPublicKey: Uint8Array, mySecretKey: Uint8Array, sealed: Uint8Array): Uint8Array {
  assertBytes(sealed, 'sealed');
  const key = boxSharedKey(theirPublicKey, mySecretKey);
  try {
    return secretboxOpen(key, sealed);
  } finally {
    clean(key);
  }
}

function pickNonce(options: SealOptions | undefined): Uint8Array {
  if (options?.nonce === undefined) return randomBytes(NONCE_LENGTH);
  assertBytes(options.nonce, 'options.nonce', NONCE_LENGTH);
  return options.nonce;
}
