import { KeyRing } from '../crypto/keyring.js';

/**
 * How the memory layer seals values before they reach the store. With a key ring every payload,
 * context value and snapshot is XChaCha20-Poly1305 sealed with associated data = its key name;
 * `plainText` stores JSON as is (tests of the embedded store, or sealing explicitly turned off).
 */
export interface ValueSealer {
  readonly enabled: boolean;
  seal(text: string, associatedData: string): string;
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

export function keyRingSealer(ring: StringSealingKeyRing): ValueSealer {
  // A KeyRing's own sealString is seal() plus UTF-8 and base64 done portably; on the server the
  // same text comes out of Node's native encoders.
  const seal = ring instanceof KeyRing ? ring.seal.bind(ring) : undefined;
  return {
    enabled: true,
    // Same text as `sealString` (standard padded base64 of the sealed bytes), with Node's native
    // encoder: the crypto layer stays isomorphic, this server-side path is on every send.
    seal: seal
      ? (text, ad) => {
          const sealed = seal(Buffer.from(text, 'utf8'), ad);
          return Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length).toString('base64');
        }
      : (text, ad) => ring.sealString(text, ad),
    open: (stored, ad) => ring.openString(stored, ad),
  };
}
