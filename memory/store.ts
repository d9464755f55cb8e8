/**
 * The narrow storage interface the shared memory is built on. Two implementations: Redis (the
 * source of truth for several hub nodes) and embedded (in-process, the zero-config default).
 * Keys passed in are relative (e.g. `history:{gemini}`); each store puts its own prefix in front.
 * Values are opaque strings: sealing happens above, in the memory layer.
 */

/** One entry of an append-only capped stream. `id` is `<ms>-<seq>` as in Redis streams. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

export interface StreamAppend {
  key: string;
  fields: Record<string, string>;
  /** Cap: older entries beyond this count are trimmed (approximately on Redis). */
  maxLen: number;
}

export interface VersionedValue {
  version: number;
  value: string;
}

/** Everything under the prefix except presence and snapshots, for snapshot export/restore. */
export interface StoreDump {
  streams: Record<string, StreamEntry[]>;
  docs: Record<string, VersionedValue>;
  hashes: Record<string, Record<string, string>>;
  values: Record<string, string>;
}

export interface SnapshotInfo {
  name: string;
  createdAt: string;
  bytes: number;
}

export type Unsubscribe = () => Promise<void>;

export interface Store {
  readonly kind: 'redis' | 'embedded';

  /** Appends to one or more capped streams in one atomic step; returns the new ids in order. */
  appendStreams(items: StreamAppend[]): Promise<string[]>;
  /** Entries strictly after `after` (or from the start), oldest first, at most `count`. */
  readStream(key: string, opts: { after?: string | undefined; count: number }): Promise<StreamEntry[]>;
  /** Entries strictly before `before` (or from the end), newest first, at most `count`. */
  readStreamReverse(key: string, opts: { before?: string | undefined; count: number }): Promise<StreamEntry[]>;
  /** Length and oldest id of a stream (null when empty or missing). */
  streamInfo(key: string): Promise<{ length: number; firstId: string | null; lastId: string | null }>;

  /** A versioned document; version 0 / null means absent. */
  getDoc(key: string): Promise<VersionedValue | null>;
  /** Writes `value` as version `expectedVersion + 1` only if the current version is `expectedVersion`. */
  putDocIfVersion(key: string, expectedVersion: number, value: string): Promise<{ ok: boolean; version: number }>;

  hashSet(key: string, entries: Record<string, string>): Promise<void>;
  hashGet(key: string, field: string): Promise<string | null>;
  hashGetAll(key: string): Promise<Record<string, string>>;
  hashDelete(key: string, fields: string[]): Promise<void>;
  /** Sets hash fields and (re)sets the whole key's expiry, in one step (presence). */
  hashSetWithExpiry(key: string, entries: Record<string, string>, ttlMs: number): Promise<void>;

  /** Stores `value` only if it is greater (as a stream id) than what is there; returns the result. */
  setMaxStreamId(key: string, streamId: string): Promise<string>;
  getValue(key: string): Promise<string | null>;
  setValue(key: string, value: string, ttlMs?: number): Promise<void>;
  deleteKeys(keys: string[]): Promise<void>;

  /** Fire-and-forget fan-out to every node (including this one) subscribed to `topic`. */
  publish(topic: string, message: string): Promise<void>;
  subscribe(topic: string, onMessage: (message: string) => void): Promise<Unsubscribe>;

  exportState(): Promise<StoreDump>;
  /** Replaces everything under the prefix (except snapshots) with the dump. */
  importState(dump: StoreDump): Promise<void>;
  saveSnapshot(name: string, text: string): Promise<void>;
  loadSnapshot(name: string): Promise<string | null>;
  listSnapshots(): Promise<SnapshotInfo[]>;

  /** Resolves when the backing storage answers; throws otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Compares two stream ids (`ms-seq`) numerically: negative when a < b. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const dm = BigInt(am) - BigInt(bm);
  if (dm !== 0n) return dm < 0n ? -1 : 1;
  const ds = BigInt(as) - BigInt(bs);
  return ds === 0n ? 0 : ds < 0n ? -1 : 1;
}

export const STREAM_ID_PATTERN = /^\d{1,20}-\d{1,20}$/;
