import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptKeyFile, decryptKeyFileAsync, DEFAULT_KEY_FILE_KDF, encryptKeyFile, encryptKeyFileAsync } from '../../crypto/keyfile.js';
import { createKeyFile, DEFAULT_KEY_FILE_NAME, readKeyFile, writeKeyFile } from '../../crypto/keyfile-node.js';
import { CryptoError } from '../../crypto/errors.js';
import { fromBase64, toBase64 } from '../../crypto/bytes.js';
import { KeyRing } from '../../crypto/keyring.js';

const FAST = { N: 16 };

async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CryptoError);
    return (e as CryptoError).code;
  }
  throw new Error('expected a CryptoError, but the call returned');
}

describe('key file content', () => {
  it('round-trips any JSON value (small N)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string({ minLength: 1, unit: 'binary' }), (value, passphrase) => {
        const text = encryptKeyFile(value, passphrase, FAST);
        expect(decryptKeyFile(text, passphrase)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 30 },
    );
  });

  it('has the documented layout, with default cost N=2^15, r=8, p=1', () => {
    const text = encryptKeyFile({ a: 1 }, 'pw');
    const file = JSON.parse(text);
    expect(Object.keys(file).sort()).toEqual(['cipher', 'ciphertext', 'format', 'kdf', 'nonce', 'version']);
    expect(file).toMatchObject({ format: 'skynet-linker-keys', version: 1, cipher: 'xchacha20poly1305', kdf: { name: 'scrypt', N: 32768, r: 8, p: 1 } });
    expect(DEFAULT_KEY_FILE_KDF).toEqual({ N: 2 ** 15, r: 8, p: 1 });
    expect(fromBase64(file.kdf.salt)).toHaveLength(16);
    expect(fromBase64(file.nonce)).toHaveLength(24);
    expect(fromBase64(file.ciphertext)).toHaveLength('{"a":1}'.length + 16);
    expect(decryptKeyFile(text, 'pw')).toEqual({ a: 1 });
  });

  it('treats undefined cost options as the defaults', () => {
    const file = JSON.parse(encryptKeyFile({}, 'pw', { N: 16, r: undefined, p: undefined }));
    expect(file.kdf).toMatchObject({ N: 16, r: 8, p: 1 });
  });

  it('sync and async variants interoperate, and hold a key ring export', async () => {
    const ring = KeyRing.generate();
    const text = await encryptKeyFileAsync({ keyring: ring.export() }, 'pw', FAST);
    const back = decryptKeyFile(text, 'pw') as { keyring: unknown };
    expect(KeyRing.fromExport(back.keyring).export()).toEqual(ring.export());
    expect(await decryptKeyFileAsync(encryptKeyFile([1, 'x'], 'pw', { N: 32, r: 2, p: 2 }), 'pw')).toEqual([1, 'x']);
  });

  it('a wrong passphrase fails with BAD_PASSPHRASE and a clear message', async () => {
    const text = encryptKeyFile({ secret: true }, 'correct horse', FAST);
    expect(await codeOf(() => decryptKeyFile(text, 'correct hors'))).toBe('BAD_PASSPHRASE');
    expect(await codeOf(() => decryptKeyFileAsync(text, 'Correct horse'))).toBe('BAD_PASSPHRASE');
    expect(() => decryptKeyFile(text, 'x')).toThrow('could not decrypt the key file: wrong passphrase (or the file was modified)');
  });

  it('an edited header or ciphertext fails with BAD_PASSPHRASE', async () => {
    const file = JSON.parse(encryptKeyFile({ a: 1 }, 'pw', FAST));
    const edits = [
      { ...file, kdf: { ...file.kdf, N: 32 } },
      { ...file, kdf: { ...file.kdf, r: 7 } },
      { ...file, kdf: { ...file.kdf, salt: toBase64(new Uint8Array(16)) } },
      { ...file, nonce: toBase64(new Uint8Array(24)) },
      { ...file, ciphertext: toBase64(fromBase64(file.ciphertext).map((b, i) => (i === 0 ? b ^ 1 : b))) },
    ];
    for (const edited of edits) expect(await codeOf(() => decryptKeyFile(JSON.stringify(edited), 'pw'))).toBe('BAD_PASSPHRASE');
  });

  const good = JSON.parse(encryptKeyFile({ a: 1 }, 'pw', FAST));
  it.each<[string, string, RegExp]>([
    ['not JSON', 'hello', /not JSON/],
    ['truncated text', JSON.stringify(good).slice(0, 40), /not JSON/],
    ['an array', '[]', /expected a JSON object, got array/],
    ['wrong format', JSON.stringify({ ...good, format: 'other' }), /format is "other"/],
    ['newer version', JSON.stringify({ ...good, version: 2 }), /unsupported version 2/],
    ['missing kdf', JSON.stringify({ ...good, kdf: undefined }), /kdf must be/],
    ['argon2 kdf', JSON.stringify({ ...good, kdf: { ...good.kdf, name: 'argon2id' } }), /kdf must be/],
    ['N not a power of two', JSON.stringify({ ...good, kdf: { ...good.kdf, N: 3 } }), /N must be a power of two/],
    ['N too large', JSON.stringify({ ...good, kdf: { ...good.kdf, N: 2 ** 30 } }), /N must be a power of two/],
    ['r zero', JSON.stringify({ ...good, kdf: { ...good.kdf, r: 0 } }), /r must be an integer/],
    ['p string', JSON.stringify({ ...good, kdf: { ...good.kdf, p: '1' } }), /p must be an integer/],
    ['memory over 1 GiB', JSON.stringify({ ...good, kdf: { ...good.kdf, N: 2 ** 20, r: 16 } }), /more than 1 GiB/],
    ['other cipher', JSON.stringify({ ...good, cipher: 'aes-256-gcm' }), /cipher is "aes-256-gcm"/],
    ['short salt', JSON.stringify({ ...good, kdf: { ...good.kdf, salt: toBase64(new Uint8Array(8)) } }), /kdf.salt is 8 bytes/],
    ['nonce not base64', JSON.stringify({ ...good, nonce: '!!' }), /nonce is not valid base64/],
    ['nonce of 12 bytes', JSON.stringify({ ...good, nonce: toBase64(new Uint8Array(12)) }), /nonce is 12 bytes, expected 24/],
    ['ciphertext missing', JSON.stringify({ ...good, ciphertext: undefined }), /ciphertext must be a base64 string/],
    ['ciphertext shorter than the tag', JSON.stringify({ ...good, ciphertext: toBase64(new Uint8Array(15)) }), /ciphertext is 15 bytes/],
  ])('a malformed file (%s) fails with BAD_KEY_FILE', async (_name, text, message) => {
    expect(await codeOf(() => decryptKeyFile(text, 'pw'))).toBe('BAD_KEY_FILE');
    expect(() => decryptKeyFile(text, 'pw')).toThrow(message);
  });

  it.each<[string, () => unknown, ErrorConstructor, string | RegExp]>([
    ['empty passphrase', () => encryptKeyFile({}, '', FAST), RangeError, 'passphrase must not be empty'],
    ['passphrase bytes', () => encryptKeyFile({}, new Uint8Array(3) as unknown as string, FAST), TypeError, 'passphrase must be a string, got Uint8Array'],
    ['N = 3', () => encryptKeyFile({}, 'pw', { N: 3 }), RangeError, /N must be a power of two from 2 to 2\^20, got 3/],
    ['p = 0', () => encryptKeyFile({}, 'pw', { p: 0, N: 16 }), RangeError, /p must be an integer/],
    ['NaN in data', () => encryptKeyFile({ n: NaN }, 'pw', FAST), RangeError, /NaN at \$\.n/],
    ['undefined data', () => encryptKeyFile(undefined, 'pw', FAST), TypeError, /undefined/],
    ['decrypt non-string text', () => decryptKeyFile(Buffer.from('{}') as unknown as string, 'pw'), TypeError, 'text must be a string, got Buffer'],
    ['decrypt empty passphrase', () => decryptKeyFile('{}', ''), RangeError, 'passphrase must not be empty'],
  ])('%s throws', (_name, fn, type, message) => {
    expect(fn).toThrow(type);
    expect(fn).toThrow(message);
  });
});

