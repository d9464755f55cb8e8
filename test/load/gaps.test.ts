/**
 * Unrecoverable gaps are said, not hidden: a subscriber whose cursor is older than what a capped
 * stream still keeps is told so (`gap: { recovered: false, ... }` on the first item after the
 * gap, like Centrifugo's `recovered: false`) and gets everything that is left, exactly once. On
 * both stores with a cap of 5. Redis trims `MAXLEN ~` by whole nodes (a node holds at most 100
 * entries or 4 KiB), so enough entries are sent for it to trim; the assertions use what the store
 * really kept. Redis records no trimmed ids (max-deleted-entry-id counts only XDEL), so there the
 * gap's `trimmed_through` is the id just below the oldest kept entry: see StreamInfo.maxDeletedId.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { keys } from '../../memory/keys.js';
import { compareStreamIds, streamIdBefore, type StreamEntry } from '../../memory/store.js';
import { InboxGapError, type InboxGap, type SendResult, type LinkerAgent } from '../../clients/agent.js';
import type { StreamGap } from '../../procedures/live.js';
import { startTestHub, type StoreKind, type TestHub } from '../hub/harness.js';
import { watchChannel, watchInbox, type InboxEvent } from '../hub/delivery-helpers.js';

const CAP = 5;
/** Enough for Redis to trim a few nodes at a cap of 5. */
const FLOOD = 150;

type GapEvent = InboxEvent & { gap?: StreamGap };
const gapOf = (e: InboxEvent | undefined) => (e as GapEvent | undefined)?.gap;

async function flood(sender: LinkerAgent, to: string, n: number, extra: { channel?: string; expired?: boolean } = {}): Promise<SendResult[]> {
  const sent: SendResult[] = [];
  for (let i = 0; i < n; i++) {
    const meta = extra.expired ? { timestamp: new Date(Date.now() - 3_600_000).toISOString(), ttl: 1 } : undefined;
    const route = extra.channel ? { channel: extra.channel } : { to_agent: to };
    sent.push(await sender.send({ ...route, type: 'task', payload: { content: { n: i }, ...(meta ? { meta } : {}) } }));
  }
  return sent;
}

