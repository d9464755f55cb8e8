/**
 * The embedded store: the same semantics as the Redis store, in process. The zero-config default
 * for one hub. Snapshots are files in `dataDir` (mode 0600) so state survives a restart; without
 * a dataDir they stay in memory.
 */
import { utf8Length } from '../../protocol/json.js';
import { SnapshotFiles } from '../snapshot-files.js';
import {
  badStreamAppend,
  compareStreamIds,
  isEphemeralKey,
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

export interface EmbeddedStoreOptions {
  /** Directory for snapshot files. Default: none (snapshots kept in memory). */
  dataDir?: string;
  /** Clock, for tests. */
  now?: () => number;
}

interface Expiring<T> {
  value: T;
  expiresAt: number | null;
}

/** How far past `maxLen` a stream may grow before it is trimmed back to `maxLen` (Redis `MAXLEN ~` keeps up to about 100 more). */
function trimSlack(maxLen: number): number {
  return Math.min(100, Math.floor(maxLen / 10));
}

export class EmbeddedStore implements Store {
  readonly kind = 'embedded' as const;
  private readonly streams = new Map<string, StreamEntry[]>();
  /** Per stream: the highest id its cap trimmed away (what Redis would call max-deleted-entry-id). */
  private readonly trimmed = new Map<string, string>();
  private readonly docs = new Map<string, VersionedValue>();
  private readonly hashes = new Map<string, Expiring<Map<string, string>>>();
  private readonly values = new Map<string, Expiring<string>>();
  private readonly listeners = new Map<string, Set<(message: string) => void>>();
  private readonly memorySnapshots = new Map<string, { text: string; createdAt: string }>();
  private lastMs = 0;
  private lastSeq = 0;
  private readonly now: () => number;
  private readonly files: SnapshotFiles | undefined;

  constructor(opts: EmbeddedStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.files = opts.dataDir ? new SnapshotFiles(opts.dataDir) : undefined;
  }

  private nextId(): string {
    const ms = Math.max(this.now(), this.lastMs);
    this.lastSeq = ms === this.lastMs ? this.lastSeq + 1 : 0;
    this.lastMs = ms;
    return `${ms}-${this.lastSeq}`;
  }

  private live<T>(map: Map<string, Expiring<T>>, key: string): T | undefined {
    const item = map.get(key);
    if (!item) return undefined;
    if (item.expiresAt !== null && item.expiresAt <= this.now()) {
      map.delete(key);
      return undefined;
    }
    return item.value;
  }

  async appendStreams(items: StreamAppend[]): Promise<string[]> {
    const bad = badStreamAppend(items);
    if (bad) throw bad;
    return this.append(items).map((e) => e.id);
  }

  async appendEntries(items: StreamAppend[], onlyIf?: HashFieldCondition): Promise<AppendedEntry[] | null> {
    const bad = badStreamAppend(items);
    if (bad) throw bad;
    if (onlyIf && this.hash(onlyIf.key, false)?.has(onlyIf.field) !== true) return null;
    return this.append(items);
  }

  private append(items: StreamAppend[]): AppendedEntry[] {
    return items.map((item) => {
      const id = this.nextId();
      let stream = this.streams.get(item.key);
      if (!stream) this.streams.set(item.key, (stream = []));
      const prev = stream.length > 0 ? stream[stream.length - 1]!.id : '';
      stream.push({ id, fields: { ...item.fields } });
      // Trimmed as Redis trims with MAXLEN ~ (whole nodes of entries): only once the stream is a
      // tenth (at most 100 entries) over its cap, back down to the cap. Trimming each append off
      // the front of a full inbox moved the whole array every time (a few % of the hub's CPU).
      if (stream.length > item.maxLen + trimSlack(item.maxLen)) {
        const removed = stream.splice(0, stream.length - item.maxLen);
        // Ids only grow, so the last entry trimmed is the highest ever trimmed.
        this.trimmed.set(item.key, removed.at(-1)!.id);
      }
      return { id, prev };
    });
  }

  async readStream(key: string, opts: { after?: string | undefined; count: number }): Promise<StreamEntry[]> {
    const stream = this.streams.get(key) ?? [];
    // Ids grow along the stream: the first one after `after` by binary search.
    let start = 0;
    if (opts.after) {
      let hi = stream.length;
      while (start < hi) {
        const mid = (start + hi) >>> 1;
        if (compareStreamIds(stream[mid]!.id, opts.after) > 0) hi = mid;
        else start = mid + 1;
      }
    }
    return stream.slice(start, start + opts.count).map(copy);
  }

  async readStreamReverse(key: string, opts: { before?: string | undefined; count: number }): Promise<StreamEntry[]> {
    const stream = this.streams.get(key) ?? [];
    const out: StreamEntry[] = [];
    for (let i = stream.length - 1; i >= 0 && out.length < opts.count; i--) {
      const e = stream[i]!;
      if (!opts.before || compareStreamIds(e.id, opts.before) < 0) out.push(copy(e));
    }
    return out;
  }

  async streamInfo(key: string): Promise<StreamInfo> {
    const stream = this.streams.get(key) ?? [];
    const info: StreamInfo = { length: stream.length, firstId: stream[0]?.id ?? null, lastId: stream.at(-1)?.id ?? null };
    const trimmed = this.trimmed.get(key);
    if (trimmed) info.maxDeletedId = trimmed;
    return info;
  }

  async getDoc(key: string): Promise<VersionedValue | null> {
    const doc = this.docs.get(key);
    return doc ? { ...doc } : null;
  }

  async putDocIfVersion(key: string, expectedVersion: number, value: string) {
    const current = this.docs.get(key)?.version ?? 0;
    if (current !== expectedVersion) return { ok: false, version: current };
    this.docs.set(key, { version: current + 1, value });
    return { ok: true, version: current + 1 };
  }

  private hash(key: string, create: boolean): Map<string, string> | undefined {
    const found = this.live(this.hashes, key);
    if (found || !create) return found;
    const fresh = new Map<string, string>();
    this.hashes.set(key, { value: fresh, expiresAt: null });
    return fresh;
  }

  async hashSet(key: string, entries: Record<string, string>): Promise<void> {
    const h = this.hash(key, true)!;
    for (const [f, v] of Object.entries(entries)) h.set(f, v);
  }

  async hashGet(key: string, field: string): Promise<string | null> {
    return this.hash(key, false)?.get(field) ?? null;
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    return Object.fromEntries(this.hash(key, false) ?? []);
  }

  async hashDelete(key: string, fields: string[]): Promise<void> {
    const h = this.hash(key, false);
    if (!h) return;
    for (const f of fields) h.delete(f);
    if (h.size === 0) this.hashes.delete(key);
  }

  async hashSetWithExpiry(key: string, entries: Record<string, string>, ttlMs: number): Promise<void> {
    await this.hashSet(key, entries);
    this.hashes.get(key)!.expiresAt = this.now() + ttlMs;
  }

  async setMaxStreamId(key: string, streamId: string): Promise<string> {
    const current = this.live(this.values, key);
    if (current && compareStreamIds(streamId, current) <= 0) return current;
    this.values.set(key, { value: streamId, expiresAt: null });
    return streamId;
  }

  async getValue(key: string): Promise<string | null> {
    return this.live(this.values, key) ?? null;
  }

  async setValue(key: string, value: string, ttlMs?: number): Promise<void> {
    const expiresAt = ttlMs ? this.now() + ttlMs : null;
    this.values.set(key, { value, expiresAt });
    if (expiresAt !== null) this.expireLater(key, expiresAt);
  }

  /**
   * Values with a TTL that nobody reads again (message routes, tickets) would stay forever with
   * expiry on read alone: they are queued in the order they were set and dropped once expired, a
   * few per write (routes all share one TTL, so the queue is in expiry order for them).
   */
  private readonly expiring: { key: string; at: number }[] = [];
  private expiringHead = 0;
  private expireLater(key: string, at: number): void {
    this.expiring.push({ key, at });
    const now = this.now();
    for (let n = 0; n < 4 && this.expiringHead < this.expiring.length; n++) {
      const next = this.expiring[this.expiringHead]!;
      if (next.at > now) break;
      this.expiringHead++;
      const item = this.values.get(next.key);
      if (item && item.expiresAt !== null && item.expiresAt <= now) this.values.delete(next.key);
    }
    if (this.expiringHead > 1024 && this.expiringHead * 2 > this.expiring.length) {
      this.expiring.splice(0, this.expiringHead);
      this.expiringHead = 0;
    }
  }

  async deleteKeys(keys: string[]): Promise<void> {
    for (const key of keys) {
      this.streams.delete(key);
      this.trimmed.delete(key);
      this.docs.delete(key);
      this.hashes.delete(key);
      this.values.delete(key);
    }
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
    for (const [key, entries] of this.streams) dump.streams[key] = entries.map(copy);
    for (const [key, doc] of this.docs) dump.docs[key] = { ...doc };
    for (const key of this.hashes.keys()) {
      const h = this.hash(key, false);
      if (h && !key.startsWith('presence:')) dump.hashes[key] = Object.fromEntries(h);
    }
    for (const key of this.values.keys()) {
      const v = this.live(this.values, key);
      if (v !== undefined && !isEphemeralKey(key)) dump.values[key] = v;
    }
    return dump;
  }

  async importState(dump: StoreDump): Promise<void> {
    this.streams.clear();
    this.trimmed.clear();
    this.docs.clear();
    // Presence is live state, not part of a dump: it stays, as in the Redis store.
    for (const key of [...this.hashes.keys()]) if (!key.startsWith('presence:')) this.hashes.delete(key);
    for (const key of [...this.values.keys()]) if (!isEphemeralKey(key)) this.values.delete(key);
    for (const [key, entries] of Object.entries(dump.streams)) {
      this.streams.set(key, entries.map(copy));
      const last = entries.at(-1);
      if (last && compareStreamIds(last.id, `${this.lastMs}-${this.lastSeq}`) > 0) {
        const [ms = '0', seq = '0'] = last.id.split('-');
        this.lastMs = Number(ms);
        this.lastSeq = Number(seq);
      }
    }
    for (const [key, doc] of Object.entries(dump.docs)) this.docs.set(key, { ...doc });
    for (const [key, h] of Object.entries(dump.hashes)) this.hashes.set(key, { value: new Map(Object.entries(h)), expiresAt: null });
    for (const [key, v] of Object.entries(dump.values)) this.values.set(key, { value: v, expiresAt: null });
  }

  async saveSnapshot(name: string, text: string): Promise<void> {
    if (this.files) return this.files.save(name, text);
    this.memorySnapshots.set(name, { text, createdAt: new Date(this.now()).toISOString() });
  }

  async loadSnapshot(name: string): Promise<string | null> {
    if (this.files) return this.files.load(name);
    return this.memorySnapshots.get(name)?.text ?? null;
  }

  async listSnapshots(): Promise<SnapshotInfo[]> {
    if (this.files) return this.files.list();
    return [...this.memorySnapshots].map(([name, s]) => ({ name, createdAt: s.createdAt, bytes: utf8Length(s.text) })).sort(byName);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.listeners.clear();
  }
}

function copy(e: StreamEntry): StreamEntry {
  return { id: e.id, fields: { ...e.fields } };
}

function byName(a: SnapshotInfo, b: SnapshotInfo): number {
  return a.name.localeCompare(b.name);
}
