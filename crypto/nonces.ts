/**
 * Random nonces drawn from a pooled CSPRNG buffer: one getRandomValues call per 256 nonces
 * instead of one per seal (it showed up on the hub's hot path). Every nonce is a fresh slice of
 * the pool, never handed out twice.
 */
import { randomBytes } from '@noble/ciphers/utils.js';

const POOL_NONCES = 256;

export function createNonceSource(length: number): () => Uint8Array {
  let pool = new Uint8Array(0);
  let offset = 0;
  return () => {
    if (offset + length > pool.length) {
      pool = randomBytes(length * POOL_NONCES);
      offset = 0;
    }
    const nonce = pool.slice(offset, offset + length);
    offset += length;
    return nonce;
  };
}
