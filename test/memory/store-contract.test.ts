/**
 * The Store contract, run against the Redis store, the SQLite store (on a real file) and the
 * in-memory embedded store alike. Where Redis is
 * approximate (stream trimming with `MAXLEN ~`), the contract says what both must do: the newest
 * `maxLen` entries are always kept, and a stream's length stays bounded.
 */
import { describe, expect, it, vi } from 'vitest';
import { LinkerError } from '../../protocol/errors.js';
import { RedisStore } from '../../memory/redis/store.js';
import { compareStreamIds, MAX_ENTRY_FIELDS, STREAM_ID_PATTERN, type Store, type StreamEntry } from '../../memory/store.js';
import { freePort } from '../setup/redis-process.js';
import { cleanup, makeRedisStore, rawRedis, storeKinds, uniquePrefix } from '../setup/stores.js';

/**
 * How far over `maxLen` a capped stream may grow. Redis trims with `MAXLEN ~`, which only drops
 * whole radix-tree nodes of `stream-node-max-entries` (100 by default) entries.
 */
const TRIM_SLACK = 100;

/** For vi.waitFor: generous, since a loaded machine may be slow; the condition ends it early. */
const WAIT = { timeout: 5_000, interval: 20 };

function expectIncreasing(ids: string[]): void {
  for (const id of ids) expect(id).toMatch(STREAM_ID_PATTERN);
  for (let i = 1; i < ids.length; i++) expect(compareStreamIds(ids[i - 1]!, ids[i]!)).toBeLessThan(0);
}

async function appendMany(store: Store, key: string, n: number, maxLen = 1000): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const [id] = await store.appendStreams([{ key, fields: { n: String(i) }, maxLen }]);
    ids.push(id!);
  }
  return ids;
}

const idsOf = (entries: StreamEntry[]) => entries.map((e) => e.id);

