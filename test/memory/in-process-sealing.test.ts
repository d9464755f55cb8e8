/**
 * At-rest sealing on the embedded store (memory/sealing.ts, inProcessValues): what reaches the disk
 * (snapshot files) is sealed whole and holds no canary; the values in the hub's own memory are
 * kept as they are (a control proves the search of the files would have found the canary there);
 * values sealed one by one (a Redis hub's dump, a snapshot taken with `sealInMemory`) still open;
 * `sealInMemory` seals each value in memory too, and still reads values kept as they are.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../crypto/keyring.js';
import { EmbeddedStore } from '../../memory/embedded/store.js';
import { createSharedMemory, type SharedMemory } from '../../memory/index.js';
import { isSealedText, keyRingSealer, plainText } from '../../memory/sealing.js';
import { makeRedisStore, tempDir } from '../setup/stores.js';
import { send } from './helpers.js';

/** Every file under `dir`, as text. */
function filesUnder(dir: string): { path: string; text: string }[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile())
    .map((path) => ({ path, text: readFileSync(path, 'utf8') }));
}

/** One of each kind of value, each carrying `canary`. */
async function writeEverything(memory: SharedMemory, canary: string) {
  await memory.agents.upsert({ agent_id: 'alice', metadata: { bio: `alice ${canary}` } });
  await memory.agents.upsert({ agent_id: 'bob' });
  for (const a of ['alice', 'bob']) await memory.channels.join('ops', a);
  const direct = await send(memory, { from: 'alice', to: 'bob', content: { text: `direct ${canary}` } });
  await send(memory, { from: 'alice', channel: 'ops', content: `channel ${canary}` });
  await memory.contexts.push('global', { note: `global ${canary}` }, 'alice');
  await memory.sessions.create({ session_id: 'sess-1', participants: ['alice', 'bob'], metadata: { goal: `goal ${canary}` }, created_by: 'alice' });
  return direct;
}

/** What `writeEverything` wrote, read back through the memory layer. */
async function readEverything(memory: SharedMemory) {
  return {
    inbox: (await memory.messages.readInbox('bob', undefined, 10)).map((m) => m.envelope.payload.content),
    channel: (await memory.messages.readChannel('ops', undefined, 10)).map((m) => m.envelope.payload.content),
    context: (await memory.contexts.pull('global')).data,
    session: (await memory.sessions.require('sess-1')).metadata.goal,
    agent: (await memory.agents.require('alice')).metadata,
  };
}

const expected = (canary: string) => ({
  inbox: [{ text: `direct ${canary}` }, `channel ${canary}`],
  channel: [`channel ${canary}`],
  context: { note: `global ${canary}` },
  session: `goal ${canary}`,
  agent: { bio: `alice ${canary}` },
});

