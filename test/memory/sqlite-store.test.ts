/**
 * What the SQLite store adds to the Store contract (test/memory/store-contract.test.ts): writes
 * resolve only once committed, one transaction per event-loop turn, the state is back after a
 * reopen, one process per data directory, the durability setting, file modes, and memory bounded
 * by work rather than by history.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { DataDirInUseError } from '../../memory/sqlite/lock.js';
import { DATABASE_FILE, SqliteStore } from '../../memory/sqlite/store.js';
import { compareStreamIds } from '../../memory/store.js';
import { KeyRing } from '../../crypto/keyring.js';
import { createSharedMemory, type SharedMemory } from '../../memory/index.js';
import { keyRingSealer } from '../../memory/sealing.js';
import { ROOT } from '../cli/helpers.js';
import { makeEmbeddedStore, makeRedisStore, makeSqliteStore, tempDir } from '../setup/stores.js';
import { send } from './helpers.js';

type Internals = { db: { inTransaction: boolean; pragma(sql: string, opts: { simple: true }): unknown }; commit(): void };
const internals = (store: SqliteStore) => store as unknown as Internals;

describe('SqliteStore specifics', () => {
  it('a write resolves only after the transaction holding it committed; the writes of one turn share one commit', async () => {
    const store = makeSqliteStore();
    const commits = vi.spyOn(internals(store), 'commit');
    let resolved = 0;
    const writes = [
      ...Array.from({ length: 50 }, (_, i) =>
        store.appendEntries([{ key: `history:{a${i % 5}}`, fields: { n: String(i) }, maxLen: 100 }]).then(() => resolved++),
      ),
      store.setValue('cursor:{a0}', '1-1').then(() => resolved++),
      store.putDocIfVersion('context:{global}', 0, 'v1').then(() => resolved++),
      store.hashSet('agents', { a0: 'x' }).then(() => resolved++),
    ];
    // Written (this process reads its own turn), but not committed: nothing has resolved yet.
    expect(internals(store).db.inTransaction).toBe(true);
    expect((await store.streamInfo('history:{a0}')).length).toBe(10);
    expect(resolved).toBe(0);
    await Promise.all(writes);
    expect(resolved).toBe(53);
    expect(commits).toHaveBeenCalledTimes(1);
    expect(internals(store).db.inTransaction).toBe(false);
    // The next turn's writes get their own commit.
    await store.setValue('v', '2');
    expect(commits).toHaveBeenCalledTimes(2);
  });

  it('a failing write of the turn rejects alone: the others of the turn commit', async () => {
    const store = makeSqliteStore();
    const results = await Promise.allSettled([
      store.appendStreams([{ key: 's', fields: { n: '1' }, maxLen: 10 }]),
      store.hashSetWithExpiry('not-presence', { a: '1' }, 1000),
      store.setMaxStreamId('cursor:{x}', 'not an id'),
      store.appendStreams([{ key: 's', fields: { n: '2' }, maxLen: 10 }]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toContain('only presence: keys expire on the SQLite store');
    expect(String((results[2] as PromiseRejectedResult).reason)).toContain('invalid stream id: not an id');
    expect((await store.readStream('s', { count: 10 })).map((e) => e.fields.n)).toEqual(['1', '2']);
  });

  it('everything but presence is back after a reopen, and new ids stay above the old ones', async () => {
    const dir = tempDir('skynet-sqlite-');
    const first = new SqliteStore({ dataDir: dir });
    const [id] = await first.appendStreams([{ key: 'history:{a}', fields: { mid: 'm1', m: 'sealed' }, maxLen: 10 }]);
    await first.putDocIfVersion('context:{global}', 0, 'v1');
    await first.hashSet('tokens', { h: 'record' });
    await first.setMaxStreamId('cursor:{a}', id!);
    await first.hashSetWithExpiry('presence:{a}', { conn: 'live' }, 60_000);
    await first.close();

    const second = makeSqliteStore({ dataDir: dir });
    expect(second.created).toBe(false);
    expect(await second.readStream('history:{a}', { count: 10 })).toEqual([{ id, fields: { mid: 'm1', m: 'sealed' } }]);
    expect(await second.getDoc('context:{global}')).toEqual({ version: 1, value: 'v1' });
    expect(await second.hashGetAll('tokens')).toEqual({ h: 'record' });
    expect(await second.getValue('cursor:{a}')).toBe(id);
    // Presence was the live state of the connections of the process that is gone.
    expect(await second.hashGetAll('presence:{a}')).toEqual({});
    const [next] = await second.appendStreams([{ key: 'other', fields: { n: '1' }, maxLen: 10 }]);
    expect(compareStreamIds(next!, id!)).toBeGreaterThan(0);
  });

  it('a second store on the same data directory is refused with the holder’s pid, until the first is closed', async () => {
    const dir = tempDir('skynet-sqlite-');
    const first = new SqliteStore({ dataDir: dir });
    await first.setValue('v', 'first');
    let refused: unknown;
    try {
      new SqliteStore({ dataDir: dir });
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(DataDirInUseError);
    expect((refused as DataDirInUseError).pid).toBe(process.pid);
    expect((refused as Error).message).toBe(
      `data directory ${dir} is in use by pid ${process.pid}: one hub per data directory (stop it, or give this one another --data-dir)`,
    );
    // The refused open changed nothing for the holder.
    await first.setValue('v', 'still first');
    await first.close();
    const second = makeSqliteStore({ dataDir: dir });
    expect(await second.getValue('v')).toBe('still first');
  });

  it('durability: process is synchronous=NORMAL, power is FULL; WAL journal; files are 0600', async () => {
    const normal = makeSqliteStore();
    const full = makeSqliteStore({ durability: 'power' });
    expect(internals(normal).db.pragma('synchronous', { simple: true })).toBe(1);
    expect(internals(full).db.pragma('synchronous', { simple: true })).toBe(2);
    expect(internals(normal).db.pragma('journal_mode', { simple: true })).toBe('wal');
    await full.appendStreams([{ key: 's', fields: { a: '1' }, maxLen: 10 }]);
    expect((await full.readStream('s', { count: 1 })).length).toBe(1);
    const db = full.path;
    expect(db.endsWith(DATABASE_FILE)).toBe(true);
    for (const file of [db, `${db}-wal`, join(db, '..', 'hub.pid')]) {
      expect(existsSync(file)).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
  });
});

describe('snapshots move between the SQLite, Redis and in-memory stores', () => {
  async function fill(memory: SharedMemory, label: string) {
    await memory.agents.upsert({ agent_id: 'alice', metadata: { note: `${label} alice` } });
    await memory.agents.upsert({ agent_id: 'bob' });
    await send(memory, { from: 'alice', to: 'bob', content: `${label} message` });
    await memory.contexts.push('global', { note: `${label} context` }, 'alice');
    return memory.snapshots.create();
  }
  async function read(memory: SharedMemory) {
    return {
      inbox: (await memory.messages.readInbox('bob', undefined, 10)).map((m) => m.envelope.payload.content),
      context: (await memory.contexts.pull('global')).data,
      alice: (await memory.agents.require('alice')).metadata,
    };
  }

  it('a snapshot taken on one store restores on the others, with the same keys', async () => {
    const ring = KeyRing.generate();
    const sealer = keyRingSealer(ring, { offThread: false });
    const sources = {
      sqlite: createSharedMemory({ store: makeSqliteStore(), sealer }),
      redis: createSharedMemory({ store: makeRedisStore(), sealer }),
      memory: createSharedMemory({ store: makeEmbeddedStore(), sealer }),
    };
    const taken: { from: string; name: string; text: string }[] = [];
    for (const [from, source] of Object.entries(sources)) {
      const snapshot = await fill(source, from);
      taken.push({ from, name: snapshot.name, text: (await source.store.loadSnapshot(snapshot.name))! });
    }
    for (const { from, name, text } of taken) {
      for (const [to, target] of Object.entries(sources)) {
        if (to === from) continue;
        // A snapshot is sealed under its own name: it restores under that name.
        await target.store.saveSnapshot(name, text);
        await target.snapshots.restore(name);
        expect(await read(target), `${from} -> ${to}`).toEqual({
          inbox: [`${from} message`],
          context: { note: `${from} context` },
          alice: { note: `${from} alice` },
        });
      }
    }
    // What the in-memory store's snapshot held as it is was sealed on its way into SQLite.
    const dump = JSON.stringify(await sources.sqlite.store.exportState());
    expect(dump).not.toContain('memory message');
    expect(dump).not.toContain('memory context');
  });
});

describe('memory bounded by work, not by history', () => {
  const script = join(ROOT, 'test', 'fixtures', 'memory', 'store-100k.mjs');
  const run = async (kind: 'sqlite' | 'embedded', messages: number) => {
    if (!existsSync(join(ROOT, 'dist', 'memory', 'sqlite', 'store.js')))
      throw new Error('the memory measure runs the built code: run `npm run build` first (`npm test` does it)');
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', script, kind, tempDir('skynet-rss-')], {
      env: { ...process.env, MESSAGES: String(messages) },
    });
    return JSON.parse(stdout) as { held: number; peak_rss: number; heap_used: number };
  };
  const MiB = 1024 * 1024;

  it('storing 100,000 sealed messages on SQLite keeps the RSS under 160 MiB and within 32 MiB of storing 10,000 (control: in memory it grows by more than 100 MiB)', async () => {
    const small = await run('sqlite', 10_000);
    const large = await run('sqlite', 100_000);
    expect(small.held).toBe(10_000);
    expect(large.held).toBe(100_000);
    expect(large.peak_rss).toBeLessThan(160 * MiB);
    expect(large.peak_rss - small.peak_rss).toBeLessThan(32 * MiB);
    // The same load on the in-memory store, which does hold every message: the measure sees it.
    const inMemory = await run('embedded', 100_000);
    expect(inMemory.held).toBe(100_000);
    expect(inMemory.peak_rss - small.peak_rss).toBeGreaterThan(100 * MiB);
  }, 120_000);
});