describe.each(storeKinds)('Store contract: $name', (kind) => {
  describe('streams', () => {
    it('appends with increasing ids and reads fields back', async () => {
      const store = kind.make();
      const ids = await appendMany(store, 'history:{a}', 20);
      expectIncreasing(ids);
      expect(await store.appendStreams([])).toEqual([]);

      const fields = { mid: 'm-1', m: 'héllo ✓ "quoted" {json}', empty: '' };
      const [id] = await store.appendStreams([{ key: 'history:{b}', fields, maxLen: 10 }]);
      expect(await store.readStream('history:{b}', { count: 10 })).toEqual([{ id, fields }]);
    });

    it('readStream: oldest first, exclusive `after`, at most `count`', async () => {
      const store = kind.make();
      const ids = await appendMany(store, 's', 10);
      expect(idsOf(await store.readStream('s', { count: 100 }))).toEqual(ids);
      expect(idsOf(await store.readStream('s', { count: 3 }))).toEqual(ids.slice(0, 3));
      expect(idsOf(await store.readStream('s', { after: ids[3], count: 100 }))).toEqual(ids.slice(4));
      expect(idsOf(await store.readStream('s', { after: ids[3], count: 2 }))).toEqual(ids.slice(4, 6));
      expect(await store.readStream('s', { after: ids[9], count: 100 })).toEqual([]);
      // An id between entries, or older than all of them, works as a cursor too.
      expect(idsOf(await store.readStream('s', { after: '0-0', count: 100 }))).toEqual(ids);
      expect(await store.readStream('missing', { count: 10 })).toEqual([]);
      expect(await store.readStream('s', { count: 0 })).toEqual([]);

      const [entry] = await store.readStream('s', { after: ids[4], count: 1 });
      expect(entry).toEqual({ id: ids[5], fields: { n: '5' } });
    });

    it('readStreamReverse: newest first, exclusive `before`, at most `count`', async () => {
      const store = kind.make();
      const ids = await appendMany(store, 's', 10);
      const reversed = [...ids].reverse();
      expect(idsOf(await store.readStreamReverse('s', { count: 100 }))).toEqual(reversed);
      expect(idsOf(await store.readStreamReverse('s', { count: 3 }))).toEqual(reversed.slice(0, 3));
      expect(idsOf(await store.readStreamReverse('s', { before: ids[5], count: 100 }))).toEqual(reversed.slice(5));
      expect(idsOf(await store.readStreamReverse('s', { before: ids[5], count: 2 }))).toEqual([ids[4], ids[3]]);
      expect(await store.readStreamReverse('s', { before: ids[0], count: 100 })).toEqual([]);
      expect(await store.readStreamReverse('missing', { count: 10 })).toEqual([]);
    });

    it('returns copies: changing a read entry does not change the stream', async () => {
      const store = kind.make();
      await appendMany(store, 's', 1);
      const [entry] = await store.readStream('s', { count: 1 });
      entry!.fields.n = 'changed';
      expect((await store.readStream('s', { count: 1 }))[0]!.fields.n).toBe('0');
    });

    it('caps a stream at maxLen: the newest maxLen entries are kept and the length stays bounded', async () => {
      const store = kind.make();
      const maxLen = 10;
      const ids = await appendMany(store, 'capped', 300, maxLen);
      const info = await store.streamInfo('capped');
      expect(info.length).toBeGreaterThanOrEqual(maxLen);
      expect(info.length).toBeLessThanOrEqual(maxLen + TRIM_SLACK);
      expect(info.lastId).toBe(ids.at(-1));
      // Whatever is kept is a suffix of what was written, and contains at least the newest maxLen.
      const kept = idsOf(await store.readStream('capped', { count: 1000 }));
      expect(kept).toEqual(ids.slice(ids.length - kept.length));
      expect(info.firstId).toBe(kept[0]);
      expect(idsOf(await store.readStreamReverse('capped', { count: maxLen }))).toEqual(ids.slice(-maxLen).reverse());
    });

    it('appends to several streams in one step, ids in the order given', async () => {
      const store = kind.make();
      const ids = await store.appendStreams([
        { key: 'x', fields: { i: '0' }, maxLen: 100 },
        { key: 'y', fields: { i: '1' }, maxLen: 100 },
        { key: 'x', fields: { i: '2' }, maxLen: 100 },
      ]);
      expect(ids).toHaveLength(3);
      expectIncreasing([ids[0]!, ids[2]!]);
      expect(await store.readStream('x', { count: 10 })).toEqual([
        { id: ids[0], fields: { i: '0' } },
        { id: ids[2], fields: { i: '2' } },
      ]);
      expect(await store.readStream('y', { count: 10 })).toEqual([{ id: ids[1], fields: { i: '1' } }]);
    });

    it('one field list shared by many streams (a message fanned out) lands in each, each under its own cap', async () => {
      const store = kind.make();
      const shared = { mid: 'm1', m: 'sealed'.repeat(50) };
      const inboxes = Array.from({ length: 60 }, (_, i) => `fan:{${i}}`);
      const ids = await store.appendStreams([
        ...inboxes.map((key) => ({ key, fields: shared, maxLen: 1000 })),
        { key: 'fan:channel', fields: { mid: 'm1', c: 'yes' }, maxLen: 3 },
      ]);
      expect(ids).toHaveLength(61);
      for (const [i, key] of inboxes.entries()) expect(await store.readStream(key, { count: 10 })).toEqual([{ id: ids[i], fields: shared }]);
      expect(await store.readStream('fan:channel', { count: 10 })).toEqual([{ id: ids[60], fields: { mid: 'm1', c: 'yes' } }]);
      // The channel's own (small) cap applies to it while the inboxes keep theirs.
      for (let n = 0; n < 300; n++)
        await store.appendStreams([
          { key: inboxes[0]!, fields: { n: String(n) }, maxLen: 1000 },
          { key: 'fan:channel', fields: { n: String(n) }, maxLen: 3 },
        ]);
      expect((await store.streamInfo(inboxes[0]!)).length).toBe(301);
      const channelLength = (await store.streamInfo('fan:channel')).length;
      expect(channelLength).toBeGreaterThanOrEqual(3);
      expect(channelLength).toBeLessThanOrEqual(3 + TRIM_SLACK);
    });

    it('one append to 50,000 streams (a fan-out to a very large channel) goes through', async () => {
      const store = kind.make();
      const fields = { mid: 'big', m: 'x' };
      const ids = await store.appendStreams(Array.from({ length: 50_000 }, (_, i) => ({ key: `huge:{${i}}`, fields, maxLen: 10 })));
      expect(ids).toHaveLength(50_000);
      expect(await store.readStream('huge:{49999}', { count: 10 })).toEqual([{ id: ids[49_999], fields }]);
    });

    it('multi-stream appends are atomic: concurrent pairs land in the same order in both streams', async () => {
      const store = kind.make();
      const writers = Array.from({ length: 4 }, () => kind.peer(store));
      await Promise.all(
        writers.flatMap((w, wi) =>
          Array.from({ length: 25 }, (_, i) =>
            w.appendStreams([
              { key: 'pair:{a}', fields: { w: `${wi}:${i}` }, maxLen: 1000 },
              { key: 'pair:{b}', fields: { w: `${wi}:${i}` }, maxLen: 1000 },
            ]),
          ),
        ),
      );
      const a = (await store.readStream('pair:{a}', { count: 1000 })).map((e) => e.fields.w);
      const b = (await store.readStream('pair:{b}', { count: 1000 })).map((e) => e.fields.w);
      expect(a).toHaveLength(100);
      expect(new Set(a).size).toBe(100);
      expect(b).toEqual(a);
    });

    it('appendEntries says which entry each new one follows, per stream, across writers', async () => {
      const store = kind.make();
      const other = kind.peer(store);
      const [first] = (await store.appendEntries([{ key: 'chain', fields: { n: '0' }, maxLen: 1000 }]))!;
      expect(first!.prev).toBe('');
      // Concurrent writers on two handles (nodes), and a fan-out touching two streams at once.
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          (i % 2 ? other : store).appendEntries([
            { key: 'chain', fields: { n: String(i + 1) }, maxLen: 1000 },
            ...(i % 3 === 0 ? [{ key: 'chain:other', fields: { n: String(i + 1) }, maxLen: 1000 }] : []),
          ]),
        ),
      );
      for (const key of ['chain', 'chain:other']) {
        const ids = idsOf(await store.readStream(key, { count: 1000 }));
        const appended = [...(key === 'chain' ? [first!] : []), ...results.map((r) => (key === 'chain' ? r![0]! : r![1])).filter((e) => e !== undefined)];
        const byId = new Map(appended.map((e) => [e.id, e.prev]));
        expect(byId.size).toBe(ids.length);
        // Every entry follows the one before it in the stream: the chain has no holes.
        ids.forEach((id, i) => expect(byId.get(id)).toBe(i === 0 ? '' : ids[i - 1]));
      }
      // Trimming does not break the chain: the next entry follows the newest kept one.
      await appendMany(store, 'short', 30, 5);
      const [after] = (await store.appendEntries([{ key: 'short', fields: { n: 'x' }, maxLen: 5 }]))!;
      const kept = idsOf(await store.readStream('short', { count: 1000 }));
      expect(after!.prev).toBe(kept.at(-2));
    });

    it('appendEntries with onlyIf appends only while the hash field exists, checked in the same step', async () => {
      const store = kind.make();
      const agents = 'agents';
      const item = (n: string) => [
        { key: 'history:{bob}', fields: { n }, maxLen: 100 },
        { key: 'channel:{x}', fields: { n }, maxLen: 100 },
      ];
      expect(await store.appendEntries(item('before'), { key: agents, field: 'bob' })).toBeNull();
      expect(await store.readStream('history:{bob}', { count: 10 })).toEqual([]);
      expect(await store.readStream('channel:{x}', { count: 10 })).toEqual([]);

      await store.hashSet(agents, { bob: 'registered', carol: 'registered' });
      const appended = await store.appendEntries(item('while'), { key: agents, field: 'bob' });
      expect(appended).toHaveLength(2);
      expect(idsOf(await store.readStream('history:{bob}', { count: 10 }))).toEqual([appended![0]!.id]);

      // Callers of the same turn, some of them refused: only the refused ones append nothing.
      await store.hashDelete(agents, ['bob']);
      const mixed = await Promise.all([
        store.appendEntries(item('a'), { key: agents, field: 'carol' }),
        store.appendEntries(item('b'), { key: agents, field: 'bob' }),
        store.appendEntries(item('c')),
      ]);
      expect(mixed.map((r) => r?.length ?? null)).toEqual([2, null, 2]);
      expect((await store.readStream('channel:{x}', { count: 10 })).map((e) => e.fields.n)).toEqual(['while', 'a', 'c']);
    });

    it('appendEntries keeps any field names and values as they are, several name lists and shared field lists in one turn', async () => {
      const store = kind.make();
      const odd = ['', ' ', 'two  spaces', 'line\nbreak', 'tab\there', '0 1 2', 'ok', 'missing', 'error x', 'é ü 漢字 🚀', '\u0000nul', 'x'.repeat(20_000)];
      const shared = { mid: 'm-1', m: 'sealed value', p: '5', x: '' };
      const agents = 'agents:odd';
      await store.hashSet(agents, { 'a field with spaces\n': 'yes' });
      // One turn: callers with different field-name lists, values that look like the script's
      // own words, a fan-out sharing one field list, a condition field with spaces and a newline.
      const results = await Promise.all([
        store.appendEntries(odd.map((v, i) => ({ key: `odd:{${i}}`, fields: { [v === '' ? 'empty' : v]: v, plain: String(i) }, maxLen: 100 }))),
        store.appendEntries([1, 2, 3].map((n) => ({ key: `fan:{${n}}`, fields: shared, maxLen: 100 }))),
        store.appendEntries([{ key: 'guarded', fields: { 'name with spaces': 'value\nwith newline', '': 'empty name' }, maxLen: 100 }], {
          key: agents,
          field: 'a field with spaces\n',
        }),
        store.appendEntries([{ key: 'refused', fields: { n: '1' }, maxLen: 100 }], { key: agents, field: 'a field with spaces' }),
        // Name lists that would read the same joined by a newline, or by nothing.
        store.appendEntries([
          { key: 'names:{1}', fields: { 'a\nb': '1' }, maxLen: 100 },
          { key: 'names:{2}', fields: { a: '2', b: '3' }, maxLen: 100 },
        ]),
        store.appendEntries([
          { key: 'names:{3}', fields: { ab: '4' }, maxLen: 100 },
          { key: 'names:{4}', fields: { '1:a': '5' }, maxLen: 100 },
        ]),
      ]);
      expect(results.map((r) => r?.length ?? null)).toEqual([odd.length, 3, 1, null, 2, 2]);
      const namesRead = await Promise.all([1, 2, 3, 4].map(async (n) => (await store.readStream(`names:{${n}}`, { count: 10 })).map((e) => e.fields)));
      expect(namesRead).toEqual([[{ 'a\nb': '1' }], [{ a: '2', b: '3' }], [{ ab: '4' }], [{ '1:a': '5' }]]);
      for (const [i, v] of odd.entries()) {
        const [entry] = await store.readStream(`odd:{${i}}`, { count: 10 });
        expect(entry).toEqual({ id: results[0]![i]!.id, fields: { [v === '' ? 'empty' : v]: v, plain: String(i) } });
        expect(results[0]![i]!.prev).toBe('');
      }
      for (const n of [1, 2, 3]) expect((await store.readStream(`fan:{${n}}`, { count: 10 })).map((e) => e.fields)).toEqual([shared]);
      expect((await store.readStream('guarded', { count: 10 })).map((e) => e.fields)).toEqual([
        { 'name with spaces': 'value\nwith newline', '': 'empty name' },
      ]);
      expect(await store.readStream('refused', { count: 10 })).toEqual([]);
      // The chain over entries of one stream appended by one caller.
      const twice = await store.appendEntries([
        { key: 'fan:{1}', fields: shared, maxLen: 100 },
        { key: 'fan:{1}', fields: { other: 'names' }, maxLen: 100 },
      ]);
      expect(twice!.map((e) => e.prev)).toEqual([results[1]![0]!.id, twice![0]!.id]);
    });

    it('a stream cap that is not a non-negative integer is refused, its caller appends nothing, others go on', async () => {
      const store = kind.make();
      for (const maxLen of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
        const settled = await Promise.allSettled([
          store.appendEntries([{ key: 'capped', fields: { n: 'ok-before' }, maxLen: 10 }]),
          store.appendEntries([
            { key: 'capped', fields: { n: 'bad' }, maxLen: 10 },
            { key: 'bad-cap', fields: { n: 'bad' }, maxLen },
          ]),
          store.appendStreams([{ key: 'bad-cap', fields: { n: 'bad' }, maxLen }]),
          store.appendEntries([{ key: 'capped', fields: { n: 'ok-after' }, maxLen: 10 }]),
        ]);
        expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
        expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/RangeError: the cap of stream bad-cap must be a non-negative integer/);
      }
      expect((await store.readStream('capped', { count: 100 })).map((e) => e.fields.n)).toEqual(
        Array.from({ length: 5 }, () => ['ok-before', 'ok-after']).flat(),
      );
      expect(await store.readStream('bad-cap', { count: 10 })).toEqual([]);
    });

    it(`an entry of more than ${MAX_ENTRY_FIELDS} fields is refused, its caller appends nothing, others of the turn go on`, async () => {
      const store = kind.make();
      const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, String(i)]));
      const settled = await Promise.allSettled([
        store.appendEntries([{ key: 'wide:{ok}', fields: fields(MAX_ENTRY_FIELDS), maxLen: 10 }]),
        store.appendEntries([
          { key: 'wide:{first}', fields: { n: '1' }, maxLen: 10 },
          { key: 'wide:{bad}', fields: fields(MAX_ENTRY_FIELDS + 1), maxLen: 10 },
        ]),
        store.appendStreams([{ key: 'wide:{bad}', fields: fields(5000), maxLen: 10 }]),
        store.appendEntries([{ key: 'wide:{after}', fields: { n: '2' }, maxLen: 10 }]),
      ]);
      expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
      expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(
        new RegExp(`RangeError: an entry of stream wide:\\{bad\\} has more than ${MAX_ENTRY_FIELDS} fields`),
      );
      expect((await store.readStream('wide:{ok}', { count: 10 })).map((e) => Object.keys(e.fields).length)).toEqual([MAX_ENTRY_FIELDS]);
      for (const key of ['wide:{first}', 'wide:{bad}']) expect(await store.readStream(key, { count: 10 })).toEqual([]);
      expect((await store.readStream('wide:{after}', { count: 10 })).map((e) => e.fields)).toEqual([{ n: '2' }]);
    });

    it('streamInfo: length, oldest and newest id', async () => {
      const store = kind.make();
      expect(await store.streamInfo('missing')).toEqual({ length: 0, firstId: null, lastId: null });
      const ids = await appendMany(store, 's', 4);
      expect(await store.streamInfo('s')).toEqual({ length: 4, firstId: ids[0], lastId: ids[3] });
    });
  });

  describe('versioned documents', () => {
    it('compare-and-set: absent is version 0; a wrong expected version fails with the current one', async () => {
      const store = kind.make();
      expect(await store.getDoc('context:{global}')).toBeNull();
      expect(await store.putDocIfVersion('context:{global}', 1, 'nope')).toEqual({ ok: false, version: 0 });
      expect(await store.getDoc('context:{global}')).toBeNull();

      expect(await store.putDocIfVersion('context:{global}', 0, 'v1')).toEqual({ ok: true, version: 1 });
      expect(await store.putDocIfVersion('context:{global}', 0, 'again')).toEqual({ ok: false, version: 1 });
      expect(await store.putDocIfVersion('context:{global}', 1, 'v2')).toEqual({ ok: true, version: 2 });
      expect(await store.putDocIfVersion('context:{global}', 7, 'ahead')).toEqual({ ok: false, version: 2 });
      expect(await store.getDoc('context:{global}')).toEqual({ version: 2, value: 'v2' });
    });

    it('exactly one of many concurrent writers of the same version wins', async () => {
      const store = kind.make();
      const handles = Array.from({ length: 5 }, () => kind.peer(store));
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => handles[i % handles.length]!.putDocIfVersion('doc', 0, `w${i}`)));
      const winners = results.map((r, i) => (r.ok ? i : -1)).filter((i) => i >= 0);
      expect(winners).toHaveLength(1);
      for (const r of results) expect(r.version).toBe(1);
      expect(await store.getDoc('doc')).toEqual({ version: 1, value: `w${winners[0]}` });
    });
  });

  describe('hashes', () => {
    it('set, get, get all, delete', async () => {
      const store = kind.make();
      expect(await store.hashGet('h', 'a')).toBeNull();
      expect(await store.hashGetAll('h')).toEqual({});
      await store.hashSet('h', {});
      expect(await store.hashGetAll('h')).toEqual({});

      await store.hashSet('h', { a: '1', b: '2' });
      await store.hashSet('h', { b: 'two', c: '' });
      expect(await store.hashGet('h', 'b')).toBe('two');
      expect(await store.hashGet('h', 'zzz')).toBeNull();
      expect(await store.hashGetAll('h')).toEqual({ a: '1', b: 'two', c: '' });

      await store.hashDelete('h', ['a', 'missing']);
      await store.hashDelete('h', []);
      expect(await store.hashGetAll('h')).toEqual({ b: 'two', c: '' });
      await store.hashDelete('h', ['b', 'c']);
      expect(await store.hashGetAll('h')).toEqual({});
      await store.hashDelete('never', ['x']);
    });

    it('hashSetWithExpiry: the whole hash expires after its TTL', async () => {
      const store = kind.make();
      await store.hashSetWithExpiry('presence:{a}', { c1: 'x' }, 150);
      expect(await store.hashGetAll('presence:{a}')).toEqual({ c1: 'x' });
      await vi.waitFor(async () => expect(await store.hashGetAll('presence:{a}')).toEqual({}), WAIT);
      expect(await store.hashGet('presence:{a}', 'c1')).toBeNull();
    });

    it('hashSetWithExpiry resets the expiry of the whole key, including older fields', async () => {
      const store = kind.make();
      await store.hashSetWithExpiry('presence:{a}', { old: '1' }, 60_000);
      await store.hashSetWithExpiry('presence:{a}', { fresh: '2' }, 150);
      expect(await store.hashGetAll('presence:{a}')).toEqual({ old: '1', fresh: '2' });
      await vi.waitFor(async () => expect(await store.hashGetAll('presence:{a}')).toEqual({}), WAIT);
    });
  });

  describe('values', () => {
    it('setMaxStreamId never moves back and compares ids numerically', async () => {
      const store = kind.make();
      expect(await store.setMaxStreamId('cursor:{a}', '9-5')).toBe('9-5');
      expect(await store.setMaxStreamId('cursor:{a}', '9-4')).toBe('9-5');
      expect(await store.setMaxStreamId('cursor:{a}', '8-99')).toBe('9-5');
      expect(await store.setMaxStreamId('cursor:{a}', '9-5')).toBe('9-5');
      expect(await store.setMaxStreamId('cursor:{a}', '10-0')).toBe('10-0'); // "10-0" < "9-5" as text
      expect(await store.setMaxStreamId('cursor:{a}', '10-10')).toBe('10-10');
      expect(await store.setMaxStreamId('cursor:{a}', '10-9')).toBe('10-10');
      expect(await store.setMaxStreamId('cursor:{a}', '1732520000000-0')).toBe('1732520000000-0');
      expect(await store.getValue('cursor:{a}')).toBe('1732520000000-0');
    });

    it('get and set, with and without a TTL', async () => {
      const store = kind.make();
      expect(await store.getValue('v')).toBeNull();
      await store.setValue('v', 'one');
      await store.setValue('v', 'two');
      expect(await store.getValue('v')).toBe('two');

      await store.setValue('short', 'gone soon', 100);
      expect(await store.getValue('short')).toBe('gone soon');
      await vi.waitFor(async () => expect(await store.getValue('short')).toBeNull(), WAIT);
    });

    it('setting a value without a TTL clears an earlier TTL', async () => {
      const store = kind.make();
      await store.setValue('kept', 'a', 100);
      await store.setValue('kept', 'b');
      // The sentinel expires after where `kept` would have: once it is gone, `kept` would be too.
      await store.setValue('sentinel', 'x', 100);
      await vi.waitFor(async () => expect(await store.getValue('sentinel')).toBeNull(), WAIT);
      expect(await store.getValue('kept')).toBe('b');
    });

    it('deleteKeys removes keys of every kind', async () => {
      const store = kind.make();
      await store.appendStreams([{ key: 's', fields: { a: '1' }, maxLen: 10 }]);
      await store.putDocIfVersion('d', 0, 'doc');
      await store.hashSet('h', { a: '1' });
      await store.setValue('v', 'x');
      await store.setValue('other', 'stays');
      await store.deleteKeys(['s', 'd', 'h', 'v', 'never-existed']);
      await store.deleteKeys([]);
      expect(await store.streamInfo('s')).toEqual({ length: 0, firstId: null, lastId: null });
      expect(await store.getDoc('d')).toBeNull();
      expect(await store.hashGetAll('h')).toEqual({});
      expect(await store.getValue('v')).toBeNull();
      expect(await store.getValue('other')).toBe('stays');
      // A deleted document starts over at version 0.
      expect(await store.putDocIfVersion('d', 0, 'new')).toEqual({ ok: true, version: 1 });
    });
  });

  describe('publish / subscribe', () => {
    it('delivers to every subscriber, including through another handle (node)', async () => {
      const store = kind.make();
      const other = kind.peer(store);
      const a: string[] = [];
      const b: string[] = [];
      const unsubA = await store.subscribe('bus:test', (m) => a.push(m));
      const unsubB = await other.subscribe('bus:test', (m) => b.push(m));
      cleanup(async () => {
        await unsubA();
        await unsubB();
      });
      await store.publish('bus:test', 'one');
      await other.publish('bus:test', 'two');
      await vi.waitFor(() => {
        expect(a).toEqual(['one', 'two']);
        expect(b).toEqual(['one', 'two']);
      }, WAIT);
    });

    it('subscribe resolves once delivery is live, also for a listener joining a topic still being subscribed', async () => {
      const store = kind.make();
      const a: string[] = [];
      const b: string[] = [];
      const pendingA = store.subscribe('bus:join', (m) => a.push(m));
      const unsubB = await store.subscribe('bus:join', (m) => b.push(m));
      await store.publish('bus:join', 'right after');
      const unsubA = await pendingA;
      cleanup(async () => {
        await unsubA();
        await unsubB();
      });
      await vi.waitFor(() => expect([a, b]).toEqual([['right after'], ['right after']]), WAIT);
    });

    it('unsubscribe stops delivery to that listener only', async () => {
      const store = kind.make();
      const a: string[] = [];
      const b: string[] = [];
      const sentinel: string[] = [];
      const unsubA = await store.subscribe('bus:t', (m) => a.push(m));
      const unsubB = await store.subscribe('bus:t', (m) => b.push(m));
      const unsubS = await store.subscribe('bus:sentinel', (m) => sentinel.push(m));
      cleanup(() => unsubS());

      await store.publish('bus:t', 'first');
      await vi.waitFor(() => expect([a, b]).toEqual([['first'], ['first']]), WAIT);

      await unsubA();
      await unsubA(); // idempotent
      await store.publish('bus:t', 'second');
      await vi.waitFor(() => expect(b).toEqual(['first', 'second']), WAIT);
      expect(a).toEqual(['first']);

      // The last listener gone: nothing is delivered, checked against a later message on another topic.
      await unsubB();
      await store.publish('bus:t', 'third');
      await store.publish('bus:sentinel', 'done');
      await vi.waitFor(() => expect(sentinel).toEqual(['done']), WAIT);
      expect(a).toEqual(['first']);
      expect(b).toEqual(['first', 'second']);
    });

    it('topics are isolated between unrelated stores (other prefix / other process)', async () => {
      const store = kind.make();
      const unrelated = kind.make();
      const got: string[] = [];
      const sentinel: string[] = [];
      const unsub = await unrelated.subscribe('bus:iso', (m) => got.push(m));
      const unsubS = await store.subscribe('bus:sentinel', (m) => sentinel.push(m));
      cleanup(async () => {
        await unsub();
        await unsubS();
      });
      await store.publish('bus:iso', 'not for you');
      await store.publish('bus:sentinel', 'done');
      await vi.waitFor(() => expect(sentinel).toEqual(['done']), WAIT);
      expect(got).toEqual([]);
    });
  });

  describe('export / import', () => {
    async function fill(store: Store) {
      const ids = await store.appendStreams([
        { key: 'history:{a}', fields: { mid: '1', m: 'hello' }, maxLen: 100 },
        { key: 'channel:{c}', fields: { mid: '1', m: 'hello' }, maxLen: 100 },
        { key: 'history:{a}', fields: { mid: '2', m: 'again' }, maxLen: 100 },
      ]);
      await store.putDocIfVersion('context:{global}', 0, 'v1');
      await store.putDocIfVersion('context:{global}', 1, 'v2');
      await store.hashSet('agents', { a: '{"agent_id":"a"}', b: '{"agent_id":"b"}' });
      await store.setValue('cursor:{a}', ids[0]!);
      await store.hashSetWithExpiry('presence:{a}', { conn1: 'live' }, 60_000);
      await store.saveSnapshot('before', 'snapshot text');
      return ids;
    }

    it('exports streams with their ids, docs with their versions, hashes and values; not presence or snapshots', async () => {
      const store = kind.make();
      const ids = await fill(store);
      const dump = await store.exportState();
      expect(dump).toEqual({
        streams: {
          'history:{a}': [
            { id: ids[0], fields: { mid: '1', m: 'hello' } },
            { id: ids[2], fields: { mid: '2', m: 'again' } },
          ],
          'channel:{c}': [{ id: ids[1], fields: { mid: '1', m: 'hello' } }],
        },
        docs: { 'context:{global}': { version: 2, value: 'v2' } },
        hashes: { agents: { a: '{"agent_id":"a"}', b: '{"agent_id":"b"}' } },
        values: { 'cursor:{a}': ids[0] },
      });
    });

    it('round-trips into a fresh store: same ids, same versions, and both keep counting from there', async () => {
      const source = kind.make();
      await fill(source);
      const dump = await source.exportState();
      const target = kind.make();
      await target.importState(dump);
      expect(await target.exportState()).toEqual(dump);

      expect(await target.putDocIfVersion('context:{global}', 2, 'v3')).toEqual({ ok: true, version: 3 });
      const [next] = await target.appendStreams([{ key: 'history:{a}', fields: { mid: '3' }, maxLen: 100 }]);
      expect(compareStreamIds(next!, dump.streams['history:{a}']!.at(-1)!.id)).toBeGreaterThan(0);
    });

    it('new ids stay above imported ones even when the dump is ahead of the clock', async () => {
      const store = kind.make();
      const future = `${Date.now() + 3_600_000}-7`;
      await store.importState({ streams: { s: [{ id: future, fields: { a: '1' } }] }, docs: {}, hashes: {}, values: {} });
      const [next] = await store.appendStreams([{ key: 's', fields: { a: '2' }, maxLen: 10 }]);
      expect(compareStreamIds(next!, future)).toBeGreaterThan(0);
      const [other] = await store.appendStreams([{ key: 'another', fields: { a: '3' }, maxLen: 10 }]);
      expect(other).toMatch(STREAM_ID_PATTERN);
    });

    it('import replaces what was there; snapshots and live presence stay', async () => {
      const store = kind.make();
      await fill(store);
      const dump = await store.exportState();

      await store.appendStreams([
        { key: 'history:{a}', fields: { mid: 'later' }, maxLen: 100 },
        { key: 'history:{new}', fields: { mid: 'later' }, maxLen: 100 },
      ]);
      await store.putDocIfVersion('context:{global}', 2, 'v3');
      await store.putDocIfVersion('context:{agent:a}', 0, 'new doc');
      await store.hashSet('agents', { c: 'new agent' });
      await store.setValue('cursor:{b}', '1-1');
      await store.hashSetWithExpiry('presence:{b}', { conn2: 'live' }, 60_000);

      await store.importState(dump);
      expect(await store.exportState()).toEqual(dump);
      expect(await store.getDoc('context:{agent:a}')).toBeNull();
      expect(await store.streamInfo('history:{new}')).toMatchObject({ length: 0 });
      expect(await store.loadSnapshot('before')).toBe('snapshot text');
      expect(await store.hashGetAll('presence:{a}')).toEqual({ conn1: 'live' });
      expect(await store.hashGetAll('presence:{b}')).toEqual({ conn2: 'live' });
    });
  });

  describe('snapshots', () => {
    it('save, load, list', async () => {
      const store = kind.make();
      expect(await store.listSnapshots()).toEqual([]);
      expect(await store.loadSnapshot('nope')).toBeNull();
      await store.saveSnapshot('20261125T100000000Z', 'second');
      await store.saveSnapshot('20261125T090000000Z', 'first ✓');
      expect(await store.loadSnapshot('20261125T090000000Z')).toBe('first ✓');
      expect(await store.loadSnapshot('20261125T100000000Z')).toBe('second');
      const list = await store.listSnapshots();
      expect(list.map((s) => s.name)).toEqual(['20261125T090000000Z', '20261125T100000000Z']);
      expect(list[0]!.bytes).toBe(Buffer.byteLength('first ✓'));
      expect(list[1]!.bytes).toBe(6);
      for (const s of list) expect(Number.isNaN(Date.parse(s.createdAt))).toBe(false);
      // Snapshots are not part of the state they capture.
      expect(await store.exportState()).toEqual({ streams: {}, docs: {}, hashes: {}, values: {} });
    });
  });

  it('ping answers', async () => {
    const store = kind.make();
    await expect(store.ping()).resolves.toBeUndefined();
  });
});

