/**
 * At-rest sealing for values kept in shared storage (Redis): XChaCha20-Poly1305 under a key ring.
 *
 * Sealed layout: `version(1)=1 ‖ keyIdLength(1) ‖ keyId(ASCII) ‖ nonce(24) ‖ ciphertext‖tag(16)`.
 * The key id travels in clear so `open` finds the key after a rotation; the AEAD's associated
 * data is `header ‖ associatedData`, so neither the key id nor the storage key name the caller
 * binds (e.g. the Redis key) can be swapped without the value failing to open.
 */
import { bytesToHex, randomBytes } from '@noble/ciphers/utils.js';
import { xchachaDecryptInto, xchachaEncryptInto } from './aead.js';
import { createNonceSource } from './nonces.js';
import { assertBytes, assertString, concatBytes, fromBase64, isBytes, toBase64, typeName, utf8Decode, utf8Encode } from './bytes.js';
import { CryptoError, decryptFailed } from './errors.js';

/** Byte length of every key in a {@link KeyRing}. */
export const KEYRING_KEY_LENGTH = 32;
const FORMAT_VERSION = 1;
const NONCE_LENGTH = 24;
const TAG_LENGTH = 16;
// Starts alphanumeric, so `__proto__` can never be an id of the plain objects export() builds.
const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** What {@link KeyRing.export} returns: JSON-safe, keys in base64. Secret: store it encrypted. */
export interface KeyRingExport {
  activeKeyId: string;
  keys: Record<string, string>;
}

/** Constructor input of {@link KeyRing}. */
export interface KeyRingOptions {
  /** The key new values are sealed with; must be one of `keys`. */
  activeKeyId: string;
  /** Key id (1-64 of `[A-Za-z0-9_.:-]`, starting alphanumeric) → 32-byte key. */
  keys: Record<string, Uint8Array>;
}

/**
 * A set of 32-byte keys by id, one of them active. Seals with the active key; opens with
 * whichever key the value names, so values sealed before a {@link KeyRing.rotate} still open.
 */
export class KeyRing {
  #keys = new Map<string, Uint8Array>();
  #activeKeyId: string;

  /**
   * @param options - see {@link KeyRingOptions}; the key bytes are copied.
   * @throws TypeError / RangeError for a malformed id or key; CryptoError `UNKNOWN_KEY` when
   *   `activeKeyId` is not among `keys`.
   */
  constructor(options: KeyRingOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${typeName(options)}`);
    const { activeKeyId, keys } = options;
    if (typeof keys !== 'object' || keys === null) throw new TypeError(`options.keys must be an object, got ${typeName(keys)}`);
    for (const [id, key] of Object.entries(keys)) {
      assertKeyId(id, 'key id');
      assertBytes(key, `key "${id}"`, KEYRING_KEY_LENGTH);
      this.#keys.set(id, key.slice());
    }
    assertKeyId(activeKeyId, 'options.activeKeyId');
    if (!this.#keys.has(activeKeyId)) throw new CryptoError('UNKNOWN_KEY', `activeKeyId "${activeKeyId}" is not among the ring's keys`);
    this.#activeKeyId = activeKeyId;
  }

  /** @returns a ring holding one fresh random key, active. */
  static generate(): KeyRing {
    const id = newKeyId(new Set());
    return new KeyRing({ activeKeyId: id, keys: { [id]: randomBytes(KEYRING_KEY_LENGTH) } });
  }

  /**
   * Rebuilds a ring from {@link KeyRing.export} output (e.g. read back from the key file).
   * @throws TypeError / RangeError for a wrong shape, CryptoError `BAD_INPUT` for bad base64,
   *   `UNKNOWN_KEY` when the active key is missing.
   */
  static fromExport(data: unknown): KeyRing {
    if (typeof data !== 'object' || data === null) throw new TypeError(`key ring export must be an object, got ${typeName(data)}`);
    const { activeKeyId, keys } = data as Partial<KeyRingExport>;
    assertString(activeKeyId, 'activeKeyId');
    if (typeof keys !== 'object' || keys === null) throw new TypeError(`keys must be an object, got ${typeName(keys)}`);
    const decoded: Record<string, Uint8Array> = {};
    for (const [id, text] of Object.entries(keys)) {
      assertKeyId(id, 'key id');
      decoded[id] = fromBase64(text as string, `key "${id}"`);
    }
    return new KeyRing({ activeKeyId, keys: decoded });
  }

