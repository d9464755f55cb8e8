/**
 * Content of the passphrase-encrypted key file (`.skynet_linker.keys`): any JSON value, sealed
 * with XChaCha20-Poly1305 under a key derived by scrypt. Pure functions over text, so they also
 * run in a browser; the file-system part lives in keyfile-node.ts.
 *
 * Layout (JSON, base64 fields):
 * `{ "format": "skynet-linker-keys", "version": 1, "kdf": { "name": "scrypt", "N", "r", "p", "salt" },
 *    "cipher": "xchacha20poly1305", "nonce", "ciphertext" }`.
 * The header (format, version, kdf, cipher) is the AEAD's associated data, so editing it fails.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/ciphers/utils.js';
import { scrypt, scryptAsync } from '@noble/hashes/scrypt.js';
import { canonicalJson } from '../protocol/canonical.js';
import { assertString, fromBase64, toBase64, typeName, utf8Decode, utf8Encode } from './bytes.js';
import { CryptoError } from './errors.js';

/** The key file's `format` field. */
export const KEY_FILE_FORMAT = 'skynet-linker-keys';
/** The key file layout version this build writes and reads. */
export const KEY_FILE_VERSION = 1;
/** The key file's `cipher` field. */
export const KEY_FILE_CIPHER = 'xchacha20poly1305';

/** scrypt cost parameters. */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** Cost overrides for {@link encryptKeyFile}; lower `N` only in tests. */
export type KeyFileOptions = Partial<ScryptParams>;

/** N=2^15, r=8, p=1: 32 MiB and a fraction of a second, the usual interactive-login cost. */
export const DEFAULT_KEY_FILE_KDF: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

// Bounds stop a crafted file from asking for gigabytes of memory or minutes of CPU.
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY = 2 ** 30;
const SALT_LENGTH = 16;
const NONCE_LENGTH = 24;
const TAG_LENGTH = 16;

interface Header {
  format: string;
  version: number;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: string;
}