/** Counts the script calls the store's append batching sends (spied on, not replaced). */
function countScriptCalls(store: RedisStore): () => number {
  const spy = vi.spyOn(store as unknown as { sendAppends: (calls: unknown[]) => void }, 'sendAppends');
  return () => spy.mock.calls.length;
}

describe('RedisStore specifics', () => {
  it('a prefix with glob characters exports and replaces only its own keys', async () => {
    const base = uniquePrefix();
    const globby = makeRedisStore(`${base}?[x]*:`);
    const neighbour = makeRedisStore(`${base}ax-neighbour:`); // what `?[x]*:*` would match unescaped
    await neighbour.setValue('v', 'not yours');
    await globby.setValue('v', 'mine');
    expect(await globby.exportState()).toEqual({ streams: {}, docs: {}, hashes: {}, values: { v: 'mine' } });
    await globby.importState({ streams: {}, docs: {}, hashes: {}, values: {} });
    expect(await globby.getValue('v')).toBeNull();
    expect(await neighbour.getValue('v')).toBe('not yours');
  });

  it('appends still work after Redis forgot its scripts (SCRIPT FLUSH, as after a restart)', async () => {
    const store = makeRedisStore();
    const [before] = await store.appendStreams([{ key: 's', fields: { n: '1' }, maxLen: 10 }]);
    await rawRedis().script('FLUSH');
    const [after] = await store.appendStreams([{ key: 's', fields: { n: '2' }, maxLen: 10 }]);
    expect(compareStreamIds(before!, after!)).toBeLessThan(0);
    expect((await store.readStream('s', { count: 10 })).map((e) => e.fields.n)).toEqual(['1', '2']);
  });

  it('an append onto a key of another type rejects with the Redis error, and the store goes on', async () => {
    const store = makeRedisStore();
    await rawRedis().set(`${store.prefix}wrong`, 'a string');
    await expect(store.appendStreams([{ key: 'wrong', fields: { n: '1' }, maxLen: 10 }])).rejects.toThrow(/WRONGTYPE/);
    const [id] = await store.appendStreams([{ key: 'right', fields: { n: '1' }, maxLen: 10 }]);
    expect(await store.readStream('right', { count: 10 })).toEqual([{ id, fields: { n: '1' } }]);
  });

  it('the appends of one turn share one script call; a wrong-type key fails only its own caller', async () => {
    const store = makeRedisStore();
    await rawRedis().set(`${store.prefix}wrong`, 'a string');
    const scriptCalls = countScriptCalls(store);
    const calls = Array.from({ length: 40 }, (_, i) =>
      i === 17
        ? store.appendEntries([
            { key: 'turn', fields: { n: String(i) }, maxLen: 100 },
            { key: 'wrong', fields: { n: 'x' }, maxLen: 100 },
          ])
        : store.appendEntries([{ key: 'turn', fields: { n: String(i) }, maxLen: 100 }]),
    );
    const settled = await Promise.allSettled(calls);
    expect(settled.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([
      expect.stringMatching(/WRONGTYPE/),
    ]);
    expect(scriptCalls()).toBe(1);
    // Every caller's entry is there, in call order (caller 17's append before its failure stays,
    // as with MULTI).
    expect((await store.readStream('turn', { count: 100 })).map((e) => e.fields.n)).toEqual(Array.from({ length: 40 }, (_, i) => String(i)));
  });

  it('a turn with more entries than one script call carries is split between calls, in order, no caller split', async () => {
    const store = makeRedisStore();
    const scriptCalls = countScriptCalls(store);
    const fields = { m: 'shared' };
    // 4 callers of 3,000 entries each: 12,000, over the 8,192 entries one call carries; two of
    // them fit in one call, a third would not.
    const results = await Promise.all(
      [0, 1, 2, 3].map((c) =>
        store.appendEntries(Array.from({ length: 3000 }, (_, i) => ({ key: `split:{${i}}`, fields: { ...fields, c: String(c) }, maxLen: 10 }))),
      ),
    );
    expect(results.map((r) => r!.length)).toEqual([3000, 3000, 3000, 3000]);
    expect(scriptCalls()).toBe(2);
    const entries = await store.readStream('split:{2999}', { count: 10 });
    expect(entries.map((e) => e.fields.c)).toEqual(['0', '1', '2', '3']);
    expect(results.map((r) => r![2999]!.prev)).toEqual(['', results[0]![2999]!.id, results[1]![2999]!.id, results[2]![2999]!.id]);
    // One caller larger than a call carries goes whole, in one call.
    const big = await store.appendEntries(Array.from({ length: 10_000 }, (_, i) => ({ key: `split:{${i}}`, fields, maxLen: 10 })));
    expect(big).toHaveLength(10_000);
    expect(scriptCalls()).toBe(3);
  });

  it('a Redis outage fails every caller of the turn with SERVICE_UNAVAILABLE', async () => {
    const port = await freePort();
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, prefix: 't:down:', connectTimeoutMs: 200 });
    cleanup(() => store.close());
    const settled = await Promise.allSettled([1, 2, 3].map((n) => store.appendEntries([{ key: 's', fields: { n: String(n) }, maxLen: 10 }])));
    for (const r of settled) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(LinkerError);
      expect(((r as PromiseRejectedResult).reason as LinkerError).code).toBe('SERVICE_UNAVAILABLE');
    }
  });

  it('fails fast with SERVICE_UNAVAILABLE when Redis is unreachable', async () => {
    const port = await freePort();
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, prefix: 't:down:', connectTimeoutMs: 200 });
    cleanup(() => store.close());
    const err = await store.ping().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LinkerError);
    expect((err as LinkerError).code).toBe('SERVICE_UNAVAILABLE');
  });
});
