/**
 * One hub process per data directory. The lock itself is SQLite's: a small lock database
 * (`hub.lock`) is opened in exclusive locking mode and written once, so the OS holds its file lock
 * until the process ends (a `kill -9` releases it, nothing stale is left behind). The pid file only
 * lets a second process say who holds it.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PID_FILE = 'hub.pid';
/** The SQLite file whose exclusive lock is the data directory's lock. */
export const LOCK_FILE = 'hub.lock';

/** A second process opened a data directory another one holds. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number | null,
  ) {
    super(
      `data directory ${dataDir} is in use by ${pid === null ? 'another process (its pid file is missing)' : `pid ${pid}`}: one hub per data directory (stop it, or give this one another --data-dir)`,
    );
    this.name = 'DataDirInUseError';
  }
}

/** The pid written by the process holding the lock, or null. */
export function lockHolder(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, PID_FILE), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Called once the lock is held: records this process as the holder. */
export function writePidFile(dataDir: string): void {
  writeFileSync(join(dataDir, PID_FILE), `${process.pid}\n`, { mode: 0o600 });
}

/** Called on close, while the lock is still held (so it never removes another holder's file). */
export function removePidFile(dataDir: string): void {
  rmSync(join(dataDir, PID_FILE), { force: true });
}

/** Whether an error from better-sqlite3 says another connection holds the database. */
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}
