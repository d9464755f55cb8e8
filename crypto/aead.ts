/**
 * XChaCha20-Poly1305 encryption (draft-irtf-cfrg-xchacha, RFC 8439 §2.8) built from noble's
 * `xchacha20` stream and `poly1305` MAC, byte for byte what noble's `xchacha20poly1305(key, nonce,
 * aad).encrypt(plaintext)` returns (property-tested against it in test/crypto/aead.test.ts), in
 * about half its time on the hub's message sizes.
 *
 * Why: noble's AEAD runs the stream cipher twice (the Poly1305 one-time key from block 0, then
 * the payload from block 1, each call deriving the HChaCha20 subkey and setting up anew) and feeds
 * the MAC in four updates. Each call costs a few µs whatever its length, which for a 700-byte
 * envelope is as much as the work itself. Here one stream call covers block 0 and the payload
 * (`64 zero bytes ‖ plaintext` in a scratch buffer: bytes 0-31 become the one-time key, bytes 64…
 * the ciphertext), and the MAC input is laid out once for one Poly1305 call.
 *
 * Only encryption: opening stays on noble's AEAD (it checks the tag in constant time before it
 * decrypts anything). The scratch buffers are zeroed after every call; no secret outlives it.
 */
import { xchacha20 } from '@noble/ciphers/chacha.js';
import { poly1305 } from '@noble/ciphers/_poly1305.js';

/** Bytes of the Poly1305 tag appended to the ciphertext. */
export const XCHACHA_TAG_LENGTH = 16;

/** Inputs up to this size share module-level scratch buffers; larger ones get their own. */
const SCRATCH_LIMIT = 64 * 1024;
let stream: Uint8Array = new Uint8Array(4096);
let mac: Uint8Array = new Uint8Array(4096);

const pad16 = (n: number): number => (16 - (n % 16)) % 16;

function scratch(current: Uint8Array, size: number): Uint8Array {
  if (size <= current.length) return current;
  return new Uint8Array(size <= SCRATCH_LIMIT ? Math.min(SCRATCH_LIMIT, Math.max(size, current.length * 2)) : size);
}

function putLength64(into: Uint8Array, at: number, n: number): void {
  // Little-endian 64-bit; lengths here are below 2^32 (a Uint8Array's), so the high word is 0.
  into[at] = n & 0xff;
  into[at + 1] = (n >>> 8) & 0xff;
  into[at + 2] = (n >>> 16) & 0xff;
  into[at + 3] = (n >>> 24) & 0xff;
  into[at + 4] = into[at + 5] = into[at + 6] = into[at + 7] = 0;
}

/**
 * Encrypts `plaintext` under `key` (32 bytes) and `nonce` (24 bytes) with associated data `aad`,
 * writing `ciphertext ‖ tag` (plaintext length + 16 bytes) into `output`.
 * @throws RangeError when a length is wrong.
 */
export function xchachaEncryptInto(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, output: Uint8Array): void {
  if (key.length !== 32) throw new RangeError(`key must be 32 bytes, got ${key.length}`);
  if (nonce.length !== 24) throw new RangeError(`nonce must be 24 bytes, got ${nonce.length}`);
  const length = plaintext.length;
  if (output.length !== length + XCHACHA_TAG_LENGTH) throw new RangeError(`output must be ${length + XCHACHA_TAG_LENGTH} bytes, got ${output.length}`);

  const streamSize = 64 + length;
  const s = scratch(stream, streamSize);
  if (s.length <= SCRATCH_LIMIT) stream = s;
  const work = s.subarray(0, streamSize);
  work.fill(0, 0, 64);
  work.set(plaintext, 64);
  xchacha20(key, nonce, work, work, 0);
  const ciphertext = work.subarray(64);

  const aadEnd = aad.length + pad16(aad.length);
  const ctEnd = aadEnd + length + pad16(length);
  const macSize = ctEnd + 16;
  const m = scratch(mac, macSize);
  if (m.length <= SCRATCH_LIMIT) mac = m;
  const input = m.subarray(0, macSize);
  input.fill(0);
  input.set(aad, 0);
  input.set(ciphertext, aadEnd);
  putLength64(input, ctEnd, aad.length);
  putLength64(input, ctEnd + 8, length);
  const tag = poly1305(input, work.subarray(0, 32));

  output.set(ciphertext, 0);
  output.set(tag, length);
  work.fill(0);
  input.fill(0);
  tag.fill(0);
}
