/**
 * The file-system half of the key file, Node only (the rest of crypto/ is isomorphic, so this
 * module is not exported from crypto/index.ts; the server entry re-exports it).
 */
import { chmod, link, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { bytesToHex, randomBytes } from '@noble/ciphers/utils.js';
import { decryptKeyFileAsync, encryptKeyFileAsync, type KeyFileOptions } from './keyfile.js';

/** The key file's conventional name. */
export const DEFAULT_KEY_FILE_NAME = '.skynet_linker.keys';

const FILE_MODE = 0o600;

/**
 * Encrypts `data` with `passphrase` and writes it to `path` with mode 0600, atomically: a temp
 * file in the same directory (created 0600, then chmod 0600 since the umask can narrow it) is
 * fsynced and renamed over `path`, so a crash never leaves a half-written or readable key file.
 * @param path - destination file.
 * @param data - any JSON value.
 * @param passphrase - non-empty passphrase.
 * @param options - scrypt cost overrides (tests only).
 * @throws as encryptKeyFile, or the file-system error.
 */
export async function writeKeyFile(path: string, data: unknown, passphrase: string, options?: KeyFileOptions): Promise<void> {
  await putKeyFile(path, data, passphrase, options, 'replace');
}

/**
 * {@link writeKeyFile}, but only if `path` does not exist yet, atomically: when several processes
 * create the same key file at once (hub nodes starting together on one data directory), exactly
 * one wins and the others must read what it wrote. The temp file is hard-linked to `path`, which
 * fails if `path` exists (rename would silently replace it).
 * @returns true when this call created the file; false when it already existed (nothing written).
 */
export async function createKeyFile(path: string, data: unknown, passphrase: string, options?: KeyFileOptions): Promise<boolean> {
  return putKeyFile(path, data, passphrase, options, 'create');
}

async function putKeyFile(path: string, data: unknown, passphrase: string, options: KeyFileOptions | undefined, mode: 'replace' | 'create'): Promise<boolean> {
  const text = await encryptKeyFileAsync(data, passphrase, options);
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${bytesToHex(randomBytes(6))}.tmp`);
  let created = true;
  try {
    await writeNewFile(tmp, text);
    if (mode === 'replace') await rename(tmp, path);
    else {
      try {
        await link(tmp, path);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (code === 'EEXIST') created = false;
        else if (NO_HARD_LINKS.has(code)) created = await createInPlace(path, text);
        else throw error;
      }
      await unlink(tmp);
    }
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  if (created) await syncDir(dir);
  return created;
}

/** Errors of file systems without hard links (FAT, exFAT, some network shares). */
export const NO_HARD_LINKS: ReadonlySet<string> = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/** Without hard links: create `path` exclusively in place (one winner; not atomic for readers). */
async function createInPlace(path: string, text: string): Promise<boolean> {
  try {
    await writeNewFile(path, text);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Creates `path` with mode 0600 and `text`, fsynced. 'wx' refuses an existing path (so a planted
 * symlink can't redirect the write); a file whose write failed is removed, so that nothing
 * half-written ever stands in for a key file.
 */
async function writeNewFile(path: string, text: string): Promise<void> {
  const handle = await open(path, 'wx', FILE_MODE);
  try {
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    // The umask may have narrowed the mode given to open().
    await chmod(path, FILE_MODE);
  } catch (error) {
    await unlink(path).catch(() => undefined);
    throw error;
  }
}

/**
 * Reads and decrypts a key file.
 * @param path - the key file.
 * @param passphrase - its passphrase.
 * @returns the stored JSON value.
 * @throws CryptoError `BAD_PASSPHRASE` / `BAD_KEY_FILE` as decryptKeyFile; the file-system
 *   error (e.g. code `ENOENT`) when it can't be read.
 */
export async function readKeyFile(path: string, passphrase: string): Promise<unknown> {
  return decryptKeyFileAsync(await readFile(path, 'utf8'), passphrase);
}

// Makes the rename durable; not every platform can open a directory, hence best effort.
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Windows and some file systems refuse; the data itself is already fsynced.
  }
}
