/**
 * Snapshot files: `<dataDir>/snapshots/<name>.json`, mode 0600, written whole (temporary file,
 * then rename) so a crash never leaves half a snapshot. Shared by the stores that keep their
 * snapshots on disk (the in-memory store, the SQLite store); the text is already sealed whole by
 * memory/snapshots.ts.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SnapshotInfo } from './store.js';

const SNAPSHOT_NAME = /^[A-Za-z0-9_.:-]+$/;

export class SnapshotFiles {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'snapshots');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private path(name: string): string {
    if (!SNAPSHOT_NAME.test(name)) throw new RangeError(`invalid snapshot name: ${name}`);
    return join(this.dir, `${name}.json`);
  }

  save(name: string, text: string): void {
    const path = this.path(name);
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  }

  load(name: string): string | null {
    try {
      return readFileSync(this.path(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  list(): SnapshotInfo[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => {
        const st = statSync(join(this.dir, f));
        return { name: f.slice(0, -5), createdAt: st.mtime.toISOString(), bytes: st.size };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}
