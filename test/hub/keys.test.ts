/**
 * admin.keysStatus and admin.keysRotate through the hub with the typed client: what is sealed on
 * each store, rotation with values sealed before and after it still read, the admin scope, and a
 * hub that cannot rotate saying so.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KeyRing } from '../../crypto/keyring.js';
import { keyRingSealer } from '../../memory/sealing.js';
import { keys } from '../../memory/keys.js';
import { rejection, startTestHub, type StoreKind, type TestHub } from './harness.js';

describe.each<StoreKind>(['redis', 'embedded'])('at-rest keys through the hub on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('keysStatus says whether sealing is on and whether each value is sealed in the store', async () => {
    t = await startTestHub(kind);
    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] }));
    expect(await admin.trpc.admin.keysStatus.query()).toEqual({ sealing: true, values_sealed: kind === 'redis', store: kind });
    await t.close();
    t = await startTestHub(kind, { sealInMemory: true });
    const again = t.client(await t.addAgent('root', { scopes: ['admin'] }));
    expect(await again.trpc.admin.keysStatus.query()).toEqual({ sealing: true, values_sealed: true, store: kind });
  });

  it('keysRotate: new values are sealed with the new key, values sealed before still read; admin only', async () => {
    const ring = KeyRing.generate();
    const firstKey = ring.activeKeyId;
    t = await startTestHub(kind, {
      sealer: keyRingSealer(ring),
      sealInMemory: true,
      rotateKeys: async () => {
        ring.rotate();
        return { activeKeyId: ring.activeKeyId, keyIds: ring.keyIds };
      },
    });
    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] }));
    const alice = t.client(await t.addAgent('alice'));
    const bob = t.client(await t.addAgent('bob'));
    const before = await alice.trpc.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'before the rotation' } });

    const refused = await rejection(alice.trpc.admin.keysRotate.mutate());
    expect(refused.data?.code).toBe('FORBIDDEN');
    expect(ring.activeKeyId).toBe(firstKey);

    const rotated = await admin.trpc.admin.keysRotate.mutate();
    expect(rotated.activeKeyId).not.toBe(firstKey);
    expect(rotated.keyIds.sort()).toEqual([firstKey, rotated.activeKeyId].sort());
    const after = await alice.trpc.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'after the rotation' } });

    // Each stored envelope names the key that sealed it.
    const stored = await t.hub.memory.store.readStream(keys.history('bob'), { count: 10 });
    const sealedWith = stored.map((e) => ring.sealedKeyId(new Uint8Array(Buffer.from(e.fields.m!, 'base64'))));
    expect(stored.map((e) => e.fields.mid)).toEqual([before.id, after.id]);
    expect(sealedWith).toEqual([firstKey, rotated.activeKeyId]);
    const history = await bob.trpc.messages.history.query({});
    // History lists the newest first.
    expect(history.items.map((i) => i.message.payload.content)).toEqual(['after the rotation', 'before the rotation']);
  });

  it('keysRotate on a hub given no way to rotate: PRECONDITION_FAILED saying why', async () => {
    t = await startTestHub(kind);
    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] }));
    const err = await rejection(admin.trpc.admin.keysRotate.mutate());
    expect(err.data?.code).toBe('PRECONDITION_FAILED');
    expect(err.message).toBe('at-rest sealing is off on this hub: there are no keys to rotate');
  });
});
