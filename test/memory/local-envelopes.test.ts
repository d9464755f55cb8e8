/**
 * memory/messages.ts: the node that routes a message hands its live listeners the envelope it
 * validated itself, on the very fields object it appended (hidden: not stored, not copied, not
 * sent to other nodes), so live delivery on that node opens nothing. Anything read back from a
 * store, or arriving as JSON from another node, is opened (counted here with a real key ring;
 * the embedded store seals each value here too, with `sealInMemory`).
 */
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../crypto/keyring.js';
import { EmbeddedStore } from '../../memory/embedded/store.js';
import { createSharedMemory } from '../../memory/index.js';
import { keyRingSealer, type ValueSealer } from '../../memory/sealing.js';
import { makeRedisStore } from '../setup/stores.js';
import { envelope } from './helpers.js';

function countingMemory(kind: 'embedded' | 'redis') {
  const inner = keyRingSealer(KeyRing.generate(), { offThread: false });
  let opens = 0;
  const sealer: ValueSealer = { enabled: true, seal: inner.seal, open: (stored, ad) => (opens++, inner.open(stored, ad)) };
  const memory = createSharedMemory({ store: kind === 'redis' ? makeRedisStore() : new EmbeddedStore(), sealer, sealInMemory: true });
  return { memory, opens: () => opens };
}

describe.each(['embedded', 'redis'] as const)('envelopes on the routing node (%s)', (kind) => {
  it('live fields decode without opening; what is read back from the store is opened, and equal', async () => {
    const { memory, opens } = countingMemory(kind);
    const sent = [];
    for (let i = 0; i < 20; i++) {
      const env = envelope({ from: 'alice', to: 'bob', content: { i } });
      const routed = await memory.messages.route(await memory.messages.prepare(env), ['bob'], null);
      sent.push({ env, routed });
    }
    for (const { env, routed } of sent) {
      expect(memory.messages.decodeFields(routed.inboxes.bob!, routed.fields, { agent: 'bob' }).envelope).toBe(env);
    }
    expect(opens()).toBe(0);
    const read = await memory.messages.readInbox('bob', undefined, 100);
    expect(read.map((m) => m.envelope)).toEqual(sent.map((s) => s.env));
    expect(opens()).toBe(20);
  });

  it('the envelope is not part of the fields: not serialized for other nodes, not copied, not stored', async () => {
    const { memory, opens } = countingMemory(kind);
    const env = envelope({ from: 'alice', to: 'bob', content: 'secret-ish' });
    const routed = await memory.messages.route(await memory.messages.prepare(env), ['bob'], null);
    expect(Object.keys(routed.fields).sort()).toEqual(['m', 'mid', 'p', 'x']);
    const remote = JSON.parse(JSON.stringify(routed.fields)) as Record<string, string>;
    expect(remote).toEqual({ ...routed.fields });
    expect(JSON.stringify(routed.fields)).not.toContain('secret-ish');
    // As another node receives it (JSON), and as a copy: both open the sealed value.
    expect(memory.messages.decodeFields(routed.inboxes.bob!, remote, { agent: 'bob' }).envelope).toEqual(env);
    expect(memory.messages.decodeFields(routed.inboxes.bob!, { ...routed.fields }, { agent: 'bob' }).envelope).toEqual(env);
    expect(opens()).toBe(2);
  });
});
