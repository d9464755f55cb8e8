/**
 * The per-user data directory (`$SKYNET_LINKER_HOME`, default `~/.skynet-linker`): the local
 * admin credential created by `serve`, per-agent tokens the CLI issued for itself, the key file
 * and its passphrase, and the embedded store's snapshots. Every secret file is mode 0600.
 */
import { chmodSync, closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NO_HARD_LINKS } from '../crypto/keyfile-node.js';

export function dataHome(explicit?: string): string {
  return explicit ?? process.env.SKYNET_LINKER_HOME ?? join(homedir(), '.skynet-linker');
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Writes a secret file atomically with mode 0600. */
export function writeSecretFile(path: string, text: string): void {
  const tmp = tempPath(path);
  writeDurably(tmp, text);
  try {
    renameSync(tmp, path);
  } catch (error) {
    unlinkSync(tmp);
    throw error;
  }
}

/** A temp file name beside `path` (pid alone is not unique across containers sharing a volume: all PID 1). */
function tempPath(path: string): string {
  return `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

/**
 * Writes a secret file (0600, fsynced) only if `path` does not exist, atomically: a complete temp
 * file is hard-linked into place, and the link fails if `path` exists. Several processes racing:
 * exactly one creates it, and nobody ever reads it half-written. Where the file system has no
 * hard links, the file is created exclusively in place (still one winner; a reader racing the
 * winner's write could see it incomplete).
 * @returns true when this call created it.
 */
export function createSecretFile(path: string, text: string): boolean {
  const tmp = tempPath(path);
  try {
    writeDurably(tmp, text);
    linkSync(tmp, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!NO_HARD_LINKS.has(code)) throw error;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // never created, or already gone
    }
  }
  try {
    writeDurably(path, text);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Creates `path` (must not exist) with mode 0600 and `text`, fsynced; removes it if that fails. */
function writeDurably(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(path, 0o600);
  } catch (error) {
    // A half-written secret must not stand in for the real one at the next start.
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
    throw error;
  }
}

export interface LocalCredential {
  agent_id: string;
  token: string;
  server: string;
}

export const adminCredentialPath = (home: string) => join(home, 'admin.json');
export const agentCredentialPath = (home: string, agentId: string) => join(home, 'agents', `${agentId}.json`);

export function readCredential(path: string): LocalCredential | null {
  if (!existsSync(path)) return null;
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as LocalCredential;
    return typeof parsed.token === 'string' && typeof parsed.agent_id === 'string' ? parsed : null;
  } catch {
    return null;
  }
}

export function writeCredential(path: string, cred: LocalCredential): void {
  ensureDir(join(path, '..'));
  writeSecretFile(path, JSON.stringify(cred, null, 2) + '\n');
}

/**
 * The passphrase of the key file: `SKYNET_LINKER_PASSPHRASE`, else one generated once and kept in
 * `<home>/passphrase` (0600). Set the variable in production so the key file alone is useless.
 */
export function keyFilePassphrase(home: string): { passphrase: string; source: 'env' | 'file' } {
  const fromEnv = process.env.SKYNET_LINKER_PASSPHRASE;
  if (fromEnv) return { passphrase: fromEnv, source: 'env' };
  const path = join(home, 'passphrase');
  if (existsSync(path)) return { passphrase: readFileSync(path, 'utf8').trim(), source: 'file' };
  const passphrase = randomBytes(32).toString('base64url');
  ensureDir(home);
  // Another process may be creating it at this very moment: the first one's stands.
  if (!createSecretFile(path, passphrase + '\n')) return { passphrase: readWinnersPassphrase(path), source: 'file' };
  return { passphrase, source: 'file' };
}

/**
 * The passphrase another process just created. With hard links it is complete from the start;
 * on a file system without them it may still be being written: wait (briefly) for its newline.
 */
function readWinnersPassphrase(path: string): string {
  for (let attempt = 0; ; attempt++) {
    const text = readFileSync(path, 'utf8');
    if (text.endsWith('\n') || attempt >= 200) {
      const passphrase = text.trim();
      if (!passphrase) throw new Error(`${path} is empty: delete it (no key file uses it yet) or set SKYNET_LINKER_PASSPHRASE`);
      return passphrase;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}
