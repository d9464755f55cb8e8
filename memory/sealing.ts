import { KeyRing } from '../crypto/keyring.js';
import { sealNative, sealThread } from './seal-pool.js';

/**
 * How the memory layer seals values before they reach the store. With a key ring every payload,
 * context value and snapshot is XChaCha20-Poly1305 sealed with associated data = its key name;
 * `plainText` stores JSON as is (tests of the embedded store, or sealing explicitly turned off).
 */
export interface ValueSealer {
  readonly enabled: boolean;
  seal(text: string, associatedData: string): string;
  /**
   * The same as `seal`, possibly off the event loop (the send path uses it when present): results
   * come back in call order.
   */
  sealAsync?(text: string, associatedData: string): Promise<string>;
  open(stored: string, associatedData: string): string;
}

export const plainText: ValueSealer = {
  enabled: false,
  seal: (text) => text,
  open: (stored) => stored,
};

/** Anything with the key ring's string API (crypto/keyring.ts). */
export interface StringSealingKeyRing {
  sealString(text: string, associatedData: string): string;
  openString(sealed: string, associatedData: string): string;
}

export interface KeyRingSealerOptions {
  /** Seal messages on the send path in the process's sealing thread (memory/seal-pool.ts). Default true. */
  offThread?: boolean;
}

export function keyRingSealer(ring: StringSealingKeyRing, options: KeyRingSealerOptions = {}): ValueSealer {
  // A KeyRing's own sealString is seal() plus UTF-8 and base64 done portably; on the server the
  // same text comes out of Node's native encoders (the crypto layer stays isomorphic; this
  // server-side path is on every send).
  if (!(ring instanceof KeyRing)) {
    return { enabled: true, seal: (text, ad) => ring.sealString(text, ad), open: (stored, ad) => ring.openString(stored, ad) };
  }
  const thread = options.offThread === false ? null : sealThread();
  return {
    enabled: true,
    seal: (text, ad) => sealNative(ring, text, ad),
    ...(thread ? { sealAsync: (text: string, ad: string) => thread.seal(ring, text, ad) } : {}),
    open: (stored, ad) => ring.openString(stored, ad),
  };
}
