/**
 * memory/messages.ts keeps the envelopes it sealed lately so live delivery on the sending node
 * opens nothing: bounded to the newest 256 by count and 4 MiB by sealed bytes, a large envelope not
 * kept at all, a message prepared twice kept once. Whatever the cache holds, decode gives back the
 * envelope that was stored; a miss opens the stored value (counted here with a real key ring).
 */
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../crypto/keyring.js';
import { EmbeddedStore } from '../../memory/embedded/store.js';
import { createSharedMemory } from '../../memory/index.js';
import { keyRingSealer, type ValueSealer } from '../../memory/sealing.js';
import { envelope } from './helpers.js';

function countingMemory() {
  const inner = keyRingSealer(KeyRing.generate(), { offThread: false });
  let opens = 0;
  const sealer: ValueSealer = { enabled: true, seal: inner.seal, open: (stored, ad) => (opens++, inner.open(stored, ad)) };
  const store = new EmbeddedStore();
  const memory = createSharedMemory({ store, sealer });
  return { memory, opens: () => opens };
}

async function sendAll(memory: ReturnType<typeof countingMemory>['memory'], contents: string[]) {
  const sent = [];
  for (const content of contents) {
    const env = envelope({ from: 'alice', to: 'bob', content });
    const routed = await memory.messages.route(await memory.messages.prepare(env), ['bob'], null);
    sent.push({ env, streamId: routed.inboxes.bob! });
  }
  return sent;
}

describe('recently sealed envelopes', () => {
  it('keeps the newest 256: those decode without opening, older ones are opened from the store', async () => {
    const { memory, opens } = countingMemory();
    const sent = await sendAll(memory, Array.from({ length: 300 }, (_, i) => `m${i}`));
    const read = await memory.messages.readInbox('bob', undefined, 1000);
    expect(read.map((m) => m.envelope)).toEqual(sent.map((s) => s.env));
    expect(opens()).toBe(300 - 256);
  });

  it('is bounded by sealed bytes too, and keeps no envelope over 32 KiB', async () => {
    const { memory, opens } = countingMemory();
    // 200 messages of ~30 KiB sealed: about 6 MiB, over the 4 MiB bound long before 256 of them.
    const sent = await sendAll(memory, Array.from({ length: 200 }, (_, i) => `${i}:`.padEnd(22_000, 'x')));
    const read = await memory.messages.readInbox('bob', undefined, 1000);
    expect(read.map((m) => m.envelope.id)).toEqual(sent.map((s) => s.env.id));
    const opened = opens();
    // Without the byte bound all 200 would be kept (under the count bound of 256).
    expect(opened).toBeGreaterThan(40);
    expect(opened).toBeLessThan(200);
    // The newest one is always kept.
    const before = opens();
    memory.messages.decode({ id: sent.at(-1)!.streamId, fields: { mid: sent.at(-1)!.env.id, m: 'not opened', p: '5', x: '' } }, { agent: 'bob' });
    expect(opens()).toBe(before);

    const big = await sendAll(memory, ['y'.repeat(40_000)]);
    const [m] = await memory.messages.readInbox('bob', sent.at(-1)!.streamId, 10);
    expect(m!.envelope).toEqual(big[0]!.env);
    expect(opens()).toBe(before + 1);
  });

  it('a message prepared twice is kept once, and stays after its first slot is recycled', async () => {
    const { memory, opens } = countingMemory();
    const env = envelope({ from: 'alice', to: 'bob', content: 'twice' });
    await memory.messages.prepare(env);
    await sendAll(memory, Array.from({ length: 100 }, (_, i) => `a${i}`));
    const routed = await memory.messages.route(await memory.messages.prepare(env), ['bob'], null);
    // 255 more: the first slot of `env` is recycled, its second slot is the oldest still kept.
    await sendAll(memory, Array.from({ length: 155 }, (_, i) => `b${i}`));
    const before = opens();
    const [m] = await memory.messages.readInbox('bob', routed.inboxes.bob!.replace(/-(\d+)$/, (_, seq: string) => `-${Number(seq) - 1}`), 1);
    expect(m!.envelope).toEqual(env);
    expect(opens()).toBe(before);
  });
});
