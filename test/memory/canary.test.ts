/**
 * With sealing on, no payload content, context value, session metadata or agent metadata reaches
 * Redis in clear text. Every kind of write carries a unique canary; then every key under the
 * prefix is read back with plain Redis commands and searched. A control run with the plain
 * sealer proves the search would have found it.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../crypto/index.js';
import { createSharedMemory, type SharedMemory } from '../../memory/index.js';
import { keyRingSealer, plainText, type ValueSealer } from '../../memory/sealing.js';
import { deletePrefix, dumpPrefix, makeRedisStore, makeSqliteStore, rawRedis, tempDir, uniquePrefix, type RawKey } from '../setup/stores.js';
import { send } from './helpers.js';
import { keys } from '../../memory/keys.js';

/** Writes one of everything, each carrying `canary`; returns what should read back. */
async function writeEverything(memory: SharedMemory, canary: string) {
  await memory.agents.upsert({ agent_id: 'alice', agent_type: 'claude', metadata: { bio: `alice ${canary}` } });
  await memory.agents.upsert({ agent_id: 'bob', metadata: { notes: [canary] } });
  // A live hub node's heartbeat (transport/bus.ts), then its connection.
  await memory.store.hashSetWithExpiry(keys.nodeAlive('node-1'), { beat: new Date().toISOString() }, 60_000);
  await memory.agents.connected('alice', 'conn-1', { node: 'node-1', connected_since: new Date().toISOString() });
  for (const a of ['alice', 'bob', 'carol']) await memory.channels.join('ops', a);

  const direct = await send(memory, { from: 'alice', to: 'bob', content: { text: `direct ${canary}` }, sessionId: 'sess-1' });
  const onChannel = await send(memory, { from: 'alice', channel: 'ops', content: `channel ${canary}` });
  const broadcast = await send(memory, { from: 'bob', channel: 'ops', type: 'broadcast', content: { deep: { list: [canary] } } });
  await memory.messages.recordAck('alice', { message_id: direct.envelope.id, by: 'bob', at: new Date().toISOString() });
  await memory.messages.advanceCursor('bob', direct.inboxes.bob!);

  await memory.contexts.push('global', { note: `global ${canary}`, shared_knowledge: { facts: [canary] } }, 'alice');
  await memory.contexts.push('agent:alice', { scratch: { [`k-${canary}`]: 1 } }, 'alice');
  await memory.contexts.push('session:sess-1', { plan: [`step ${canary}`] }, 'bob');

  await memory.sessions.create({ session_id: 'sess-2', participants: ['bob'], metadata: { goal: `goal ${canary}` }, created_by: 'alice' });
  await memory.sessions.addMessage('sess-1', {
    message_id: onChannel.envelope.id,
    from: 'alice',
    to: null,
    type: 'task',
    timestamp: onChannel.envelope.timestamp,
  });
  await memory.sessions.update('sess-1', { metadata: { goal: `goal ${canary}` } });
  await memory.tokens.issue('alice', ['agent']);

  const snapshot = await memory.snapshots.create();
  return { direct, onChannel, broadcast, snapshot };
}

function holders(raw: RawKey[], canary: string): string[] {
  return raw.filter((k) => k.key.includes(canary) || k.texts.some((t) => t.includes(canary))).map((k) => `${k.type} ${k.key}`);
}

async function run(sealer: ValueSealer) {
  const canary = `CANARY-${randomUUID()}`;
  const prefix = uniquePrefix();
  const memory = createSharedMemory({ store: makeRedisStore(prefix), sealer });
  const written = await writeEverything(memory, canary);
  const raw = await dumpPrefix(prefix);
  return { canary, prefix, memory, written, raw };
}

