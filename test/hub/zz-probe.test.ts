import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTestHub, type StoreKind, type TestHub } from './harness.js';
import { rejectionOf, watchInbox } from './delivery-helpers.js';

describe.each<StoreKind>(['redis', 'embedded'])('probe %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());
  it('edge ids', async () => {
    t = await startTestHub(kind);
    const bobToken = await t.addAgent('bob');
    const bob = t.client(bobToken).trpc;
    for (const sid of ['0-0', '99999999999999999999-0', '1-99999999999999999999']) {
      const e = await rejectionOf(bob.messages.ack.mutate({ acks: [{ message_id: 'x', stream_id: sid }] })).catch((e) => e);
      console.log(kind, 'ack', sid, e.data?.code, e.message);
      const h = await bob.messages.history.query({ before: sid }).then((r) => 'ok ' + r.items.length, (e) => e.data?.code + ' ' + e.message);
      console.log(kind, 'history', sid, h);
      const c = await bob.messages.ack.mutate({ cursor: sid }).then((r) => 'ok ' + JSON.stringify(r), (e) => e.data?.code + ' ' + e.message);
      console.log(kind, 'cursor', sid, c);
    }
    const w = watchInbox(bob, { lastEventId: '18446744073709551615-18446744073709551615' });
    await w.started.catch(() => {});
    await vi.waitFor(() => expect(w.errors.length + w.events.length).toBeGreaterThanOrEqual(0));
    await new Promise((r) => setTimeout(r, 200));
    console.log(kind, 'inbox max', w.errors.map((e: any) => e.data?.code + ' ' + e.message));
  });
});
