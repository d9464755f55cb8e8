/**
 * Random nonces drawn from a pooled CSPRNG buffer: one getRandomValues call per 256 nonces
 * instead of one per seal (it showed up on the hub's hot path). Each nonce is copied out of a
 * part of the pool never handed out before.
 */
import { randomBytes } from '@noble/ciphers/utils.js';

const POOL_NONCES = 256;

/** Returns a function that fills its argument (`length` bytes) with a fresh random nonce. */
export function createNonceSource(length: number): (target: Uint8Array) => void {
  let pool = new Uint8Array(0);
  let offset = 0;
  return (target) => {
    if (target.length !== length) throw new RangeError(`nonce target must be ${length} bytes, got ${target.length}`);
    if (offset + length > pool.length) {
      pool = randomBytes(length * POOL_NONCES);
      offset = 0;
    }
    target.set(pool.subarray(offset, offset + length));
    offset += length;
  };
}