describe('at-rest sealing on the embedded store', () => {
  it('snapshot files hold no canary, and restore everything into a new hub with the same keys', async () => {
    const dir = tempDir();
    const ring = KeyRing.generate();
    const canary = `CANARY-${randomUUID()}`;
    const memory = createSharedMemory({ store: new EmbeddedStore({ dataDir: dir }), sealer: keyRingSealer(ring) });
    await writeEverything(memory, canary);
    const snapshot = await memory.snapshots.create();

    const files = filesUnder(dir);
    expect(files.map((f) => f.path)).toContain(join(dir, 'snapshots', `${snapshot.name}.json`));
    expect(files.filter((f) => f.text.includes(canary)).map((f) => f.path)).toEqual([]);
    expect(files.filter((f) => f.text.includes('alice')).map((f) => f.path)).toEqual([]);

    // In the hub's own memory the values are as they were written (not sealed one by one).
    expect(JSON.stringify(await memory.store.exportState())).toContain(canary);

    const again = createSharedMemory({ store: new EmbeddedStore({ dataDir: dir }), sealer: keyRingSealer(ring) });
    expect(await again.snapshots.restoreLatest()).toBe(snapshot.name);
    expect(await readEverything(again)).toEqual(expected(canary));
    // With other keys the snapshot does not open.
    const stranger = createSharedMemory({ store: new EmbeddedStore({ dataDir: dir }), sealer: keyRingSealer(KeyRing.generate()) });
    await expect(stranger.snapshots.restoreLatest()).rejects.toThrow(/cannot be opened with the current keys/);
  });

  it('control: without sealing the snapshot file does hold the canary (the search above would find it)', async () => {
    const dir = tempDir();
    const canary = `CANARY-${randomUUID()}`;
    const memory = createSharedMemory({ store: new EmbeddedStore({ dataDir: dir }), sealer: plainText });
    await writeEverything(memory, canary);
    await memory.snapshots.create();
    expect(filesUnder(dir).filter((f) => f.text.includes(canary))).toHaveLength(1);
  });

  it('with sealInMemory every value in memory is sealed too, and reads back', async () => {
    const canary = `CANARY-${randomUUID()}`;
    const memory = createSharedMemory({ store: new EmbeddedStore(), sealer: keyRingSealer(KeyRing.generate()), sealInMemory: true });
    await writeEverything(memory, canary);
    expect(JSON.stringify(await memory.store.exportState())).not.toContain(canary);
    expect(await readEverything(memory)).toEqual(expected(canary));
  });

  it('values sealed one by one still open: a Redis hub’s dump, and an embedded snapshot taken with sealInMemory', async () => {
    const ring = KeyRing.generate();
    const canary = `CANARY-${randomUUID()}`;
    const onRedis = createSharedMemory({ store: makeRedisStore(), sealer: keyRingSealer(ring) });
    await writeEverything(onRedis, canary);
    const dump = await onRedis.store.exportState();
    expect(JSON.stringify(dump)).not.toContain(canary);

    const embedded = createSharedMemory({ store: new EmbeddedStore(), sealer: keyRingSealer(ring) });
    await embedded.store.importState(dump);
    expect(await readEverything(embedded)).toEqual(expected(canary));
    // New writes beside the imported sealed values are kept as they are, and both read back.
    await send(embedded, { from: 'alice', to: 'bob', content: { text: 'after the import' } });
    expect((await embedded.messages.readInbox('bob', undefined, 10)).map((m) => m.envelope.payload.content)).toEqual([
      { text: `direct ${canary}` },
      `channel ${canary}`,
      { text: 'after the import' },
    ]);

    const dir = tempDir();
    const sealedEach = createSharedMemory({ store: new EmbeddedStore({ dataDir: dir }), sealer: keyRingSealer(ring), sealInMemory: true });
    await writeEverything(sealedEach, canary);
    await sealedEach.snapshots.create();
    const restored = createSharedMemory({ store: new EmbeddedStore({ dataDir: dir }), sealer: keyRingSealer(ring) });
    await restored.snapshots.restoreLatest();
    expect(await readEverything(restored)).toEqual(expected(canary));
  });

  it('turning sealInMemory on keeps a default snapshot readable; new values are then sealed', async () => {
    const ring = KeyRing.generate();
    const canary = `CANARY-${randomUUID()}`;
    const dir = tempDir();
    const plainEach = createSharedMemory({ store: new EmbeddedStore({ dataDir: dir }), sealer: keyRingSealer(ring) });
    await writeEverything(plainEach, canary);
    await plainEach.snapshots.create();

    const sealedEach = createSharedMemory({ store: new EmbeddedStore({ dataDir: dir }), sealer: keyRingSealer(ring), sealInMemory: true });
    await sealedEach.snapshots.restoreLatest();
    expect(await readEverything(sealedEach)).toEqual(expected(canary));
    // Registering an agent again (what serve does at start for configured agents) reads and rewrites it.
    await sealedEach.agents.upsert({ agent_id: 'alice', metadata: { bio: 'rewritten' } });
    const later = `LATER-${randomUUID()}`;
    await sealedEach.contexts.push('global', { note: later }, 'alice');
    const state = JSON.stringify(await sealedEach.store.exportState());
    expect(state).not.toContain(later);
    expect(state).not.toContain('rewritten');
    expect((await sealedEach.contexts.pull('global')).data).toEqual({ note: later });
    expect((await sealedEach.agents.require('alice')).metadata).toEqual({ bio: 'rewritten' });
  });

  it('a sealed value never reads as JSON text, nor JSON text as a sealed value', () => {
    const ring = KeyRing.generate();
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), (value, ad) => {
        const text = JSON.stringify(value);
        expect(isSealedText(text)).toBe(false);
        expect(isSealedText(ring.sealString(text, ad))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
