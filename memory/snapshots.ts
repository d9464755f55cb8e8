/**
 * Snapshots: the whole state exported as one sealed JSON document (the values inside are already
 * sealed under their own key names), listed, and restored. The embedded store keeps them as files.
 */
import { LinkerError } from '../protocol/errors.js';
import { utf8Length } from '../protocol/json.js';
import { keys } from './keys.js';
import { isSealedText, type ValueSealer } from './sealing.js';
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
    /**
     * When the store keeps each value sealed (Redis, SQLite): what seals the values a snapshot
     * holds as they are (one taken on the in-memory store), before they are restored.
     */
    private readonly valueSealer?: ValueSealer,
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
    await this.store.importState(await this.read(name));
  }

  /** A snapshot's state, opened and checked, ready for `importState` (its plain values sealed, see `valueSealer`). */
  async read(name: string): Promise<StoreDump> {
    const text = await this.store.loadSnapshot(name);
    if (text === null) throw new LinkerError('NOT_FOUND', `no snapshot named ${name}`);
    let doc: SnapshotDocument;
    try {
      doc = JSON.parse(this.sealer.open(text, keys.snapshot(name))) as SnapshotDocument;
    } catch (err) {
      throw new LinkerError('BAD_REQUEST', `snapshot ${name} cannot be opened with the current keys: ${(err as Error).message}`);
    }
    if (doc.format !== 'skynet-linker-snapshot') throw new LinkerError('BAD_REQUEST', `snapshot ${name} is not a Skynet Linker snapshot`);
    return this.valueSealer ? sealPlainValues(doc.dump, this.valueSealer) : doc.dump;
  }

  /** Restores the newest snapshot if there is one; returns its name. */
  async restoreLatest(): Promise<string | null> {
    const latest = (await this.list()).sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1);
    if (!latest) return null;
    await this.restore(latest.name);
    return latest.name;
  }
}

/**
 * Seals, under their own key names, the values a dump holds as they are: the in-memory store keeps
 * them so (memory/sealing.ts, inProcessValues) and its snapshots are sealed whole instead. The
 * values are those the memory layer seals on Redis: each message (`m` of an entry with a `mid`),
 * every versioned document (contexts, sessions), every registry record, token record and session
 * summary. Sealed ones are left alone.
 */
export function sealPlainValues(dump: StoreDump, sealer: ValueSealer): StoreDump {
  const streams: StoreDump['streams'] = {};
  for (const [key, entries] of Object.entries(dump.streams)) {
    streams[key] = entries.map((e) => {
      const { m, mid } = e.fields;
      if (m === undefined || mid === undefined || isSealedText(m)) return e;
      return { id: e.id, fields: { ...e.fields, m: sealer.seal(m, keys.messageSeal(mid)) } };
    });
  }
  const docs: StoreDump['docs'] = {};
  for (const [key, doc] of Object.entries(dump.docs)) docs[key] = isSealedText(doc.value) ? doc : { version: doc.version, value: sealer.seal(doc.value, key) };
  const hashes = { ...dump.hashes };
  const agents = dump.hashes[keys.agents()];
  if (agents)
    hashes[keys.agents()] = Object.fromEntries(Object.entries(agents).map(([id, v]) => [id, isSealedText(v) ? v : sealer.seal(v, keys.agentSeal(id))]));
  // Token records and session summaries are sealed too (integrity: memory/integrity.ts).
  const tokens = dump.hashes[keys.tokens()];
  if (tokens)
    hashes[keys.tokens()] = Object.fromEntries(Object.entries(tokens).map(([hash, v]) => [hash, isSealedText(v) ? v : sealer.seal(v, keys.tokenSeal(hash))]));
  const sessions = dump.hashes[keys.sessions()];
  if (sessions)
    hashes[keys.sessions()] = Object.fromEntries(
      Object.entries(sessions).map(([id, v]) => [id, isSealedText(v) ? v : sealer.seal(v, keys.sessionIndexSeal(id))]),
    );
  return { streams, docs, hashes, values: dump.values };
}
