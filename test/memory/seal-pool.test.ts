/**
 * memory/seal-pool.ts: the send path's sealing thread. What it seals opens with the ring to the
 * same text, in call order; a turn's worth of messages goes to the thread as one batch; a rotated
 * ring reaches the thread before its next batch; a lone message or a small turn is sealed inline
 * (unless a batch is in flight: nothing overtakes it); and when the
 * thread dies with work in flight, that work and everything after is sealed inline, nothing lost.
 * (A real worker thread, running the built dist/memory/seal-thread.js.)
 */
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../crypto/keyring.js';
import { keyRingSealer } from '../../memory/sealing.js';
import { INLINE_BATCH_BYTES, sealThread } from '../../memory/seal-pool.js';

const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const texts = (n: number, tag: string) => Array.from({ length: n }, (_, i) => JSON.stringify({ tag, i, content: 'é✓'.repeat(i % 50) }));

describe('the sealing thread', () => {
  // One thread per process: the tests share it, and the one that stops it runs last.
  const thread = sealThread();

  it('seals a turn of messages in one batch off the event loop; each opens to its text, in call order', async () => {
    const ring = KeyRing.generate();
    const sealer = keyRingSealer(ring);
    const before = thread.batches;
    const inputs = texts(300, 'a');
    const order: number[] = [];
    const sealed = await Promise.all(inputs.map((text, i) => sealer.sealAsync!(text, `ad:${i}`).then((s) => (order.push(i), s))));
    expect(thread.batches).toBe(before + 1);
    expect(order).toEqual(inputs.map((_, i) => i));
    sealed.forEach((s, i) => expect(ring.openString(s, `ad:${i}`)).toBe(inputs[i]));
    // Bound to its associated data, like inline sealing.
    expect(() => ring.openString(sealed[0]!, 'ad:1')).toThrow();
  });

  it('seals a lone message inline (no thread round trip), with the same format', async () => {
    const ring = KeyRing.generate();
    const sealer = keyRingSealer(ring);
    const before = thread.batches;
    const sealed = await sealer.sealAsync!('{"alone":true}', 'ad');
    expect(thread.batches).toBe(before);
    expect(ring.openString(sealed, 'ad')).toBe('{"alone":true}');
  });

  it('seals a small turn (a few KB, nothing in flight) inline, in call order', async () => {
    const ring = KeyRing.generate();
    const sealer = keyRingSealer(ring);
    const inputs = Array.from({ length: 8 }, (_, i) => JSON.stringify({ i, text: 'x'.repeat(700) }));
    expect(inputs.reduce((n, t) => n + t.length, 0)).toBeLessThan(INLINE_BATCH_BYTES);
    const before = thread.batches;
    const order: number[] = [];
    const sealed = await Promise.all(inputs.map((text, i) => sealer.sealAsync!(text, `ad:${i}`).then((s) => (order.push(i), s))));
    expect(thread.batches).toBe(before);
    expect(order).toEqual(inputs.map((_, i) => i));
    sealed.forEach((s, i) => expect(ring.openString(s, `ad:${i}`)).toBe(inputs[i]));
  });

  it('a small turn while a batch is in flight goes to the thread behind it: nothing overtakes', async () => {
    const ring = KeyRing.generate();
    const sealer = keyRingSealer(ring);
    const big = texts(300, 'big');
    const small = texts(3, 'small');
    const order: string[] = [];
    const before = thread.batches;
    const first = big.map((text, i) => sealer.sealAsync!(text, 'ad').then((s) => (order.push(`big ${i}`), s)));
    // Posted on process.nextTick; checked before the event loop could take the thread's answer.
    await new Promise((r) => process.nextTick(r));
    expect(thread.inFlightBatches).toBe(1);
    const second = small.map((text, i) => sealer.sealAsync!(text, 'ad').then((s) => (order.push(`small ${i}`), s)));
    const sealed = await Promise.all([...first, ...second]);
    expect(thread.batches).toBe(before + 2);
    expect(order).toEqual([...big.map((_, i) => `big ${i}`), ...small.map((_, i) => `small ${i}`)]);
    sealed.forEach((s, i) => expect(ring.openString(s, 'ad')).toBe([...big, ...small][i]));
  });

  it('uses the new active key after a rotation, and keeps rings of several sealers apart', async () => {
    const ring = KeyRing.generate();
    const other = KeyRing.generate();
    const sealer = keyRingSealer(ring);
    const otherSealer = keyRingSealer(other);
    const first = await Promise.all(texts(20, 'r').map((t, i) => (i % 2 ? otherSealer : sealer).sealAsync!(t, 'ad')));
    first.forEach((s, i) => expect(ring.sealedKeyId(fromB64(s))).toBe(i % 2 ? other.activeKeyId : ring.activeKeyId));
    const oldKey = ring.activeKeyId;
    const newKey = ring.rotate();
    const second = await Promise.all(texts(20, 's').map((t) => sealer.sealAsync!(t, 'ad')));
    for (const s of second) expect(ring.sealedKeyId(fromB64(s))).toBe(newKey);
    expect(newKey).not.toBe(oldKey);
    for (const [i, s] of first.entries()) expect((i % 2 ? other : ring).openString(s, 'ad')).toBe(texts(20, 'r')[i]);
  });

  it('when the thread dies with batches in flight, they and later seals complete inline, in order', async () => {
    const ring = KeyRing.generate();
    const sealer = keyRingSealer(ring);
    const inputs = texts(200, 'd');
    const order: number[] = [];
    const pending = inputs.map((text, i) => sealer.sealAsync!(text, 'ad').then((s) => (order.push(i), s)));
    // Let the batch leave for the thread (it is posted on process.nextTick), then kill the thread
    // before the event loop can take its answer (a setImmediate here let a fast thread answer first).
    await new Promise((r) => process.nextTick(r));
    expect(thread.inFlightBatches).toBe(1);
    await thread.stop();
    const sealed = await Promise.all(pending);
    sealed.forEach((s, i) => expect(ring.openString(s, 'ad')).toBe(inputs[i]));
    expect(order).toEqual(inputs.map((_, i) => i));
    const after = await Promise.all(texts(10, 'e').map((t) => sealer.sealAsync!(t, 'ad')));
    after.forEach((s, i) => expect(ring.openString(s, 'ad')).toBe(texts(10, 'e')[i]));
  });
});
