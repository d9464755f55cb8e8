/**
 * The SQLite store (better-sqlite3): the zero-config default for one hub, one database file in
 * the data directory with a WAL journal. Everything a write's promise acknowledges is committed:
 * the writes of one event-loop turn run in one transaction, committed at the end of the turn
 * (setImmediate), and only then do their promises resolve. Presence (`presence:` keys) is the
 * live state of this process's connections and stays in memory; pub/sub is in process (one node).
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { LinkerError } from '../../protocol/errors.js';
import { SnapshotFiles } from '../snapshot-files.js';
import {
  badStreamAppend,
  type AppendedEntry,
  type HashFieldCondition,
  type SnapshotInfo,
  type Store,
  type StoreDump,
  type StreamAppend,
  type StreamEntry,
  type StreamInfo,
  type Unsubscribe,
  type VersionedValue,
} from '../store.js';
import { Checkpointer } from './checkpointer.js';
import { DataDirInUseError, isBusy, LOCK_FILE, lockHolder, removePidFile, writePidFile } from './lock.js';
import { SCHEMA, SCHEMA_VERSION, SQL, type StatementName } from './statements.js';

/** `process`: synchronous=NORMAL (survives a killed process); `power`: synchronous=FULL (survives power loss). */
export type Durability = 'process' | 'power';

export interface SqliteStoreOptions {
  /** Directory of the database file, its WAL, the pid file of the lock and the snapshot files. */
  dataDir: string;
  /** What a committed write survives. Default `process`. */
  durability?: Durability;
  /** Clock, for tests. */
  now?: () => number;
}

export const DATABASE_FILE = 'skynet-linker.db';

/** How far past `maxLen` a stream may grow before it is trimmed back (as the in-memory store, about Redis' `MAXLEN ~`). */
function trimSlack(maxLen: number): number {
  return Math.min(100, Math.floor(maxLen / 10));
}

interface StreamRow {
  id: number;
  last_ms: number;
  last_seq: number;
  length: number;
  deleted_ms: number | null;
  deleted_seq: number | null;
}

interface EntryRow {
  ms: number;
  seq: number;
  fields: string;
}

interface Live {
  fields: Map<string, string>;
  expiresAt: number | null;
}

/** A write done in the open transaction, waiting for its commit. */
interface Waiting {
  resolve: () => void;
  reject: (err: unknown) => void;
}

const isLive = (key: string) => key.startsWith('presence:');

/**
 * A stream id as the two integers of the primary key. A part beyond what any stored id can hold
 * is clamped (every stored part is a safe integer), which keeps `after`/`before` right.
 */
function idParts(id: string): [number, number] {
  const dash = id.indexOf('-');
  const msText = dash < 0 ? id : id.slice(0, dash);
  const seqText = dash < 0 ? '0' : id.slice(dash + 1);
  if (!/^\d+$/.test(msText) || !/^\d+$/.test(seqText)) throw new RangeError(`invalid stream id: ${id}`);
  return [Math.min(Number(msText), Number.MAX_SAFE_INTEGER), Math.min(Number(seqText), Number.MAX_SAFE_INTEGER)];
}

/** An id of a dump, which must fit the columns exactly. */
function storedIdParts(id: string): [number, number] {
  const [ms, seq] = idParts(id);
  if (ms >= Number.MAX_SAFE_INTEGER || seq >= Number.MAX_SAFE_INTEGER) throw new RangeError(`stream id ${id} is too large for the SQLite store`);
  return [ms, seq];
}

const toEntry = (row: EntryRow): StreamEntry => ({ id: `${row.ms}-${row.seq}`, fields: JSON.parse(row.fields) as Record<string, string> });

