/**
 * Snapshots: the whole state exported as one sealed JSON document (the values inside are already
 * sealed under their own key names), listed, and restored. The embedded store keeps them as files.
 */
import { LinkerError } from '../protocol/errors.js';
import { utf8Length } from '../protocol/json.js';
import { keys } from './keys.js';
import type { ValueSealer } from './sealing.js';
import type { SnapshotInfo, Store, StoreDump } from './store.js';

interface SnapshotDocument {
  format: 'skynet-linker-snapshot';
  version: 1;
  created_at: string;
  dump: StoreDump;
}

/** A snapshot name from a time: `20261125T093500123Z`, sortable and safe in file and key names. */
export function snapshotName(at: Date): string {
  return at.toISOString().replace(/[-:.]/g, '');
}

export class SnapshotStore {
  constructor(
    private readonly store: Store,
    private readonly sealer: ValueSealer,
  ) {}

  /** Takes a snapshot; `fixedName` overwrites that snapshot (the embedded store's autosave). */
  async create(now = new Date(), fixedName?: string): Promise<SnapshotInfo> {
    let name = fixedName ?? snapshotName(now);
    const existing = new Set(fixedName ? [] : (await this.store.listSnapshots()).map((s) => s.name));
    for (let i = 1; existing.has(name); i++) name = `${snapshotName(now)}-${i}`;
    const doc: SnapshotDocument = { format: 'skynet-linker-snapshot', version: 1, created_at: now.toISOString(), dump: await this.store.exportState() };
    const text = this.sealer.seal(JSON.stringify(doc), keys.snapshot(name));
    await this.store.saveSnapshot(name, text);
    return { name, createdAt: doc.created_at, bytes: utf8Length(text) };
  }

  list(): Promise<SnapshotInfo[]> {
    return this.store.listSnapshots();
  }

  async restore(name: string): Promise<void> {
    const text = await this.store.loadSnapshot(name);
    if (text === null) throw new LinkerError('NOT_FOUND', `no snapshot named ${name}`);
    let doc: SnapshotDocument;
    try {
      doc = JSON.parse(this.sealer.open(text, keys.snapshot(name))) as SnapshotDocument;
    } catch (err) {
      throw new LinkerError('BAD_REQUEST', `snapshot ${name} cannot be opened with the current keys: ${(err as Error).message}`);
    }
    if (doc.format !== 'skynet-linker-snapshot') throw new LinkerError('BAD_REQUEST', `snapshot ${name} is not a Skynet Linker snapshot`);
    await this.store.importState(doc.dump);
  }

  /** Restores the newest snapshot if there is one; returns its name. */
  async restoreLatest(): Promise<string | null> {
    const latest = (await this.list()).sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1);
    if (!latest) return null;
    await this.restore(latest.name);
    return latest.name;
  }
}
