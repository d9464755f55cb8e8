/**
 * The narrow storage interface the shared memory is built on. Three implementations: Redis (the
 * source of truth for several hub nodes), SQLite (one database file: the zero-config default of
 * `serve`) and embedded (in process memory only: tests and experiments).
 * Keys passed in are relative (e.g. `history:{gemini}`); each store puts its own prefix in front.
 * Values are opaque strings: sealing happens above, in the memory layer.
 */

/** One entry of an append-only capped stream. `id` is `<ms>-<seq>` as in Redis streams. */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

export interface StreamInfo {
  length: number;
  firstId: string | null;
  lastId: string | null;
  /**
   * Highest id removed from the stream (trimmed by its cap, or deleted); absent when nothing ever
   * was. A reader whose cursor is older than this has lost the entries after its cursor up to here
   * (an unrecoverable gap: see `gapAfter`). Exact on the embedded store. On Redis it is an upper
   * bound: Redis (7.0 and later) records only XDEL'd ids in `max-deleted-entry-id`, never trimmed
   * ones, so when `entries-added` says entries were trimmed it is the id just below the oldest kept
   * entry. A cursor trimmed exactly at its own entry is then reported as a gap although nothing
   * after it was lost: a gap may be over-reported, never hidden. Redis before 7.0 reports nothing.
   */
  maxDeletedId?: string;
}

export interface StreamAppend {
  key: string;
  fields: Record<string, string>;
  /** Cap: older entries beyond this count are trimmed (approximately on Redis). */
  maxLen: number;
}

/** A stream entry just appended: its id, and the id of the entry it follows. */
export interface AppendedEntry {
  id: string;
  /**
   * The stream's newest entry when this one was added ('' when the stream was empty). A live
   * reader that has delivered `prev` knows nothing it has not seen sits in between, whichever node
   * appended what (procedures/live.ts).
   */
  prev: string;
}

/** A hash field that must exist for an append to happen (checked in the same isolated step). */
export interface HashFieldCondition {
  key: string;
  field: string;
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
  readonly kind: 'redis' | 'sqlite' | 'embedded';

  /**
   * Appends to one or more capped streams in one isolated step (no reader sees some of the appends
   * without the others); returns the new ids in order. Not rolled back if one append fails.
   */
  appendStreams(items: StreamAppend[]): Promise<string[]>;
  /**
   * `appendStreams` that also says what each entry follows. With `onlyIf`, nothing is appended and
   * null is returned unless that hash field exists (a direct message to a registered agent: one
   * step, no separate check that could go stale in between).
   */
  appendEntries(items: StreamAppend[], onlyIf?: HashFieldCondition): Promise<AppendedEntry[] | null>;
  /** Entries strictly after `after` (or from the start), oldest first, at most `count`. */
  readStream(key: string, opts: { after?: string | undefined; count: number }): Promise<StreamEntry[]>;
  /** Entries strictly before `before` (or from the end), newest first, at most `count`. */
  readStreamReverse(key: string, opts: { before?: string | undefined; count: number }): Promise<StreamEntry[]>;
  /** Length, oldest and newest id of a stream (null when empty or missing), and what it lost. */
  streamInfo(key: string): Promise<StreamInfo>;

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

  /**
   * Calls `listener` each time pub/sub is connected and re-subscribed again after an outage (events
   * published meanwhile are lost; subscribers must resume from the streams). Stores whose pub/sub
   * cannot drop (embedded) leave it out. Returns a function that removes the listener.
   */
  onResubscribed?(listener: () => void): () => void;

  /** Resolves when the backing storage answers; throws otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Compares two stream ids (`ms-seq`) numerically: negative when a < b. Digit by digit, without
 * allocating (it runs on every live delivery): leading zeros are skipped, a longer number is
 * larger, equal lengths compare as text. A missing part counts as 0.
 */
export function compareStreamIds(a: string, b: string): number {
  const ad = a.indexOf('-');
  const bd = b.indexOf('-');
  const aEnd = ad < 0 ? a.length : ad;
  const bEnd = bd < 0 ? b.length : bd;
  return compareDigits(a, 0, aEnd, b, 0, bEnd) || compareDigits(a, aEnd + 1, a.length, b, bEnd + 1, b.length);
}

/** Compares the unsigned decimal numbers a[as, ae) and b[bs, be) (an empty range is 0). */
function compareDigits(a: string, as: number, ae: number, b: string, bs: number, be: number): number {
  while (as < ae && a.charCodeAt(as) === 48) as++;
  while (bs < be && b.charCodeAt(bs) === 48) bs++;
  const al = Math.max(0, ae - as);
  const bl = Math.max(0, be - bs);
  if (al !== bl) return al < bl ? -1 : 1;
  for (; as < ae; as++, bs++) {
    const d = a.charCodeAt(as) - b.charCodeAt(bs);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * Whether a reader resuming after `cursor` (undefined: from the very start) has lost entries: true
 * when the stream removed an entry newer than the cursor.
 */
export function gapAfter(cursor: string | undefined, info: Pick<StreamInfo, 'maxDeletedId'>): boolean {
  if (!info.maxDeletedId) return false;
  return cursor === undefined || compareStreamIds(info.maxDeletedId, cursor) > 0;
}

/** The greatest stream id strictly below `id` (undefined for 0-0). */
export function streamIdBefore(id: string): string | undefined {
  const [ms = 0n, seq = 0n] = id.split('-').map((part) => BigInt(part));
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  if (ms > 0n) return `${ms - 1n}-18446744073709551615`;
  return undefined;
}

/**
 * Keys of live state that snapshots leave out (and a restore leaves alone): presence, and the
 * short-lived records with a TTL of their own (message routes for the reply check, SSE tickets),
 * which a dump would turn into records that never expire.
 */
export function isEphemeralKey(key: string): boolean {
  return key.startsWith('presence:') || key.startsWith('routes:') || key.startsWith('ticket:');
}

export const STREAM_ID_PATTERN = /^\d{1,20}-\d{1,20}$/;

/** Fields one stream entry may have (Redis' Lua `unpack` of an entry's fields stops near 4,000). */
export const MAX_ENTRY_FIELDS = 1000;

/**
 * The first append that no store takes, as a RangeError for its caller (both stores refuse it
 * before appending anything of that caller): a cap that is not a non-negative safe integer, or
 * more than MAX_ENTRY_FIELDS fields. Undefined when all are fine.
 */
export function badStreamAppend(items: readonly StreamAppend[]): RangeError | undefined {
  for (const item of items) {
    if (!Number.isSafeInteger(item.maxLen) || item.maxLen < 0)
      return new RangeError(`the cap of stream ${item.key} must be a non-negative integer, got ${item.maxLen}`);
    let n = 0;
    for (const _ in item.fields) if (++n > MAX_ENTRY_FIELDS) return new RangeError(`an entry of stream ${item.key} has more than ${MAX_ENTRY_FIELDS} fields`);
  }
  return undefined;
}