interface Parsed {
  header: Header;
  salt: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/**
 * Encrypts a JSON value into key-file text. Synchronous: blocks for the scrypt time (about a
 * second on a slow machine with the defaults); prefer {@link encryptKeyFileAsync} on a server.
 * @param data - any JSON value (serialized canonically, see canonicalJson).
 * @param passphrase - non-empty; its UTF-8 bytes are used as is (no normalization).
 * @param options - scrypt cost, defaults {@link DEFAULT_KEY_FILE_KDF}.
 * @returns the key-file text (JSON, with a trailing newline).
 * @throws TypeError for a non-string passphrase or non-JSON data; RangeError for an empty
 *   passphrase, NaN / Infinity in data, or out-of-range scrypt parameters.
 */
export function encryptKeyFile(data: unknown, passphrase: string, options?: KeyFileOptions): string {
  const job = prepare(data, passphrase, options);
  return seal(job, scrypt(job.password, job.salt, { ...job.params, dkLen: 32 }));
}

/** {@link encryptKeyFile}, yielding to the event loop while scrypt runs. */
export async function encryptKeyFileAsync(data: unknown, passphrase: string, options?: KeyFileOptions): Promise<string> {
  const job = prepare(data, passphrase, options);
  return seal(job, await scryptAsync(job.password, job.salt, { ...job.params, dkLen: 32 }));
}

/**
 * Decrypts key-file text. Synchronous, see {@link decryptKeyFileAsync}.
 * @param text - the key-file content.
 * @param passphrase - the passphrase it was written with.
 * @returns the JSON value that was stored.
 * @throws CryptoError `BAD_PASSPHRASE` for a wrong passphrase (or an edited file: the two are
 *   indistinguishable), `BAD_KEY_FILE` when the text is not a valid key file;
 *   TypeError for non-string arguments.
 */
export function decryptKeyFile(text: string, passphrase: string): unknown {
  const password = passwordBytes(passphrase);
  const parsed = parse(text);
  const { N, r, p } = parsed.header.kdf;
  return open(parsed, scrypt(password, parsed.salt, { N, r, p, dkLen: 32 }));
}

/** {@link decryptKeyFile}, yielding to the event loop while scrypt runs. */
export async function decryptKeyFileAsync(text: string, passphrase: string): Promise<unknown> {
  const password = passwordBytes(passphrase);
  const parsed = parse(text);
  const { N, r, p } = parsed.header.kdf;
  return open(parsed, await scryptAsync(password, parsed.salt, { N, r, p, dkLen: 32 }));
}

function prepare(data: unknown, passphrase: string, options: KeyFileOptions | undefined) {
  const password = passwordBytes(passphrase);
  // `?? default` rather than a spread, so `{ N: undefined }` means "default" instead of failing.
  const params = { N: options?.N ?? DEFAULT_KEY_FILE_KDF.N, r: options?.r ?? DEFAULT_KEY_FILE_KDF.r, p: options?.p ?? DEFAULT_KEY_FILE_KDF.p };
  const problem = checkParams(params);
  if (problem) throw new RangeError(`key file scrypt parameters: ${problem}`);
  const plaintext = utf8Encode(canonicalJson(data));
  return { password, params, plaintext, salt: randomBytes(SALT_LENGTH) };
}

function seal(job: ReturnType<typeof prepare>, key: Uint8Array): string {
  const { N, r, p } = job.params;
  const header: Header = {
    format: KEY_FILE_FORMAT,
    version: KEY_FILE_VERSION,
    kdf: { name: 'scrypt', N, r, p, salt: toBase64(job.salt) },
    cipher: KEY_FILE_CIPHER,
  };
  const nonce = randomBytes(NONCE_LENGTH);
  const ciphertext = xchacha20poly1305(key, nonce, headerAad(header)).encrypt(job.plaintext);
  key.fill(0);
  return `${JSON.stringify({ ...header, nonce: toBase64(nonce), ciphertext: toBase64(ciphertext) }, null, 2)}\n`;
}

function open(parsed: Parsed, key: Uint8Array): unknown {
  let plaintext: Uint8Array;
  try {
    plaintext = xchacha20poly1305(key, parsed.nonce, headerAad(parsed.header)).decrypt(parsed.ciphertext);
  } catch (cause) {
    throw new CryptoError('BAD_PASSPHRASE', 'could not decrypt the key file: wrong passphrase (or the file was modified)', { cause });
  } finally {
    key.fill(0);
  }
  try {
    return JSON.parse(utf8Decode(plaintext)) as unknown;
  } catch (cause) {
    throw new CryptoError('BAD_KEY_FILE', 'the key file decrypted but its content is not JSON', { cause });
  }
}

function parse(text: string): Parsed {
  assertString(text, 'text');
  const bad = (why: string, cause?: unknown) =>
    new CryptoError('BAD_KEY_FILE', `not a valid skynet-linker key file: ${why}`, cause === undefined ? undefined : { cause });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw bad('it is not JSON', cause);
  }
  if (!isRecord(json)) throw bad(`expected a JSON object, got ${typeName(json)}`);
  const { format, version, kdf, cipher, nonce, ciphertext } = json;
  if (format !== KEY_FILE_FORMAT) throw bad(`format is ${JSON.stringify(format)}, expected "${KEY_FILE_FORMAT}"`);
  if (version !== KEY_FILE_VERSION) throw bad(`unsupported version ${JSON.stringify(version)}; this build reads version ${KEY_FILE_VERSION}`);
  if (!isRecord(kdf) || kdf.name !== 'scrypt') throw bad('kdf must be { "name": "scrypt", … }');
  const { N, r, p, salt } = kdf;
  const problem = checkParams({ N, r, p });
  if (problem) throw bad(`kdf: ${problem}`);
  if (cipher !== KEY_FILE_CIPHER) throw bad(`cipher is ${JSON.stringify(cipher)}, expected "${KEY_FILE_CIPHER}"`);
  const field = (value: unknown, name: string, min: number, max: number): Uint8Array => {
    if (typeof value !== 'string') throw bad(`${name} must be a base64 string`);
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(value, name);
    } catch (cause) {
      throw bad(`${name} is not valid base64`, cause);
    }
    if (bytes.length < min || bytes.length > max) throw bad(`${name} is ${bytes.length} bytes, expected ${min === max ? min : `${min}-${max}`}`);
    return bytes;
  };
  const saltBytes = field(salt, 'kdf.salt', SALT_LENGTH, 64);
  return {
    header: { format, version, kdf: { name: 'scrypt', N: N as number, r: r as number, p: p as number, salt: salt as string }, cipher },
    salt: saltBytes,
    nonce: field(nonce, 'nonce', NONCE_LENGTH, NONCE_LENGTH),
    ciphertext: field(ciphertext, 'ciphertext', TAG_LENGTH, Number.MAX_SAFE_INTEGER),
  };
}

function headerAad(header: Header): Uint8Array {
  const { format, version, kdf, cipher } = header;
  return utf8Encode(canonicalJson({ format, version, kdf, cipher }));
}

function passwordBytes(passphrase: string): Uint8Array {
  assertString(passphrase, 'passphrase');
  if (passphrase.length === 0) throw new RangeError('passphrase must not be empty');
  return utf8Encode(passphrase);
}

/** @returns a description of what is wrong, or undefined when the parameters are acceptable. */
function checkParams({ N, r, p }: { N: unknown; r: unknown; p: unknown }): string | undefined {
  if (typeof N !== 'number' || !Number.isInteger(N) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0) {
    return `N must be a power of two from 2 to 2^20, got ${JSON.stringify(N)}`;
  }
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1 || r > MAX_R) return `r must be an integer from 1 to ${MAX_R}, got ${JSON.stringify(r)}`;
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > MAX_P) return `p must be an integer from 1 to ${MAX_P}, got ${JSON.stringify(p)}`;
  if (128 * r * (N + p) > MAX_MEMORY) return `N=${N}, r=${r}, p=${p} would need more than 1 GiB of memory`;
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