function unavailable(err: unknown): LinkerError {
  return new LinkerError('SERVICE_UNAVAILABLE', `the store (SQLite) could not commit: ${(err as Error).message}`, undefined, { cause: err });
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  /** The database file. */
  readonly path: string;
  /** Whether this open created the database file (a first start). */
  readonly created: boolean;
  readonly durability: Durability;
  private readonly db: Database.Database;
  /** Held open in exclusive locking mode for the life of the store: the data directory's lock. */
  private readonly lockDb: Database.Database;
  private readonly checkpointer: Checkpointer;
  private readonly st: { [K in StatementName]: Database.Statement };
  private readonly files: SnapshotFiles;
  private readonly now: () => number;
  private readonly live = new Map<string, Live>();
  private readonly listeners = new Map<string, Set<(message: string) => void>>();
  private waiting: Waiting[] = [];
  private lastMs = 0;
  private lastSeq = 0;
  private closed = false;
  private readonly purgeTimer: NodeJS.Timeout;
  private readonly appendTx: (items: StreamAppend[]) => AppendedEntry[];
  private readonly importTx: (dump: StoreDump, meta: Record<string, string>) => void;

  constructor(private readonly opts: SqliteStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.durability = opts.durability ?? 'process';
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    this.path = join(opts.dataDir, DATABASE_FILE);
    this.created = !existsSync(this.path);
    this.files = new SnapshotFiles(opts.dataDir);
    // The lock first: a tiny database opened in exclusive locking mode and written once, so the
    // OS holds its lock until close or process exit and a second hub fails here, before touching
    // the real database (which is shared with the checkpoint thread, so it cannot be exclusive).
    const lockPath = join(opts.dataDir, LOCK_FILE);
    closeSync(openSync(lockPath, 'a', 0o600));
    this.lockDb = new Database(lockPath, { timeout: 0 });
    try {
      this.lockDb.pragma('locking_mode = EXCLUSIVE');
      this.lockDb.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS held (pid INTEGER); DELETE FROM held; COMMIT');
    } catch (err) {
      this.lockDb.close();
      if (isBusy(err)) throw new DataDirInUseError(opts.dataDir, lockHolder(opts.dataDir));
      throw err;
    }
    writePidFile(opts.dataDir);
    // Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database file's mode.
    closeSync(openSync(this.path, 'a', 0o600));
    this.db = new Database(this.path, { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    // Checkpoints run in a thread (checkpointer.ts); after one, the WAL restarts from its start
    // and is cut back to this size.
    this.db.pragma('wal_autocheckpoint = 0');
    this.db.pragma('journal_size_limit = 67108864');
    this.db.pragma(`synchronous = ${this.durability === 'power' ? 'FULL' : 'NORMAL'}`);
    this.db.exec(SCHEMA);
    this.checkpointer = new Checkpointer(this.path, this.durability === 'power' ? 'FULL' : 'NORMAL');
    this.st = Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, this.db.prepare(sql)])) as { [K in StatementName]: Database.Statement };
    const version = (this.st.getMeta.get('schema_version') as { value: string } | undefined)?.value;
    if (version === undefined) this.st.setMeta.run('schema_version', String(SCHEMA_VERSION));
    else if (Number(version) > SCHEMA_VERSION) {
      void this.close().catch(() => {});
      throw new Error(`${this.path} has schema version ${version}; this build reads up to ${SCHEMA_VERSION} (a newer build wrote it)`);
    }
    const newest = this.st.maxLastId.get() as { ms: number; seq: number } | undefined;
    if (newest) [this.lastMs, this.lastSeq] = [newest.ms, newest.seq];
    this.appendTx = this.db.transaction((items: StreamAppend[]) => this.append(items));
    this.importTx = this.db.transaction((dump: StoreDump, meta: Record<string, string>) => this.importRows(dump, meta));
    this.st.purgeExpired.run(this.now());
    // Values with a TTL are filtered on read; this only gives their rows back.
    this.purgeTimer = setInterval(() => void this.write(() => this.st.purgeExpired.run(this.now())).catch(() => {}), 60_000);
    this.purgeTimer.unref();
  }

  /**
   * Runs `fn` now, inside the turn's transaction (opened by the turn's first write, committed by
   * setImmediate once the turn is over), and resolves with its result once that commit is done.
   * A write that throws rejects at once; what it changed is rolled back with it (appends and
   * imports run in a savepoint, the others are one statement).
   */
  private write<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new LinkerError('SERVICE_UNAVAILABLE', 'the store (SQLite) is closed'));
    if (!this.db.inTransaction) {
      this.db.exec('BEGIN');
      setImmediate(() => this.commit());
    }
    let value: T;
    try {
      value = fn();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => this.waiting.push({ resolve: () => resolve(value), reject }));
  }

  private commit(): void {
    const waiting = this.waiting;
    this.waiting = [];
    if (!this.db.open || !this.db.inTransaction) {
      for (const w of waiting) w.resolve();
      return;
    }
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      const mapped = unavailable(err);
      for (const w of waiting) w.reject(mapped);
      return;
    }
    this.checkpointer.wrote();
    for (const w of waiting) w.resolve();
  }

  private nextId(): [number, number] {
    const ms = Math.max(this.now(), this.lastMs);
    this.lastSeq = ms === this.lastMs ? this.lastSeq + 1 : 0;
    this.lastMs = ms;
    return [ms, this.lastSeq];
  }

  async appendStreams(items: StreamAppend[]): Promise<string[]> {
    return (await this.appendEntries(items))!.map((e) => e.id);
  }

  appendEntries(items: StreamAppend[], onlyIf?: HashFieldCondition): Promise<AppendedEntry[] | null> {
    const bad = badStreamAppend(items);
    if (bad) return Promise.reject(bad);
    if (onlyIf && !this.hashHas(onlyIf.key, onlyIf.field)) return Promise.resolve(null);
    if (items.length === 0) return Promise.resolve([]);
    return this.write(() => this.appendTx(items));
  }

  private append(items: StreamAppend[]): AppendedEntry[] {
    const out: AppendedEntry[] = [];
    // A field list shared by several entries (a message fanned out) is serialized once.
    let lastFields: Record<string, string> | undefined;
    let lastJson = '';
    for (const item of items) {
      const [ms, seq] = this.nextId();
      const id = `${ms}-${seq}`;
      const row = this.st.streamByKey.get(item.key) as StreamRow | undefined;
      let stream: number;
      let length: number;
      let prev = '';
      if (!row) {
        stream = Number(this.st.insertStream.run(item.key, ms, seq).lastInsertRowid);
        length = 1;
      } else {
        stream = row.id;
        length = row.length + 1;
        if (row.length > 0) prev = `${row.last_ms}-${row.last_seq}`;
        this.st.bumpStream.run(ms, seq, stream);
      }
      if (item.fields !== lastFields) {
        lastFields = item.fields;
        lastJson = JSON.stringify(item.fields);
      }
      this.st.insertEntry.run(stream, ms, seq, lastJson);
      // Trimmed as Redis trims with MAXLEN ~: only once a tenth (at most 100) over the cap, back to it.
      if (length > item.maxLen + trimSlack(item.maxLen)) {
        const through = this.st.entryAtOffset.get(stream, length - item.maxLen - 1) as { ms: number; seq: number };
        this.st.trimThrough.run(stream, through.ms, through.seq);
        this.st.setTrimmed.run(item.maxLen, through.ms, through.seq, stream);
      }
      out.push({ id, prev });
    }
    return out;
  }

  private streamRow(key: string): StreamRow | undefined {
    return this.st.streamByKey.get(key) as StreamRow | undefined;
  }

  async readStream(key: string, opts: { after?: string | undefined; count: number }): Promise<StreamEntry[]> {
    const row = this.streamRow(key);
    if (!row || opts.count <= 0) return [];
    const rows = opts.after ? this.st.readAfter.all(row.id, ...idParts(opts.after), opts.count) : this.st.readFromStart.all(row.id, opts.count);
    return (rows as EntryRow[]).map(toEntry);
  }

  async readStreamReverse(key: string, opts: { before?: string | undefined; count: number }): Promise<StreamEntry[]> {
    const row = this.streamRow(key);
    if (!row || opts.count <= 0) return [];
    const rows = opts.before ? this.st.readBefore.all(row.id, ...idParts(opts.before), opts.count) : this.st.readFromEnd.all(row.id, opts.count);
    return (rows as EntryRow[]).map(toEntry);
  }

  async streamInfo(key: string): Promise<StreamInfo> {
    const row = this.streamRow(key);
    if (!row) return { length: 0, firstId: null, lastId: null };
    const first = row.length > 0 ? (this.st.firstEntry.get(row.id) as { ms: number; seq: number } | undefined) : undefined;
    const info: StreamInfo = {
      length: row.length,
      firstId: first ? `${first.ms}-${first.seq}` : null,
      lastId: row.length > 0 ? `${row.last_ms}-${row.last_seq}` : null,
    };
    if (row.deleted_ms !== null) info.maxDeletedId = `${row.deleted_ms}-${row.deleted_seq}`;
    return info;
  }

  async getDoc(key: string): Promise<VersionedValue | null> {
    const row = this.st.getDoc.get(key) as VersionedValue | undefined;
    return row ? { version: row.version, value: row.value } : null;
  }

  putDocIfVersion(key: string, expectedVersion: number, value: string): Promise<{ ok: boolean; version: number }> {
    const current = (this.st.getDoc.get(key) as VersionedValue | undefined)?.version ?? 0;
    if (current !== expectedVersion) return Promise.resolve({ ok: false, version: current });
    return this.write(() => {
      this.st.putDoc.run(key, current + 1, value);
      return { ok: true, version: current + 1 };
    });
  }

  private liveHash(key: string): Map<string, string> | undefined {
    const item = this.live.get(key);
    if (!item) return undefined;
    if (item.expiresAt !== null && item.expiresAt <= this.now()) {
      this.live.delete(key);
      return undefined;
    }
    return item.fields;
  }

  private hashHas(key: string, field: string): boolean {
    if (isLive(key)) return this.liveHash(key)?.has(field) === true;
    return this.st.hashExists.get(key, field) !== undefined;
  }

  async hashSet(key: string, entries: Record<string, string>): Promise<void> {
    if (isLive(key)) {
      let item = this.live.get(key);
      if (!item || this.liveHash(key) === undefined) this.live.set(key, (item = { fields: new Map(), expiresAt: null }));
      for (const [f, v] of Object.entries(entries)) item.fields.set(f, v);
      return;
    }
    const fields = Object.entries(entries);
    if (fields.length === 0) return;
    // One statement per field: a multi-field set runs in the turn's transaction, as one step.
    return this.write(() => {
      for (const [f, v] of fields) this.st.hashSet.run(key, f, v);
    });
  }

  async hashGet(key: string, field: string): Promise<string | null> {
    if (isLive(key)) return this.liveHash(key)?.get(field) ?? null;
    return (this.st.hashGet.get(key, field) as { value: string } | undefined)?.value ?? null;
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    if (isLive(key)) return Object.fromEntries(this.liveHash(key) ?? []);
    const out: Record<string, string> = {};
    for (const row of this.st.hashGetAll.all(key) as { field: string; value: string }[]) out[row.field] = row.value;
    return out;
  }

  async hashDelete(key: string, fields: string[]): Promise<void> {
    if (isLive(key)) {
      const h = this.liveHash(key);
      if (!h) return;
      for (const f of fields) h.delete(f);
      if (h.size === 0) this.live.delete(key);
      return;
    }
    if (fields.length === 0) return;
    return this.write(() => {
      for (const f of fields) this.st.hashDeleteField.run(key, f);
    });
  }

  /** Expiring hashes are live state (presence): kept in memory, under `presence:` only. */
  async hashSetWithExpiry(key: string, entries: Record<string, string>, ttlMs: number): Promise<void> {
    if (!isLive(key)) throw new RangeError(`only presence: keys expire on the SQLite store, not ${key}`);
    await this.hashSet(key, entries);
    this.live.get(key)!.expiresAt = this.now() + ttlMs;
  }

  setMaxStreamId(key: string, streamId: string): Promise<string> {
    let next: [number, number];
    try {
      next = idParts(streamId);
    } catch (err) {
      return Promise.reject(err);
    }
    const current = (this.st.getValue.get(key, this.now()) as { value: string } | undefined)?.value;
    if (current !== undefined) {
      const [cm, cs] = idParts(current);
      if (next[0] < cm || (next[0] === cm && next[1] <= cs)) return Promise.resolve(current);
    }
    return this.write(() => {
      this.st.setValue.run(key, streamId, null);
      return streamId;
    });
  }

  async getValue(key: string): Promise<string | null> {
    return (this.st.getValue.get(key, this.now()) as { value: string } | undefined)?.value ?? null;
  }

  setValue(key: string, value: string, ttlMs?: number): Promise<void> {
    return this.write(() => {
      this.st.setValue.run(key, value, ttlMs ? this.now() + ttlMs : null);
    });
  }

  deleteKeys(keys: string[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    for (const key of keys) this.live.delete(key);
    return this.write(() => {
      for (const key of keys) {
        this.st.deleteStreamEntries.run(key);
        this.st.deleteStream.run(key);
        this.st.deleteDoc.run(key);
        this.st.hashDeleteKey.run(key);
        this.st.deleteValue.run(key);
      }
    });
  }

  async publish(topic: string, message: string): Promise<void> {
    const set = this.listeners.get(topic);
    if (!set) return;
    // Asynchronous like Redis pub/sub, so publishers never run subscriber code inline.
    queueMicrotask(() => {
      for (const listener of set) listener(message);
    });
  }

  async subscribe(topic: string, onMessage: (message: string) => void): Promise<Unsubscribe> {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(onMessage);
    return async () => {
      set.delete(onMessage);
    };
  }

  async exportState(): Promise<StoreDump> {
    const dump: StoreDump = { streams: {}, docs: {}, hashes: {}, values: {} };
    for (const { id, key } of this.st.allStreams.all() as { id: number; key: string }[]) {
      const entries = (this.st.allEntries.all(id) as EntryRow[]).map(toEntry);
      if (entries.length > 0) dump.streams[key] = entries;
    }
    for (const row of this.st.allDocs.all() as { key: string; version: number; value: string }[])
      dump.docs[row.key] = { version: row.version, value: row.value };
    for (const row of this.st.allHashes.all() as { key: string; field: string; value: string }[]) (dump.hashes[row.key] ??= {})[row.field] = row.value;
    for (const row of this.st.allValues.all(this.now()) as { key: string; value: string }[]) dump.values[row.key] = row.value;
    return dump;
  }

  importState(dump: StoreDump): Promise<void> {
    return this.importWithMeta(dump, {});
  }

  /** `importState` that also records `meta` in the same transaction (the upgrade's "done" mark). */
  importWithMeta(dump: StoreDump, meta: Record<string, string>): Promise<void> {
    return this.write(() => this.importTx(dump, meta));
  }

  private importRows(dump: StoreDump, meta: Record<string, string>): void {
    for (const name of ['clearEntries', 'clearStreams', 'clearDocs', 'clearHashes', 'clearValues'] as const) this.st[name].run();
    // Presence is live state, not part of a dump: it stays, as in the other stores.
    for (const [key, entries] of Object.entries(dump.streams)) {
      if (entries.length === 0) continue;
      const parts = entries.map((e) => storedIdParts(e.id));
      const [lastMs, lastSeq] = parts.at(-1)!;
      const stream = Number(this.st.insertStreamFull.run(key, lastMs, lastSeq, entries.length).lastInsertRowid);
      entries.forEach((e, i) => this.st.insertEntry.run(stream, parts[i]![0], parts[i]![1], JSON.stringify(e.fields)));
      if (lastMs > this.lastMs || (lastMs === this.lastMs && lastSeq > this.lastSeq)) [this.lastMs, this.lastSeq] = [lastMs, lastSeq];
    }
    for (const [key, doc] of Object.entries(dump.docs)) this.st.putDoc.run(key, doc.version, doc.value);
    for (const [key, h] of Object.entries(dump.hashes)) for (const [f, v] of Object.entries(h)) this.st.hashSet.run(key, f, v);
    for (const [key, v] of Object.entries(dump.values)) this.st.setValue.run(key, v, null);
    for (const [name, value] of Object.entries(meta)) this.st.setMeta.run(name, value);
  }

  /** A note kept in the database (e.g. the upgrade's), or null. */
  getMeta(name: string): string | null {
    return (this.st.getMeta.get(name) as { value: string } | undefined)?.value ?? null;
  }

  setMeta(name: string, value: string): Promise<void> {
    return this.write(() => {
      this.st.setMeta.run(name, value);
    });
  }

  async saveSnapshot(name: string, text: string): Promise<void> {
    this.files.save(name, text);
  }

  async loadSnapshot(name: string): Promise<string | null> {
    return this.files.load(name);
  }

  async listSnapshots(): Promise<SnapshotInfo[]> {
    return this.files.list();
  }

  async ping(): Promise<void> {
    if (!this.db.open) throw new LinkerError('SERVICE_UNAVAILABLE', 'the store (SQLite) is closed');
    this.st.getMeta.get('schema_version');
  }

  /** Commits what the turn wrote so far, then closes the database and gives the lock back. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.purgeTimer);
    this.listeners.clear();
    if (!this.db.open) return;
    this.commit();
    await this.checkpointer.close();
    // The last connection to close checkpoints the WAL into the database and removes it.
    this.db.close();
    removePidFile(this.opts.dataDir);
    this.lockDb.close();
  }
}
