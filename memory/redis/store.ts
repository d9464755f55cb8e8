/**
 * The Redis store (ioredis 6): every key under a prefix, capped streams for inboxes and channels,
 * versioned documents with a Lua compare-and-set, pub/sub on a duplicated connection.
 */
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { LinkerError } from '../../protocol/errors.js';
import { utf8Length } from '../../protocol/json.js';
import {
  badStreamAppend,
  compareStreamIds,
  isEphemeralKey,
  streamIdBefore,
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

export interface RedisStoreOptions {
  /** `redis://host:port[/db]`. */
  url: string;
  /** Prepended to every key. Default `skynet:`. */
  prefix?: string;
  /**
   * How many times a command is retried while Redis is unreachable before it fails with
   * SERVICE_UNAVAILABLE. Default 1 (fails within about a second instead of ioredis' 73 s).
   */
  maxRetriesPerRequest?: number;
  /** Connect timeout in ms. Default 2000. */
  connectTimeoutMs?: number;
  /**
   * Longest a command may wait for its reply, offline queue included, before it fails with
   * SERVICE_UNAVAILABLE: the bound when Redis hangs without closing the connection (paused,
   * partitioned). Default 3000.
   */
  commandTimeoutMs?: number;
  /** Extra ioredis options. */
  redisOptions?: RedisOptions;
}

const lua = (name: string) => readFileSync(new URL(`./lua/${name}`, import.meta.url), 'utf8');
const SCRIPTS = {
  putDocIfVersion: { numberOfKeys: 1, lua: lua('put-doc-if-version-1.lua') },
  setMaxStreamId: { numberOfKeys: 1, lua: lua('set-max-stream-id-1.lua') },
  // Variable number of keys: the caller passes numkeys first.
  appendEntriesScript: { lua: lua('append-entries.lua') },
};

/** One caller's appends waiting for the turn's script call. */
interface PendingAppend {
  items: StreamAppend[];
  onlyIf: HashFieldCondition | undefined;
  resolve: (entries: AppendedEntry[] | null) => void;
  reject: (err: unknown) => void;
}

/** Entries one script call carries at most (a larger single caller goes alone, never split). */
const MAX_BATCH_ENTRIES = 8192;

type ScriptedRedis = Redis & {
  putDocIfVersion(key: string, expected: string, value: string): Promise<[number, number]>;
  setMaxStreamId(key: string, id: string): Promise<string>;
  appendEntriesScript(numKeys: number, keys: string[], args: string[]): Promise<string[]>;
};

const MAX_STREAM_ID = '18446744073709551615-18446744073709551615';
const DOC_VERSION = '__v';
const DOC_VALUE = '__d';
const SNAPSHOT_INDEX = 'snapshots';

/** Turns ioredis connection failures into SERVICE_UNAVAILABLE; anything else passes through. */
function unavailable(err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  if (
    err instanceof Error &&
    (err.name === 'MaxRetriesPerRequestError' ||
      /Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Stream isn't writeable|enableOfflineQueue|max retries|Command timed out|aborted due to connection close|LOADING/i.test(
        msg,
      ))
  ) {
    throw new LinkerError('SERVICE_UNAVAILABLE', `the store (Redis) is unreachable: ${msg}`, undefined, { cause: err });
  }
  throw err;
}

/** Escapes glob characters so a prefix such as `app[1]:` matches only itself in SCAN MATCH. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** XRANGE / XREVRANGE reply; Redis answers a null array (not an empty one) to `COUNT 0`. */
function toEntries(raw: [string, string[]][] | null): StreamEntry[] {
  return (raw ?? []).map(([id, flat]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
    return { id, fields };
  });
}

/**
 * Reconnect delay after the n-th failed attempt: ioredis' doubling from 50 ms, but capped at 1 s
 * (ioredis caps at 5 s) so the hub notices a returning Redis within about a second.
 */
function retryDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt - 1, 10), 1000) + Math.floor(Math.random() * 50);
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly prefix: string;
  private readonly redis: ScriptedRedis;
  private subscriber: Redis | undefined;
  private readonly listeners = new Map<string, Set<(message: string) => void>>();
  /** Per subscribed channel: the SUBSCRIBE command, settled once Redis confirmed it. */
  private readonly subscribed = new Map<string, Promise<unknown>>();
  private readonly resubscribedListeners = new Set<() => void>();

  constructor(opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'skynet:';
    const redis = new Redis(opts.url, {
      enableAutoPipelining: true,
      // Outage behaviour: a command waiting in the offline queue fails after one more failed
      // reconnect attempt (≤ about 100 ms with Redis refusing connections) and in any case after
      // commandTimeout; it never waits for ioredis' default 20 retries (about 73 s).
      maxRetriesPerRequest: opts.maxRetriesPerRequest ?? 1,
      connectTimeout: opts.connectTimeoutMs ?? 2000,
      commandTimeout: opts.commandTimeoutMs ?? 3000,
      retryStrategy: retryDelay,
      // Kept on (the ioredis default): a command written just before the connection dropped is
      // sent again after a reconnect. An XADD that Redis had already executed is then stored
      // twice under its message id (`mid`); readers dedupe by message id (see docs/operations.md).
      autoResendUnfulfilledCommands: true,
      lazyConnect: false,
      ...opts.redisOptions,
    });
    // Errors surface on commands; the connection retries by itself. Without a listener
    // ioredis would print "Unhandled error event" for every reconnect attempt.
    redis.on('error', () => {});
    // Fail fast while Redis is down: once a reconnect attempt has failed too (not a mere blip,
    // where queued commands go out ~50 ms later), commands are refused at once instead of waiting
    // in the offline queue for the next retry; queueing comes back with the connection.
    let closesSinceReady = 0;
    redis.on('close', () => {
      if (++closesSinceReady === 2) redis.options.enableOfflineQueue = false;
    });
    redis.on('ready', () => {
      closesSinceReady = 0;
      redis.options.enableOfflineQueue = opts.redisOptions?.enableOfflineQueue ?? true;
    });
    for (const [name, def] of Object.entries(SCRIPTS)) redis.defineCommand(name, def);
    this.redis = redis as ScriptedRedis;
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  async appendStreams(items: StreamAppend[]): Promise<string[]> {
    return (await this.appendEntries(items))!.map((e) => e.id);
  }

  /**
   * Queued for the turn's one script call (append-entries.lua): every send of an event-loop turn
   * shares one command, one round trip and one reply instead of paying ioredis' per-command cost
   * each. The call goes out on process.nextTick, after the turn's promise continuations, and
   * joins the auto-pipeline like any command.
   */
  appendEntries(items: StreamAppend[], onlyIf?: HashFieldCondition): Promise<AppendedEntry[] | null> {
    if (items.length === 0 && !onlyIf) return Promise.resolve([]);
    // Caps travel in the script's string of integers and an entry's fields are unpacked in Lua
    // (append-entries.lua): refused here, the caller alone, rather than failing the whole call.
    const bad = badStreamAppend(items);
    if (bad) return Promise.reject(bad);
    return new Promise((resolve, reject) => {
      if (this.pendingAppends.length === 0) process.nextTick(() => this.flushAppends());
      this.pendingAppends.push({ items, onlyIf, resolve, reject });
    });
  }

  private pendingAppends: PendingAppend[] = [];

  private flushAppends(): void {
    const pending = this.pendingAppends;
    this.pendingAppends = [];
    for (let start = 0; start < pending.length; ) {
      let end = start;
      let entries = 0;
      while (end < pending.length && (end === start || entries + pending[end]!.items.length <= MAX_BATCH_ENTRIES)) entries += pending[end++]!.items.length;
      this.sendAppends(pending.slice(start, end));
      start = end;
    }
  }

  private sendAppends(calls: PendingAppend[]): void {
    // The layout of append-entries.lua: the structure as one string of integers, the strings
    // (field names once per list of names, each field list once, condition fields) as arguments.
    const keyIndex = new Map<string, number>();
    const keys: string[] = [];
    const indexOf = (key: string): number => {
      let i = keyIndex.get(key);
      if (i === undefined) keyIndex.set(key, (i = keys.push(this.k(key))));
      return i;
    };
    const nameIndex = new Map<string, number>();
    const nameNums: number[] = [];
    const nameArgs: string[] = [];
    // A field list shared by several entries (a message fanned out) is sent once.
    const setIndex = new Map<Record<string, string>, number>();
    const setNums: number[] = [];
    const setArgs: string[] = [];
    const callNums: number[] = [calls.length];
    const callArgs: string[] = [];
    for (const call of calls) {
      callNums.push(call.onlyIf ? indexOf(call.onlyIf.key) : 0, call.items.length);
      if (call.onlyIf) callArgs.push(call.onlyIf.field);
      for (const item of call.items) {
        let set = setIndex.get(item.fields);
        if (set === undefined) {
          setIndex.set(item.fields, (set = setIndex.size + 1));
          const fieldNames = Object.keys(item.fields);
          // Each name with its length first: no two different lists give the same key.
          let id = '';
          for (const name of fieldNames) id += `${name.length}:${name}`;
          let names = nameIndex.get(id);
          if (names === undefined) {
            nameIndex.set(id, (names = nameIndex.size + 1));
            nameNums.push(fieldNames.length);
            for (const name of fieldNames) nameArgs.push(name);
          }
          setNums.push(names);
          for (const name of fieldNames) setArgs.push(item.fields[name]!);
        }
        callNums.push(indexOf(item.key), set, item.maxLen);
      }
    }
    const structure = `${nameIndex.size} ${nameNums.join(' ')} ${setIndex.size} ${setNums.join(' ')} ${callNums.join(' ')}`;
    const args = [structure, ...nameArgs, ...setArgs, ...callArgs];
    this.redis.appendEntriesScript(keys.length, keys, args).then(
      (replies) => {
        calls.forEach((call, c) => {
          const reply = replies[c] ?? '';
          if (reply === 'missing') return call.resolve(null);
          if (!reply.startsWith('ok')) return call.reject(new Error(reply.startsWith('error ') ? reply.slice(6) : `append failed: ${reply}`));
          // 'ok id prev id prev ...': an empty prev is an empty word between single spaces.
          const words = reply.split(' ');
          const entries: AppendedEntry[] = [];
          for (let i = 1; i + 1 < words.length; i += 2) entries.push({ id: words[i]!, prev: words[i + 1]! });
          call.resolve(entries);
        });
      },
      (err: unknown) => {
        for (const call of calls) {
          try {
            unavailable(err);
          } catch (mapped) {
            call.reject(mapped);
          }
        }
      },
    );
  }

  async readStream(key: string, opts: { after?: string | undefined; count: number }): Promise<StreamEntry[]> {
    // Nothing comes after the largest id (Redis refuses "(" on it instead of answering empty).
    if (opts.after && compareStreamIds(opts.after, MAX_STREAM_ID) >= 0) return [];
    const start = opts.after ? `(${opts.after}` : '-';
    const raw = await this.redis.xrange(this.k(key), start, '+', 'COUNT', opts.count).catch(unavailable);
    return toEntries(raw);
  }

  async readStreamReverse(key: string, opts: { before?: string | undefined; count: number }): Promise<StreamEntry[]> {
    // Nothing comes before 0-0 (Redis refuses "(0-0" instead of answering empty).
    if (opts.before && compareStreamIds(opts.before, '0-0') <= 0) return [];
    const end = opts.before ? `(${opts.before}` : '+';
    const raw = await this.redis.xrevrange(this.k(key), end, '-', 'COUNT', opts.count).catch(unavailable);
    return toEntries(raw);
  }

  /**
   * One XINFO STREAM. `maxDeletedId`: Redis records only XDEL'd ids in max-deleted-entry-id (a
   * MAXLEN trim leaves it at 0-0, checked on 7.0), so when `entries-added` exceeds the length the
   * trimmed ids are bounded by the one just below the oldest kept entry (see StreamInfo).
   */
  async streamInfo(key: string): Promise<StreamInfo> {
    let raw: unknown;
    try {
      raw = await this.redis.xinfo('STREAM', this.k(key));
    } catch (err) {
      if (err instanceof Error && /no such key/i.test(err.message)) return { length: 0, firstId: null, lastId: null };
      return unavailable(err);
    }
    const fields = new Map<string, unknown>();
    if (Array.isArray(raw)) for (let i = 0; i + 1 < raw.length; i += 2) fields.set(String(raw[i]), raw[i + 1]);
    else if (raw && typeof raw === 'object') for (const [f, v] of Object.entries(raw)) fields.set(f, v);
    const entryId = (v: unknown) => (Array.isArray(v) && typeof v[0] === 'string' ? v[0] : null);
    const length = Number(fields.get('length') ?? 0);
    const info: StreamInfo = { length, firstId: entryId(fields.get('first-entry')), lastId: entryId(fields.get('last-entry')) };
    const candidates: string[] = [];
    const deleted = fields.get('max-deleted-entry-id');
    if (typeof deleted === 'string' && deleted !== '0-0') candidates.push(deleted);
    const added = fields.get('entries-added');
    if (added !== undefined && added !== null && Number(added) > length) {
      // Everything below the oldest kept entry may be gone; with nothing kept, everything is.
      const bound = info.firstId ? streamIdBefore(info.firstId) : String(fields.get('last-generated-id') ?? '');
      if (bound && bound !== '0-0') candidates.push(bound);
    }
    const max = candidates.sort(compareStreamIds).at(-1);
    if (max) info.maxDeletedId = max;
    return info;
  }

  async getDoc(key: string): Promise<VersionedValue | null> {
    const [v, d] = await this.redis.hmget(this.k(key), DOC_VERSION, DOC_VALUE).catch(unavailable);
    if (v == null || d == null) return null;
    return { version: Number(v), value: d };
  }

  async putDocIfVersion(key: string, expectedVersion: number, value: string) {
    const [ok, version] = await this.redis.putDocIfVersion(this.k(key), String(expectedVersion), value).catch(unavailable);
    return { ok: ok === 1, version: Number(version) };
  }

  async hashSet(key: string, entries: Record<string, string>): Promise<void> {
    if (Object.keys(entries).length === 0) return;
    await this.redis.hset(this.k(key), entries).catch(unavailable);
  }

  async hashGet(key: string, field: string): Promise<string | null> {
    return this.redis.hget(this.k(key), field).catch(unavailable);
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.k(key)).catch(unavailable);
  }

  async hashDelete(key: string, fields: string[]): Promise<void> {
    if (fields.length === 0) return;
    await this.redis.hdel(this.k(key), ...fields).catch(unavailable);
  }

  async hashSetWithExpiry(key: string, entries: Record<string, string>, ttlMs: number): Promise<void> {
    const results = await this.redis.multi().hset(this.k(key), entries).pexpire(this.k(key), ttlMs).exec().catch(unavailable);
    for (const [err] of results ?? []) if (err) throw err;
  }

  async setMaxStreamId(key: string, streamId: string): Promise<string> {
    return this.redis.setMaxStreamId(this.k(key), streamId).catch(unavailable);
  }

  async getValue(key: string): Promise<string | null> {
    return this.redis.get(this.k(key)).catch(unavailable);
  }

  async setValue(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs) await this.redis.set(this.k(key), value, 'PX', ttlMs).catch(unavailable);
    else await this.redis.set(this.k(key), value).catch(unavailable);
  }

  async deleteKeys(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    // One DEL per key: multi-key DEL would need every key in one cluster slot.
    await Promise.all(keys.map((key) => this.redis.del(this.k(key)))).catch(unavailable);
  }

  async publish(topic: string, message: string): Promise<void> {
    await this.redis.publish(this.k(topic), message).catch(unavailable);
  }

  /**
   * Calls `listener` each time the pub/sub connection is back after losing Redis and subscribed
   * again: messages published meanwhile were lost (Redis pub/sub keeps nothing), so live readers
   * should re-read the streams. Not called for the first connection. Returns a remover.
   */
  onResubscribed(listener: () => void): () => void {
    this.resubscribedListeners.add(listener);
    return () => this.resubscribedListeners.delete(listener);
  }

  async subscribe(topic: string, onMessage: (message: string) => void): Promise<Unsubscribe> {
    const channel = this.k(topic);
    if (!this.subscriber) {
      // Never fails a SUBSCRIBE for retries; ioredis re-subscribes by itself after a reconnect.
      const subscriber = this.redis.duplicate({ maxRetriesPerRequest: null });
      this.subscriber = subscriber;
      subscriber.on('error', () => {});
      subscriber.on('message', (ch: string, message: string) => {
        for (const listener of this.listeners.get(ch) ?? []) listener(message);
      });
      let connectedBefore = false;
      subscriber.on('ready', () => {
        if (!connectedBefore) {
          connectedBefore = true;
          return;
        }
        // ioredis has queued its own re-SUBSCRIBE; confirming ours (Redis answers in order) means
        // every channel is subscribed again before listeners are told to re-read.
        const channels = [...this.listeners.keys()];
        const confirmed = channels.length ? subscriber.subscribe(...channels) : Promise.resolve();
        confirmed.then(
          () => {
            for (const listener of this.resubscribedListeners) listener();
          },
          () => {}, // lost again: the next 'ready' tries again
        );
      });
    }
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      this.subscribed.set(channel, this.subscriber.subscribe(channel));
    }
    set.add(onMessage);
    // Resolve only once Redis confirmed the SUBSCRIBE, also for a second listener that joins
    // while the first one's SUBSCRIBE is still in flight (it would miss messages otherwise).
    try {
      await this.subscribed.get(channel);
    } catch (err) {
      set.delete(onMessage);
      if (this.listeners.get(channel) === set && set.size === 0) {
        this.listeners.delete(channel);
        this.subscribed.delete(channel);
      }
      unavailable(err);
    }
    return async () => {
      const current = this.listeners.get(channel);
      if (!current?.delete(onMessage) || current.size > 0) return;
      this.listeners.delete(channel);
      this.subscribed.delete(channel);
      await this.subscriber?.unsubscribe(channel).catch(() => {});
    };
  }

  private async scanKeys(): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${globEscape(this.prefix)}*`, 'COUNT', 1000).catch(unavailable);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    return found.map((key) => key.slice(this.prefix.length));
  }

  private static kept(key: string): boolean {
    return !isEphemeralKey(key) && !key.startsWith('snapshot:') && key !== SNAPSHOT_INDEX;
  }

  async exportState(): Promise<StoreDump> {
    const dump: StoreDump = { streams: {}, docs: {}, hashes: {}, values: {} };
    for (const key of (await this.scanKeys()).filter(RedisStore.kept)) {
      const type = await this.redis.type(this.k(key));
      if (type === 'stream') dump.streams[key] = toEntries(await this.redis.xrange(this.k(key), '-', '+'));
      else if (type === 'string') {
        const value = await this.redis.get(this.k(key));
        if (value !== null) dump.values[key] = value;
      } else if (type === 'hash') {
        const hash = await this.redis.hgetall(this.k(key));
        if (DOC_VERSION in hash && DOC_VALUE in hash) dump.docs[key] = { version: Number(hash[DOC_VERSION]), value: hash[DOC_VALUE]! };
        else dump.hashes[key] = hash;
      }
    }
    return dump;
  }

  async importState(dump: StoreDump): Promise<void> {
    const existing = (await this.scanKeys()).filter(RedisStore.kept);
    await this.deleteKeys(existing);
    const pipeline = this.redis.pipeline();
    for (const [key, entries] of Object.entries(dump.streams)) {
      for (const e of entries) pipeline.xadd(this.k(key), e.id, ...Object.entries(e.fields).flat());
    }
    for (const [key, doc] of Object.entries(dump.docs)) pipeline.hset(this.k(key), DOC_VERSION, String(doc.version), DOC_VALUE, doc.value);
    for (const [key, hash] of Object.entries(dump.hashes)) if (Object.keys(hash).length) pipeline.hset(this.k(key), hash);
    for (const [key, value] of Object.entries(dump.values)) pipeline.set(this.k(key), value);
    const results = await pipeline.exec().catch(unavailable);
    for (const [err] of results ?? []) if (err) throw err;
  }

  async saveSnapshot(name: string, text: string): Promise<void> {
    const info: SnapshotInfo = { name, createdAt: new Date().toISOString(), bytes: utf8Length(text) };
    const results = await this.redis
      .multi()
      .set(this.k(`snapshot:${name}`), text)
      .hset(this.k(SNAPSHOT_INDEX), name, JSON.stringify(info))
      .exec()
      .catch(unavailable);
    for (const [err] of results ?? []) if (err) throw err;
  }

  async loadSnapshot(name: string): Promise<string | null> {
    return this.redis.get(this.k(`snapshot:${name}`)).catch(unavailable);
  }

  async listSnapshots(): Promise<SnapshotInfo[]> {
    const index = await this.redis.hgetall(this.k(SNAPSHOT_INDEX)).catch(unavailable);
    return Object.values(index)
      .map((v) => JSON.parse(v) as SnapshotInfo)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async ping(): Promise<void> {
    await this.redis.ping().catch(unavailable);
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    this.redis.disconnect();
  }
}
