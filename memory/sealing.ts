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
  return {
    enabled: true,
    seal: (text, ad) => ring.sealString(text, ad),
    open: (stored, ad) => ring.openString(stored, ad),
  };
}
