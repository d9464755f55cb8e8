/**
 * Store factories for tests: a unique key prefix per Redis store, the `storeKinds` table the
 * contract suites run against (`describe.each(storeKinds)`), a raw view of a prefix in Redis,
 * and cleanup. A store made inside a test is closed (and its Redis keys deleted) when that test
 * finishes; one made outside a test (describe body, beforeAll) when the file finishes.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, inject, onTestFinished } from 'vitest';
import { EmbeddedStore, type EmbeddedStoreOptions } from '../../memory/embedded/store.js';
import { RedisStore, type RedisStoreOptions } from '../../memory/redis/store.js';
import { SqliteStore, type SqliteStoreOptions } from '../../memory/sqlite/store.js';
import type { Store } from '../../memory/store.js';

type Cleanup = () => unknown;

const fileCleanups: Cleanup[] = [];
let raw: Redis | undefined;

afterAll(async () => {
  await runCleanups(fileCleanups.splice(0).reverse());
  raw?.disconnect();
  raw = undefined;
});

async function runCleanups(list: Cleanup[]): Promise<void> {
  const errors: unknown[] = [];
  for (const fn of list) {
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, 'test cleanup failed');
}

/** Runs `fn` when the current test finishes, or when the file finishes if called outside a test. */
export function cleanup(fn: Cleanup): void {
  try {
    onTestFinished(async () => {
      await fn();
    });
  } catch {
    fileCleanups.push(fn);
  }
}

/** A key prefix no other test uses. */
export function uniquePrefix(): string {
  return `t:${randomUUID()}:`;
}

/** The private redis-server of this run (test/setup/redis-global.ts). */
export function redisUrl(): string {
  return inject('redisUrl');
}

/** One raw ioredis client per test file, for looking at what the stores really wrote. */
export function rawRedis(): Redis {
  if (!raw) {
    raw = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
    raw.on('error', () => {});
  }
  return raw;
}

/** Every key under `prefix` (SCAN, so it never blocks the server). */
export async function scanPrefix(prefix: string): Promise<string[]> {
  const redis = rawRedis();
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return [...new Set(found)].sort();
}

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Deletes every key under `prefix`. */
export async function deletePrefix(prefix: string): Promise<void> {
  const keys = await scanPrefix(prefix);
  if (keys.length > 0) await Promise.all(keys.map((key) => rawRedis().unlink(key)));
}

export interface RawKey {
  key: string;
  type: string;
  /** Every string the key holds: field names, values, stream ids, members, scores. */
  texts: string[];
}

/** Reads back everything under `prefix` with plain Redis commands, whatever the type. */
export async function dumpPrefix(prefix: string): Promise<RawKey[]> {
  const redis = rawRedis();
  const out: RawKey[] = [];
  for (const key of await scanPrefix(prefix)) {
    const type = await redis.type(key);
    let texts: string[];
    switch (type) {
      case 'string':
        texts = [(await redis.get(key)) ?? ''];
        break;
      case 'hash':
        texts = Object.entries(await redis.hgetall(key)).flat();
        break;
      case 'stream':
        texts = (await redis.xrange(key, '-', '+')).flatMap(([id, fields]) => [id, ...fields]);
        break;
      case 'list':
        texts = await redis.lrange(key, 0, -1);
        break;
      case 'set':
        texts = await redis.smembers(key);
        break;
      case 'zset':
        // Typed for RESP3 pairs; with the default legacy reply mapping it is a flat list.
        texts = ((await redis.zrange(key, 0, '-1', 'WITHSCORES')) as unknown[]).flat().map(String);
        break;
      case 'none':
        continue; // expired or deleted between SCAN and TYPE
      default:
        throw new Error(`dumpPrefix: key ${key} has type ${type}, which this helper cannot read`);
    }
    out.push({ key, type, texts });
  }
  return out;
}

/** A RedisStore on the run's private Redis, under a unique prefix unless one is given. */
export function makeRedisStore(prefix: string = uniquePrefix(), opts: Partial<RedisStoreOptions> = {}): RedisStore {
  const store = new RedisStore({ url: redisUrl(), prefix, ...opts });
  cleanup(async () => {
    await store.close();
    await deletePrefix(prefix);
  });
  return store;
}

export function makeEmbeddedStore(opts: EmbeddedStoreOptions = {}): EmbeddedStore {
  const store = new EmbeddedStore(opts);
  cleanup(() => store.close());
  return store;
}

/** A SqliteStore on a real database file, in a fresh temporary directory unless one is given. */
export function makeSqliteStore(opts: Partial<SqliteStoreOptions> = {}): SqliteStore {
  const store = new SqliteStore({ dataDir: opts.dataDir ?? tempDir('skynet-sqlite-'), ...opts });
  cleanup(() => store.close());
  return store;
}

/** A fresh temporary directory, removed on cleanup. */
export function tempDir(label = 'skynet-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), label));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface StoreKind {
  readonly name: Store['kind'];
  /** A new, empty store. */
  make(): Store;
  /**
   * Another handle on the same data, as a second hub node would have: a separate connection on
   * the same prefix for Redis, the same instance for the SQLite and embedded stores (one process
   * holds them).
   */
  peer(store: Store): Store;
}

export const storeKinds: StoreKind[] = [
  {
    name: 'redis',
    make: () => makeRedisStore(),
    peer: (store) => {
      if (!(store instanceof RedisStore)) throw new TypeError('peer() of the redis kind needs a RedisStore');
      return makeRedisStore(store.prefix);
    },
  },
  {
    name: 'sqlite',
    make: () => makeSqliteStore(),
    peer: (store) => store,
  },
  {
    name: 'embedded',
    make: () => makeEmbeddedStore(),
    peer: (store) => store,
  },
];
