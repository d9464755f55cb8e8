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

/**
 * A sealed value as the store keeps it: base64 of `version(1)=1 ‖ …` (crypto/keyring.ts), so it
 * always starts with `A` (so would format versions 0-3; a property test pins it). Every value the
 * memory layer seals is JSON text, which never does.
 */
export function isSealedText(stored: string): boolean {
  return stored.charCodeAt(0) === 0x41; // 'A'
}

/**
 * The values sealer for a store that lives in the hub's own memory (the embedded store). By
 * default values are kept as they are, because sealing them would protect nothing there: the key
 * ring sits in the same heap, so whatever could read the values could read the keys; what the
 * embedded store keeps on disk is its snapshot files, and those stay sealed whole with `sealer`
 * (memory/snapshots.ts). It also saves the hub sealing every message it routes (XChaCha20-Poly1305
 * in pure JS: about 40% of its CPU per message, measured with `npm run bench`). With `sealEach`
 * (config `sealing.in_memory`) each value is sealed as on Redis.
 *
 * Either way both kinds of value read back: sealed ones (a snapshot of an earlier build or taken
 * with `sealEach`, a dump from a Redis hub) are recognized ({@link isSealedText}) and opened with
 * `sealer`; kept ones are used as they are (the snapshot they came from was authenticated whole).
 * So the option can be turned on and off over the same state.
 */
export function inProcessValues(sealer: ValueSealer, sealEach: boolean): ValueSealer {
  if (!sealer.enabled) return sealer;
  return {
    ...(sealEach ? sealer : { seal: (text: string) => text }),
    enabled: true,
    open: (stored, associatedData) => (isSealedText(stored) ? sealer.open(stored, associatedData) : stored),
  };
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
