/**
 * The upgrade from the build whose default store lived in memory and was saved as snapshot files:
 * at the first start on a data directory, the newest snapshot file there is imported into the
 * database, once (a mark in the database, written in the import's own transaction, says it was).
 */
import type { SnapshotStore } from '../snapshots.js';
import type { SnapshotInfo } from '../store.js';
import type { SqliteStore } from './store.js';

const MARK = 'previous_build_import';

/** Imports the newest snapshot file if this database never checked for one; returns what it imported. */
export async function importPreviousBuild(store: SqliteStore, snapshots: SnapshotStore): Promise<SnapshotInfo | null> {
  if (store.getMeta(MARK) !== null) return null;
  const latest = (await snapshots.list()).sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1);
  if (!latest) {
    await store.setMeta(MARK, '');
    return null;
  }
  await store.importWithMeta(await snapshots.read(latest.name), { [MARK]: latest.name });
  return latest;
}