describe.each<StoreKind>(['redis', 'embedded'])('unrecoverable gaps on %s', (kind) => {
  let t: TestHub | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  /** What the capped stream kept, and what it says it removed. */
  async function kept(key: string): Promise<{ entries: StreamEntry[]; maxDeletedId: string }> {
    const entries = await t!.hub.memory.store.readStream(key, { count: 10_000 });
    const info = await t!.hub.memory.store.streamInfo(key);
    expect(info.maxDeletedId, 'the store says it trimmed').toBeDefined();
    return { entries, maxDeletedId: info.maxDeletedId! };
  }

  /** The gap the hub must report for a cursor, given what was sent and what is kept. */
  function expectedGap(cursor: string | null, sentIds: string[], k: { entries: StreamEntry[]; maxDeletedId: string }): InboxGap {
    const oldest = k.entries[0]!.id;
    // Embedded: exactly the last trimmed id. Redis: the id just below the oldest kept entry.
    const trimmedThrough = kind === 'embedded' ? sentIds[sentIds.indexOf(oldest) - 1]! : streamIdBefore(oldest)!;
    expect(k.maxDeletedId).toBe(trimmedThrough);
    return { recovered: false, requested_after: cursor, oldest_available: oldest, trimmed_through: trimmedThrough };
  }

  it('a resume older than what the capped inbox keeps is told recovered:false, then gets everything left once', async () => {
    t = await startTestHub(kind, { limits: { inboxMaxLen: CAP } });
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice');
    const first = await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'seen before' } });
    const cursor = first.stream_ids.bob!;
    const sent = await flood(alice, 'bob', FLOOD);
    const k = await kept(keys.history('bob'));
    expect(k.entries.length).toBeGreaterThanOrEqual(CAP);
    expect(k.entries.length).toBeLessThan(FLOOD);
    if (kind === 'embedded') expect(k.entries).toHaveLength(CAP);
    const gap = expectedGap(cursor, [cursor, ...sent.map((s) => s.stream_ids.bob!)], k);
    expect(compareStreamIds(gap.trimmed_through, cursor)).toBeGreaterThan(0);

    const inbox = watchInbox(t.client(bobToken).trpc, { lastEventId: cursor });
    await vi.waitFor(() => expect(inbox.events).toHaveLength(k.entries.length));
    expect(gapOf(inbox.events[0])).toEqual(gap);
    expect(inbox.events.slice(1).map(gapOf)).toEqual(inbox.events.slice(1).map(() => undefined));
    // Everything left, once, in stream order (equal priorities), all from the store.
    expect(inbox.events.map((e) => e.stream_id)).toEqual(k.entries.map((e) => e.id));
    expect(inbox.events.every((e) => e.replayed)).toBe(true);

    // Live delivery goes on, with no gap.
    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'live' } });
    await vi.waitFor(() => expect(inbox.contents().at(-1)).toBe('live'));
    expect(gapOf(inbox.events.at(-1))).toBeUndefined();
    expect(inbox.errors).toEqual([]);
  });

  it('a resume within what the inbox still keeps is not a gap', async () => {
    t = await startTestHub(kind, { limits: { inboxMaxLen: CAP } });
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice');
    await flood(alice, 'bob', FLOOD);
    const k = await kept(keys.history('bob'));
    const inbox = watchInbox(t.client(bobToken).trpc, { lastEventId: k.entries[1]!.id });
    await vi.waitFor(() => expect(inbox.events).toHaveLength(k.entries.length - 2));
    expect(inbox.events.map((e) => e.stream_id)).toEqual(k.entries.slice(2).map((e) => e.id));
    expect(inbox.events.map(gapOf)).toEqual(inbox.events.map(() => undefined));
  });

  it('an inbox that overflowed before its agent ever read it says so to a subscriber without a cursor', async () => {
    t = await startTestHub(kind, { limits: { inboxMaxLen: CAP } });
    const daveToken = await t.addAgent('dave');
    const alice = await t.agent('alice');
    const sent = await flood(alice, 'dave', FLOOD);
    const k = await kept(keys.history('dave'));
    const inbox = watchInbox(t.client(daveToken).trpc);
    await vi.waitFor(() => expect(inbox.events).toHaveLength(k.entries.length));
    expect(gapOf(inbox.events[0])).toEqual(
      expectedGap(
        null,
        sent.map((s) => s.stream_ids.dave!),
        k,
      ),
    );
  });

  it('the runtime reports the gap to onGap before the message it came with (and to onError without onGap)', async () => {
    t = await startTestHub(kind, { limits: { inboxMaxLen: CAP } });
    const alice = await t.agent('alice');
    const order: string[] = [];
    const gaps: InboxGap[] = [];
    const handlers = {
      ackIntervalMs: 20,
      onGap: (g: InboxGap) => {
        gaps.push(g);
        order.push('gap');
      },
      onMessage: (m: { content: unknown }) => void order.push(JSON.stringify(m.content)),
    };
    const bob = await t.agent('bob', handlers);
    const first = await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'first' } });
    // Bob handled it and the hub stored his cursor; then he goes away.
    await vi.waitFor(async () => expect(await t!.hub.memory.messages.cursor('bob')).toBe(first.stream_ids.bob));
    await bob.close();
    const sent = await flood(alice, 'bob', FLOOD);
    const k = await kept(keys.history('bob'));
    order.length = 0;

    // Back without a lastEventId: the hub resumes from the stored cursor, which is too old.
    await t.agent('bob', handlers);
    await vi.waitFor(() => expect(order).toHaveLength(1 + k.entries.length));
    expect(order[0]).toBe('gap');
    expect(gaps).toEqual([expectedGap(first.stream_ids.bob!, [first.stream_ids.bob!, ...sent.map((s) => s.stream_ids.bob!)], k)]);

    // Without onGap the runtime says it through onError, as an InboxGapError carrying the gap.
    await t.addAgent('carol');
    await flood(alice, 'carol', FLOOD);
    const errors: Error[] = [];
    const seen: unknown[] = [];
    await t.agent('carol', { onError: (e) => void errors.push(e), onMessage: (m) => void seen.push(m.content) });
    const carolKept = await kept(keys.history('carol'));
    await vi.waitFor(() => expect(seen).toHaveLength(carolKept.entries.length));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(InboxGapError);
    expect((errors[0] as InboxGapError).gap).toMatchObject({ recovered: false, requested_after: null, oldest_available: carolKept.entries[0]!.id });
    expect(errors[0]!.message).toMatch(/^inbox gap: messages after the start up to \d+-\d+ were trimmed/);
  });

  it('a channel subscriber resuming from before what the channel keeps is told so; a fresh one is not', async () => {
    t = await startTestHub(kind, { limits: { channelMaxLen: CAP } });
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice');
    const bob = t.client(bobToken).trpc;
    await bob.channels.join.mutate({ channel: 'ops' });
    const first = await alice.send({ channel: 'ops', type: 'broadcast', payload: { content: 'first' } });
    const cursor = (await t.hub.memory.store.readStream(keys.channel('ops'), { count: 1 }))[0]!.id;
    expect(first.channel).toBe('ops');
    await flood(alice, '', FLOOD, { channel: 'ops' });
    const k = await kept(keys.channel('ops'));

    const resumed = watchChannel(bob, 'ops', cursor);
    await vi.waitFor(() => expect(resumed.events).toHaveLength(k.entries.length));
    expect(gapOf(resumed.events[0])).toMatchObject({
      recovered: false,
      requested_after: cursor,
      oldest_available: k.entries[0]!.id,
      trimmed_through: k.maxDeletedId,
    });
    expect(resumed.events.slice(1).map(gapOf)).toEqual(resumed.events.slice(1).map(() => undefined));

    // Without lastEventId a subscriber asks for what the channel keeps: nothing is missing.
    const fresh = watchChannel(bob, 'ops');
    await vi.waitFor(() => expect(fresh.events).toHaveLength(k.entries.length));
    expect(fresh.events.map(gapOf)).toEqual(fresh.events.map(() => undefined));
  });

  it('the acks stream resumed from before what it keeps is told so; resumed within it, or fresh, it is not', async () => {
    t = await startTestHub(kind, { limits: { acksMaxLen: CAP } });
    const aliceToken = await t.addAgent('alice');
    const bobToken = await t.addAgent('bob');
    const alice = t.client(aliceToken).trpc;
    const bob = t.client(bobToken).trpc;
    const sent = [];
    for (let i = 0; i < FLOOD; i++)
      sent.push(await alice.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: { n: i }, meta: { requires_ack: true } } }));
    // Bob acks every one (what his runtime does for requires_ack messages): alice's ack stream overflows.
    const acked = await bob.messages.ack.mutate({ acks: sent.map((r) => ({ message_id: r.id, stream_id: r.stream_ids.bob! })) });
    expect(acked.acked).toHaveLength(FLOOD);
    const k = await kept(keys.acks('alice'));
    const cursor = streamIdBefore(k.entries[0]!.id)!;
    const veryOld = '1-0';
    const acks: { id: string; data: { message_id: string; gap?: StreamGap } }[] = [];
    const sub = alice.messages.acks.subscribe({ lastEventId: veryOld }, { onData: (e) => void acks.push(e as (typeof acks)[number]) });
    await vi.waitFor(() => expect(acks).toHaveLength(k.entries.length));
    sub.unsubscribe();
    expect(acks[0]!.data.gap).toMatchObject({
      recovered: false,
      requested_after: veryOld,
      oldest_available: k.entries[0]!.id,
      trimmed_through: k.maxDeletedId,
    });
    expect(acks.slice(1).map((a) => a.data.gap)).toEqual(acks.slice(1).map(() => undefined));
    expect(acks.map((a) => a.data.message_id)).toEqual(k.entries.map((e) => e.fields.mid));
    // Resumed within what is kept, or fresh: no gap.
    const within: typeof acks = [];
    const sub2 = alice.messages.acks.subscribe({ lastEventId: cursor }, { onData: (e) => void within.push(e as (typeof acks)[number]) });
    await vi.waitFor(() => expect(within).toHaveLength(k.entries.length));
    sub2.unsubscribe();
    expect(within.map((a) => a.data.gap)).toEqual(within.map(() => undefined));
    const fresh: typeof acks = [];
    const sub3 = alice.messages.acks.subscribe(undefined, { onData: (e) => void fresh.push(e as (typeof acks)[number]) });
    await vi.waitFor(() => expect(fresh).toHaveLength(k.entries.length));
    sub3.unsubscribe();
    expect(fresh.map((a) => a.data.gap)).toEqual(fresh.map(() => undefined));
  });

  it('with nothing left to deliver after the gap (all expired), the gap rides on the next message', async () => {
    t = await startTestHub(kind, { limits: { inboxMaxLen: CAP } });
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice');
    const first = await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'first' } });
    const cursor = first.stream_ids.bob!;
    await flood(alice, 'bob', FLOOD, { expired: true });
    const k = await kept(keys.history('bob'));
    const inbox = watchInbox(t.client(bobToken).trpc, { lastEventId: cursor });
    await inbox.started;
    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'fresh' } });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['fresh']));
    const gap = gapOf(inbox.events[0]);
    expect(gap).toMatchObject({ recovered: false, requested_after: cursor });
    expect(compareStreamIds(gap!.trimmed_through, k.maxDeletedId)).toBeGreaterThanOrEqual(0);
  });
});