describe('sealing at rest (Redis)', () => {
  it('with a key ring, the canary appears nowhere in Redis, yet everything reads back', async () => {
    const { canary, prefix, memory, written, raw } = await run(keyRingSealer(KeyRing.generate()));

    // Not vacuous: plenty of keys of each kind were read, and every key was under the prefix.
    const ofType = (type: string) => raw.filter((k) => k.type === type).length;
    expect(raw.length).toBeGreaterThanOrEqual(20);
    expect(ofType('stream')).toBeGreaterThanOrEqual(6);
    expect(ofType('hash')).toBeGreaterThanOrEqual(8);
    expect(ofType('string')).toBeGreaterThanOrEqual(2);
    expect(raw.reduce((n, k) => n + k.texts.length, 0)).toBeGreaterThanOrEqual(100);
    for (const k of raw) expect(k.key.startsWith(prefix)).toBe(true);
    expect(raw.map((k) => k.key)).toContain(`${prefix}snapshot:${written.snapshot.name}`);

    expect(holders(raw, canary)).toEqual([]);

    // The sealed values open again through the memory layer.
    const [d] = await memory.messages.readInbox('bob', undefined, 10);
    expect(d!.envelope.payload.content).toEqual({ text: `direct ${canary}` });
    const channel = await memory.messages.readChannel('ops', undefined, 10);
    expect(channel.map((m) => m.envelope.payload.content)).toEqual([`channel ${canary}`, { deep: { list: [canary] } }]);
    expect((await memory.contexts.pull('global')).data).toMatchObject({ note: `global ${canary}` });
    expect((await memory.sessions.require('sess-2')).metadata.goal).toBe(`goal ${canary}`);
    expect((await memory.sessions.require('sess-1')).metadata.goal).toBe(`goal ${canary}`);
    expect((await memory.agents.require('alice')).metadata).toEqual({ bio: `alice ${canary}` });
    expect((await memory.agents.list()).map((a) => [a.agent_id, a.online])).toEqual([
      ['alice', true],
      ['bob', false],
    ]);
    await memory.snapshots.restore(written.snapshot.name);
    expect((await memory.contexts.pull('session:sess-1')).data).toEqual({ plan: [`step ${canary}`] });
  });

  it('control: the same writes with the plain sealer do expose the canary, in every kind of key', async () => {
    const { canary, prefix, raw } = await run(plainText);
    const found = holders(raw, canary);
    const expected = [
      `stream ${prefix}history:{bob}`,
      `stream ${prefix}history:{carol}`,
      `stream ${prefix}channel:{ops}`,
      `hash ${prefix}context:{global}`,
      `hash ${prefix}context:{agent:alice}`,
      `hash ${prefix}context:{session:sess-1}`,
      `hash ${prefix}session:{sess-1}`,
      `hash ${prefix}session:{sess-2}`,
      `hash ${prefix}agents`,
      `string ${prefix}snapshot:`,
    ];
    for (const e of expected) expect(found.some((f) => f.startsWith(e))).toBe(true);
  });

  it('the raw reader sees inside every Redis type, so the search above cannot miss one', async () => {
    const prefix = uniquePrefix();
    const redis = rawRedis();
    await redis.set(`${prefix}s`, 'in-string');
    await redis.hset(`${prefix}h`, 'in-hash-field', 'in-hash-value');
    await redis.xadd(`${prefix}x`, '*', 'in-stream-field', 'in-stream-value');
    await redis.rpush(`${prefix}l`, 'in-list');
    await redis.sadd(`${prefix}e`, 'in-set');
    await redis.zadd(`${prefix}z`, 1, 'in-zset');
    const raw = await dumpPrefix(prefix);
    await deletePrefix(prefix);
    expect(raw.map((k) => k.type).sort()).toEqual(['hash', 'list', 'set', 'stream', 'string', 'zset']);
    for (const needle of ['in-string', 'in-hash-field', 'in-hash-value', 'in-stream-field', 'in-stream-value', 'in-list', 'in-set', 'in-zset']) {
      expect(holders(raw, needle)).toHaveLength(1);
    }
    expect(await dumpPrefix(prefix)).toEqual([]);
  });
});

/** Every byte the SQLite store keeps at rest: the database file, its WAL, the snapshot files. */
function filesAtRest(dataDir: string): { name: string; bytes: string }[] {
  const names = ['skynet-linker.db', 'skynet-linker.db-wal', ...readdirSync(join(dataDir, 'snapshots')).map((f) => join('snapshots', f))];
  // latin1: one character per byte, so any ASCII canary is found wherever it sits.
  return names.filter((n) => existsSync(join(dataDir, n))).map((name) => ({ name, bytes: readFileSync(join(dataDir, name)).toString('latin1') }));
}

describe('sealing at rest (SQLite: the database file and its WAL)', () => {
  async function runOnFile(sealer: ValueSealer) {
    const canary = `CANARY-${randomUUID()}`;
    const dir = tempDir('skynet-canary-');
    const memory = createSharedMemory({ store: makeSqliteStore({ dataDir: dir }), sealer });
    const written = await writeEverything(memory, canary);
    return { canary, dir, memory, written, files: filesAtRest(dir) };
  }

  it('with a key ring, the canary is in no byte of the database file, its WAL or a snapshot file, yet everything reads back', async () => {
    const { canary, memory, written, files } = await runOnFile(keyRingSealer(KeyRing.generate()));
    // Not vacuous: the WAL holds the writes (committed, not yet checkpointed) and keys are readable there.
    const wal = files.find((f) => f.name === 'skynet-linker.db-wal');
    expect(wal!.bytes.length).toBeGreaterThan(10_000);
    expect(files.map((f) => f.bytes).join('')).toContain('history:{bob}');
    expect(files.some((f) => f.name.startsWith('snapshots'))).toBe(true);
    expect(files.filter((f) => f.bytes.includes(canary)).map((f) => f.name)).toEqual([]);

    const [d] = await memory.messages.readInbox('bob', undefined, 10);
    expect(d!.envelope.payload.content).toEqual({ text: `direct ${canary}` });
    expect((await memory.contexts.pull('global')).data).toMatchObject({ note: `global ${canary}` });
    expect((await memory.sessions.require('sess-2')).metadata.goal).toBe(`goal ${canary}`);
    expect((await memory.agents.require('alice')).metadata).toEqual({ bio: `alice ${canary}` });
    await memory.snapshots.restore(written.snapshot.name);
    expect((await memory.contexts.pull('session:sess-1')).data).toEqual({ plan: [`step ${canary}`] });
  });

  it('control: with the plain sealer the same search finds the canary in the WAL', async () => {
    const { canary, files } = await runOnFile(plainText);
    expect(files.filter((f) => f.bytes.includes(canary)).map((f) => f.name)).toContain('skynet-linker.db-wal');
  });
});