describe('key file on disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skynet-keyfile-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const posix = process.platform !== 'win32';

  it('is named .skynet_linker.keys by default', () => {
    expect(DEFAULT_KEY_FILE_NAME).toBe('.skynet_linker.keys');
  });

  it('writes with mode 0600 atomically (no temp file left) and reads back', async () => {
    const path = join(dir, DEFAULT_KEY_FILE_NAME);
    await writeKeyFile(path, { signing: 'abc', n: [1, 2] }, 'pw', FAST);
    if (posix) expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual([DEFAULT_KEY_FILE_NAME]);
    expect(await readKeyFile(path, 'pw')).toEqual({ signing: 'abc', n: [1, 2] });
  });

  it('replaces an existing world-readable file with a 0600 one', async () => {
    const path = join(dir, 'replace.keys');
    writeFileSync(path, 'old');
    chmodSync(path, 0o644);
    await writeKeyFile(path, { v: 2 }, 'pw', FAST);
    if (posix) expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await readKeyFile(path, 'pw')).toEqual({ v: 2 });
  });

  it('a wrong passphrase gives BAD_PASSPHRASE, a corrupted file BAD_KEY_FILE, a missing one ENOENT', async () => {
    const path = join(dir, 'corrupt.keys');
    await writeKeyFile(path, { a: 1 }, 'pw', FAST);
    expect(await codeOf(() => readKeyFile(path, 'wrong'))).toBe('BAD_PASSPHRASE');
    writeFileSync(path, readFileSync(path, 'utf8').slice(0, 50));
    expect(await codeOf(() => readKeyFile(path, 'pw'))).toBe('BAD_KEY_FILE');
    await expect(readKeyFile(join(dir, 'missing.keys'), 'pw')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('createKeyFile creates only when absent: concurrent creators, exactly one wins, nothing overwritten', async () => {
    const path = join(dir, 'create.keys');
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => createKeyFile(path, { n }, 'pw', FAST)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.indexOf(true) + 1;
    expect(await readKeyFile(path, 'pw')).toEqual({ n: winner });
    expect(await createKeyFile(path, { n: 99 }, 'pw', FAST)).toBe(false);
    expect(await readKeyFile(path, 'pw')).toEqual({ n: winner });
    if (posix) expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('leaves no temp file behind when the write fails', async () => {
    await expect(writeKeyFile(join(dir, 'no-such-dir', 'x.keys'), {}, 'pw', FAST)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(writeKeyFile(join(dir, 'bad.keys'), { n: NaN }, 'pw', FAST)).rejects.toThrow(RangeError);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
