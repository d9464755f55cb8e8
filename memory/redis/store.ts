/**
 * The Redis store (ioredis 6): every key under a prefix, capped streams for inboxes and channels,
 * versioned documents with a Lua compare-and-set, pub/sub on a duplicated connection.
 */
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { LinkerError } from '../../protocol/errors.js';
import { utf8Length } from '../../protocol/json.js';
import { compareStreamIds, type SnapshotInfo, type Store, type StoreDump, type StreamAppend, type StreamEntry, type Unsubscribe, type VersionedValue } from '../store.js';

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
  /** Extra ioredis options. */
  redisOptions?: RedisOptions;
}

const lua = (name: string) => readFileSync(new URL(`./lua/${name}`, import.meta.url), 'utf8');
const SCRIPTS = {
  putDocIfVersion: { numberOfKeys: 1, lua: lua('put-doc-if-version-1.lua') },
  setMaxStreamId: { numberOfKeys: 1, lua: lua('set-max-stream-id-1.lua') },
};

type ScriptedRedis = Redis & {
  putDocIfVersion(key: string, expected: string, value: string): Promise<[number, number]>;
  setMaxStreamId(key: string, id: string): Promise<string>;
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
      /Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Stream isn't writeable|enableOfflineQueue|max retries/i.test(msg))
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

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly prefix: string;
  private readonly redis: ScriptedRedis;
  private subscriber: Redis | undefined;
  private readonly listeners = new Map<string, Set<(message: string) => void>>();
  /** Per subscribed channel: the SUBSCRIBE command, settled once Redis confirmed it. */
  private readonly subscribed = new Map<string, Promise<unknown>>();

  constructor(opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'skynet:';
    const redis = new Redis(opts.url, {
      enableAutoPipelining: true,
      maxRetriesPerRequest: opts.maxRetriesPerRequest ?? 1,
      connectTimeout: opts.connectTimeoutMs ?? 2000,
      lazyConnect: false,
      ...opts.redisOptions,
    });
    // Errors surface on commands; the connection retries by itself. Without a listener
    // ioredis would print "Unhandled error event" for every reconnect attempt.
    redis.on('error', () => {});
    for (const [name, def] of Object.entries(SCRIPTS)) redis.defineCommand(name, def);
    this.redis = redis as ScriptedRedis;
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  async appendStreams(items: StreamAppend[]): Promise<string[]> {
    if (items.length === 0) return [];
    const multi = this.redis.multi();
    for (const item of items) {
      const flat = Object.entries(item.fields).flat();
      multi.xadd(this.k(item.key), 'MAXLEN', '~', String(item.maxLen), '*', ...flat);
    }
    const results = await multi.exec().catch(unavailable);
    if (!results) throw new LinkerError('SERVICE_UNAVAILABLE', 'the store aborted a transaction');
    return results.map(([err, id]) => {
      if (err) throw err;
      return id as string;
    });
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

  async streamInfo(key: string) {
    const [length, first, last] = await Promise.all([
      this.redis.xlen(this.k(key)),
      this.redis.xrange(this.k(key), '-', '+', 'COUNT', 1),
      this.redis.xrevrange(this.k(key), '+', '-', 'COUNT', 1),
    ]).catch(unavailable);
    return { length, firstId: first[0]?.[0] ?? null, lastId: last[0]?.[0] ?? null };
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

  async subscribe(topic: string, onMessage: (message: string) => void): Promise<Unsubscribe> {
    const channel = this.k(topic);
    if (!this.subscriber) {
      // ioredis re-subscribes by itself after a reconnect.
      this.subscriber = this.redis.duplicate({ maxRetriesPerRequest: null });
      this.subscriber.on('error', () => {});
      this.subscriber.on('message', (ch: string, message: string) => {
        for (const listener of this.listeners.get(ch) ?? []) listener(message);
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
    return !key.startsWith('presence:') && !key.startsWith('snapshot:') && key !== SNAPSHOT_INDEX;
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
