/**
 * Ed25519 signatures (RFC 8032), and envelope signatures over the RFC 8785 canonical JSON of the
 * envelope without its `signature` field, so any implementation that canonicalizes the same
 * parsed JSON gets the same signed bytes regardless of key order or whitespace on the wire.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { canonicalJson } from '../protocol/canonical.js';
import { assertBytes, fromBase64, toBase64, typeName, utf8Encode } from './bytes.js';

/** Byte length of an Ed25519 public key. */
export const SIGNING_PUBLIC_KEY_LENGTH = 32;
/** Byte length of an Ed25519 secret key (the seed). */
export const SIGNING_SECRET_KEY_LENGTH = 32;
/** Byte length of an Ed25519 signature. */
export const SIGNATURE_LENGTH = 64;

/** An Ed25519 key pair; `secretKey` is the 32-byte seed (libsodium's 64-byte form is `seed‖publicKey`). */
export interface SigningKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** @returns a fresh random Ed25519 key pair. */
export function signingKeyPair(): SigningKeyPair {
  const { publicKey, secretKey } = ed25519.keygen();
  return { publicKey, secretKey };
}

/**
 * Rebuilds a signing key pair from its 32-byte seed (e.g. one loaded from the key file).
 * @throws TypeError / RangeError when `secretKey` is not 32 bytes.
 */
export function signingKeyPairFromSecretKey(secretKey: Uint8Array): SigningKeyPair {
  assertBytes(secretKey, 'secretKey', SIGNING_SECRET_KEY_LENGTH);
  return { publicKey: ed25519.getPublicKey(secretKey), secretKey: secretKey.slice() };
}

/**
 * Signs with Ed25519 (deterministic, RFC 8032).
 * @param message - bytes to sign.
 * @param secretKey - 32-byte seed.
 * @returns the 64-byte signature.
 * @throws TypeError / RangeError for a wrong-type argument or a key of the wrong length.
 */
export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  assertBytes(message, 'message');
  assertBytes(secretKey, 'secretKey', SIGNING_SECRET_KEY_LENGTH);
  return ed25519.sign(message, secretKey);
}

/**
 * Verifies an Ed25519 signature, strictly as RFC 8032 and libsodium do (canonical encodings,
 * small-order public keys refused). A signature is untrusted input, so a malformed one (any
 * length but 64) gives `false`; the public key is trusted configuration, so a bad one throws.
 * @param signature - the 64-byte signature.
 * @param message - the signed bytes.
 * @param publicKey - the signer's 32-byte public key.
 * @returns whether the signature is valid.
 * @throws TypeError for a non-Uint8Array argument; RangeError when `publicKey` is not 32 bytes.
 */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  assertBytes(signature, 'signature');
  assertBytes(message, 'message');
  assertBytes(publicKey, 'publicKey', SIGNING_PUBLIC_KEY_LENGTH);
  if (signature.length !== SIGNATURE_LENGTH) return false;
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/**
 * The bytes an envelope signature covers: `utf8(canonicalJson(envelope without "signature" and "hops"))`.
 * Exposed so other implementations can be checked against ours.
 * @param envelope - a plain JSON object.
 * @throws TypeError when `envelope` is not a plain object or holds non-JSON values
 *   (RangeError for NaN / Infinity), see {@link canonicalJson}.
 */
export function envelopeSigningBytes(envelope: object): Uint8Array {
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
    throw new TypeError(`envelope must be an object, got ${typeName(envelope)}`);
  }
  // `hops` is the hub's, added after the sender signed: it is not the sender's to vouch for.
  const { signature: _signature, hops: _hops, ...unsigned } = envelope as Record<string, unknown>;
  return utf8Encode(canonicalJson(unsigned));
}

/**
 * Signs an envelope; its own `signature` field, if any, is ignored.
 * @param envelope - a plain JSON object (the wire envelope).
 * @param secretKey - 32-byte Ed25519 seed.
 * @returns the base64 signature to put in `envelope.signature`.
 * @throws TypeError / RangeError for a bad key or a non-JSON envelope.
 */
export function signEnvelope(envelope: object, secretKey: Uint8Array): string {
  assertBytes(secretKey, 'secretKey', SIGNING_SECRET_KEY_LENGTH);
  return toBase64(sign(envelopeSigningBytes(envelope), secretKey));
}

/**
 * Verifies `envelope.signature` (base64) against the rest of the envelope. Never throws for
 * anything the envelope holds, since it comes from the network.
 * @param envelope - the received envelope, typically `{ …, signature?: string | null }`.
 * @param publicKey - the claimed sender's 32-byte Ed25519 public key.
 * @returns false for a missing, malformed or invalid signature, a non-object or non-JSON
 *   envelope, or any tampered field; true only for a valid signature.
 * @throws TypeError / RangeError only when `publicKey` is not a 32-byte Uint8Array.
 */
export function verifyEnvelope(envelope: unknown, publicKey: Uint8Array): boolean {
  assertBytes(publicKey, 'publicKey', SIGNING_PUBLIC_KEY_LENGTH);
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) return false;
  const text = (envelope as { signature?: unknown }).signature;
  if (typeof text !== 'string') return false;
  try {
    const signature = fromBase64(text, 'signature');
    return verify(signature, envelopeSigningBytes(envelope), publicKey);
  } catch {
    return false;
  }
}