  /** The id of the key new values are sealed with. */
  get activeKeyId(): string {
    return this.#activeKeyId;
  }

  /** Every key id in the ring, in insertion order. */
  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  /** @returns the keys in base64 (secret material: keep it in the encrypted key file). */
  export(): KeyRingExport {
    const keys: Record<string, string> = {};
    for (const [id, key] of this.#keys) keys[id] = toBase64(key);
    return { activeKeyId: this.#activeKeyId, keys };
  }

  /** Keeps keys out of logs: `JSON.stringify(ring)` shows ids only. */
  toJSON(): { activeKeyId: string; keyIds: string[] } {
    return { activeKeyId: this.#activeKeyId, keyIds: this.keyIds };
  }

  /**
   * Adds a fresh random key and makes it active. Older keys stay, so older values still open.
   * @returns the new key id (8 random hex digits).
   */
  rotate(): string {
    const id = newKeyId(new Set(this.#keys.keys()));
    this.#keys.set(id, randomBytes(KEYRING_KEY_LENGTH));
    this.#activeKeyId = id;
    return id;
  }

  /**
   * Drops a key once no stored value needs it any more (see {@link KeyRing.sealedKeyId}).
   * @throws CryptoError `UNKNOWN_KEY` when absent; RangeError for the active key.
   */
  retire(keyId: string): void {
    assertString(keyId, 'keyId');
    if (keyId === this.#activeKeyId) throw new RangeError(`cannot retire the active key "${keyId}"; rotate first`);
    const key = this.#keys.get(keyId);
    if (key === undefined) throw new CryptoError('UNKNOWN_KEY', `key id "${keyId}" is not in this key ring`);
    key.fill(0);
    this.#keys.delete(keyId);
  }

  /**
   * Seals with the active key.
   * @param plaintext - bytes to seal.
   * @param associatedData - what the value is bound to, typically its storage key name; `open`
   *   must be given the same.
   * @returns the sealed bytes (header, nonce, ciphertext and tag). Use the view, not `.buffer`
   *   (callers must not assume the view covers its whole buffer).
   * @throws TypeError for a wrong-type argument.
   */
  seal(plaintext: Uint8Array, associatedData: string | Uint8Array): Uint8Array {
    assertBytes(plaintext, 'plaintext');
    const ad = adBytes(associatedData);
    const id = this.#activeKeyId;
    const headerLength = 2 + id.length;
    const bodyOffset = headerLength + NONCE_LENGTH;
    // The sealed value is built in one buffer: header, nonce, then ciphertext and tag written in
    // place by the AEAD (crypto/aead.ts, the same bytes as noble's xchacha20poly1305).
    const out = new Uint8Array(bodyOffset + plaintext.length + TAG_LENGTH);
    out[0] = FORMAT_VERSION;
    out[1] = id.length;
    for (let i = 0; i < id.length; i++) out[2 + i] = id.charCodeAt(i);
    const nonce = out.subarray(headerLength, bodyOffset);
    fillNonce(nonce);
    const aad = new Uint8Array(headerLength + ad.length);
    aad.set(out.subarray(0, headerLength));
    aad.set(ad, headerLength);
    xchachaEncryptInto(this.#keys.get(id)!, nonce, aad, plaintext, out.subarray(bodyOffset));
    return out;
  }

  /**
   * Opens a value from {@link KeyRing.seal}, with the key it names.
   * @param sealed - the sealed bytes.
   * @param associatedData - the same associated data as at sealing.
   * @returns the plaintext.
   * @throws CryptoError `DECRYPT_FAILED` for a wrong associated data (value moved to another
   *   name), tampered, truncated or malformed data; `UNKNOWN_KEY` when the named key is not in
   *   the ring (retired, or from another ring); TypeError for a wrong-type argument.
   */
  open(sealed: Uint8Array, associatedData: string | Uint8Array): Uint8Array {
    assertBytes(sealed, 'sealed');
    const ad = adBytes(associatedData);
    const { keyId, headerLength } = parseHeader(sealed);
    const key = this.#keys.get(keyId);
    if (key === undefined) {
      throw new CryptoError(
        'UNKNOWN_KEY',
        `could not open: sealed with key id ${JSON.stringify(keyId)}, which is not in this key ring (it holds ${this.keyIds.join(', ')})`,
      );
    }
    const nonce = sealed.subarray(headerLength, headerLength + NONCE_LENGTH);
    const body = sealed.subarray(headerLength + NONCE_LENGTH);
    // parseHeader made sure the body holds at least a tag.
    const out = new Uint8Array(body.length - TAG_LENGTH);
    if (!xchachaDecryptInto(key, nonce, concatBytes(sealed.subarray(0, headerLength), ad), body, out)) {
      throw decryptFailed(undefined, new Error('invalid tag'));
    }
    return out;
  }

  /**
   * Reads which key sealed a value without opening it, to find values to re-seal after a rotation.
   * @throws CryptoError `DECRYPT_FAILED` when the header is malformed; TypeError for a non-Uint8Array.
   */
  sealedKeyId(sealed: Uint8Array): string {
    assertBytes(sealed, 'sealed');
    return parseHeader(sealed).keyId;
  }

  /**
   * {@link KeyRing.seal} for text: UTF-8 in, standard base64 out, ready to store as a string.
   * @throws TypeError for a wrong-type argument.
   */
  sealString(text: string, associatedData: string | Uint8Array): string {
    return toBase64(this.seal(utf8Encode(text, 'text'), associatedData));
  }

  /**
   * Opens a value from {@link KeyRing.sealString}.
   * @throws CryptoError `DECRYPT_FAILED` (also for text that is not base64) or `UNKNOWN_KEY`,
   *   as {@link KeyRing.open}; `BAD_INPUT` when the plaintext is not UTF-8 (sealed as bytes).
   */
  openString(sealedText: string, associatedData: string | Uint8Array): string {
    assertString(sealedText, 'sealedText');
    let sealed: Uint8Array;
    try {
      sealed = fromBase64(sealedText, 'sealedText');
    } catch (cause) {
      throw decryptFailed('sealedText is not valid base64, so not a sealed value', cause);
    }
    return utf8Decode(this.open(sealed, associatedData), 'plaintext');
  }
}

function parseHeader(sealed: Uint8Array): { keyId: string; headerLength: number } {
  if (sealed.length < 2) throw decryptFailed(`sealed value is truncated (${sealed.length} bytes)`);
  if (sealed[0] !== FORMAT_VERSION) {
    throw decryptFailed(`unknown format version ${sealed[0]} (expected ${FORMAT_VERSION}): corrupted, or written by a newer version`);
  }
  const idLength = sealed[1]!;
  const headerLength = 2 + idLength;
  const min = headerLength + NONCE_LENGTH + TAG_LENGTH;
  if (idLength === 0 || sealed.length < min) throw decryptFailed(`sealed value is truncated (${sealed.length} bytes, at least ${min} expected)`);
  // Latin-1 keeps any tampered byte visible in the error instead of failing to decode.
  const keyId = String.fromCharCode(...sealed.subarray(2, headerLength));
  return { keyId, headerLength };
}

function adBytes(associatedData: string | Uint8Array): Uint8Array {
  if (typeof associatedData === 'string') return utf8Encode(associatedData, 'associatedData');
  if (isBytes(associatedData)) return associatedData;
  throw new TypeError(`associatedData must be a string or a Uint8Array, got ${typeName(associatedData)}`);
}

function assertKeyId(id: unknown, name: string): asserts id is string {
  assertString(id, name);
  if (!KEY_ID_PATTERN.test(id))
    throw new RangeError(`${name} must be 1-64 characters of [A-Za-z0-9_.:-] starting with a letter or digit, got ${JSON.stringify(id)}`);
}

// Random rather than k1, k2…: two processes rotating independently must not mint the same id.
function newKeyId(taken: ReadonlySet<string>): string {
  for (;;) {
    const id = bytesToHex(randomBytes(4));
    if (!taken.has(id)) return id;
  }
}

// After NONCE_LENGTH's import is initialised; used by seal().
const fillNonce = createNonceSource(NONCE_LENGTH);
