/**
 * Delivery semantics through the real hub, typed client and agent runtime: offline inbox and the
 * server-side cursor, request/reply, acks, ttl, priority, history paging, unknown recipients.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { IncomingMessage, SendResult } from '../../clients/agent.js';
import type { JsonValue } from '../../protocol/json.js';
import { deferred, startTestHub, type StoreKind, type TestHub } from './harness.js';
import { compareStreamIds } from '../../memory/store.js';
import { rejectionOf, watchInbox } from './delivery-helpers.js';

describe.each<StoreKind>(['redis', 'sqlite', 'embedded'])('delivery on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  /** A runtime agent that records what its handler sees. */
  async function recordingAgent(id: string, extra: Parameters<TestHub['agent']>[1] = {}) {
    const got: IncomingMessage[] = [];
    const agent = await t.agent(id, { ackIntervalMs: 20, ...extra, onMessage: (m) => void got.push(m) });
    return { agent, got, contents: () => got.map((m) => m.content) };
  }

  describe('offline inbox', () => {
    it('delivers what was sent while the agent was offline when it connects, and never replays it after the agent acked', async () => {
      t = await startTestHub(kind);
      await t.addAgent('alice');
      await t.addAgent('bob');
      const alice = await t.agent('alice');
      const sent: SendResult[] = [];
      for (const content of ['one', 'two', 'three']) sent.push(await alice.send({ to_agent: 'bob', type: 'task', payload: { content } }));
      expect(sent.map((s) => s.delivered_to)).toEqual([['bob'], ['bob'], ['bob']]);

      const bob = await recordingAgent('bob');
      await vi.waitFor(() => expect(bob.contents()).toEqual(['one', 'two', 'three']));
      expect(bob.got.map((m) => m.replayed)).toEqual([true, true, true]);
      expect(bob.got.map((m) => m.streamId)).toEqual(sent.map((s) => s.stream_ids.bob));
      // The runtime moves the server-side cursor through messages.ack.
      await vi.waitFor(async () => expect(await t.hub.memory.messages.cursor('bob')).toBe(sent[2]!.stream_ids.bob));
      await bob.agent.close();

      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'four' } });
      const bobAgain = await recordingAgent('bob');
      // Stream order: any old message replayed again would arrive before 'four'.
      await vi.waitFor(() => expect(bobAgain.contents()).toEqual(['four']));
      expect(bobAgain.got[0]!.replayed).toBe(true);
    });

    it('a fresh subscription without lastEventId starts after the acked cursor, which only moves forward', async () => {
      t = await startTestHub(kind);
      await t.addAgent('alice');
      const bobToken = await t.addAgent('bob');
      const alice = await t.agent('alice');
      const sent: SendResult[] = [];
      for (const content of ['a', 'b', 'c']) sent.push(await alice.send({ to_agent: 'bob', type: 'task', payload: { content } }));
      const bob = t.client(bobToken).trpc;

      expect(await bob.messages.ack.mutate({ cursor: sent[1]!.stream_ids.bob })).toEqual({ acked: [], cursor: sent[1]!.stream_ids.bob });
      // An older cursor does not move it back.
      expect(await bob.messages.ack.mutate({ cursor: sent[0]!.stream_ids.bob })).toEqual({ acked: [], cursor: sent[1]!.stream_ids.bob });

      const inbox = watchInbox(bob);
      await inbox.started;
      await vi.waitFor(() => expect(inbox.contents()).toEqual(['c']));
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'd' } });
      await vi.waitFor(() => expect(inbox.contents()).toEqual(['c', 'd']));
      expect(inbox.events.map((e) => e.replayed)).toEqual([true, false]);
      expect(inbox.events.map((e) => e.stream_id)).toEqual([sent[2]!.stream_ids.bob, inbox.events[1]!.id]);
    });
  });

  describe('live queue overflow', () => {
    it('a burst larger than the live queue falls back to the store: everything arrives once, in stream order', async () => {
      t = await startTestHub(kind, { maxQueuedMessages: 1 });
      const alice = await t.agent('alice');
      const bob = await recordingAgent('bob');
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'warm-up' } });
      await vi.waitFor(() => expect(bob.contents()).toEqual(['warm-up']));

      const burst = await Promise.all(Array.from({ length: 60 }, (_, i) => alice.send({ to_agent: 'bob', type: 'task', payload: { content: `b${i}` } })));
      const inStreamOrder = [...burst].sort((a, b) => compareStreamIds(a.stream_ids.bob!, b.stream_ids.bob!)).map((r) => r.id);
      await vi.waitFor(() => expect(bob.got.slice(1).map((m) => m.envelope.id)).toEqual(inStreamOrder));
      // Some of the burst overflowed the one-entry queue and was re-read from the store.
      expect(bob.got.slice(1).some((m) => m.replayed)).toBe(true);
    });
  });

  describe('request / reply', () => {
    it('concurrent requests each resolve with the reply whose parent_message_id is their own', async () => {
      t = await startTestHub(kind);
      const tasks: string[] = [];
      await t.agent('gemini', {
        onTask: async (m) => {
          tasks.push(m.envelope.id);
          return { echo: m.content };
        },
      });
      const claude = await t.agent('claude');
      const [r1, r2] = await Promise.all([claude.request('gemini', 'first', { timeoutMs: 10_000 }), claude.request('gemini', 'second', { timeoutMs: 10_000 })]);
      expect(r1.content).toEqual({ echo: 'first' });
      expect(r2.content).toEqual({ echo: 'second' });
      expect([r1, r2].map((r) => r.envelope.type)).toEqual(['reply', 'reply']);
      expect(tasks).toHaveLength(2);
      expect([r1.envelope.payload.context.parent_message_id, r2.envelope.payload.context.parent_message_id].sort()).toEqual([...tasks].sort());
      expect(r1.envelope.payload.context.parent_message_id).not.toBe(r2.envelope.payload.context.parent_message_id);
    });

    it('a request to an offline agent resolves once that agent connects and answers its backlog', async () => {
      t = await startTestHub(kind);
      await t.addAgent('gemini');
      const claude = await t.agent('claude');
      const pending = claude.request('gemini', 'when you are back', { timeoutMs: 10_000 });
      await vi.waitFor(async () => expect((await t.hub.memory.messages.inboxInfo('gemini')).length).toBe(1));
      await t.agent('gemini', { onTask: (m) => `back: ${String(m.content)}` });
      const reply = await pending;
      expect(reply.content).toBe('back: when you are back');
      expect(reply.envelope.from_agent).toBe('gemini');
    });

    it('a request nobody answers rejects after its timeout with a message naming the recipient', async () => {
      t = await startTestHub(kind);
      const bob = await recordingAgent('bob'); // connected, but has no onTask: nobody replies
      const claude = await t.agent('claude');
      await expect(claude.request('bob', 'anyone there?', { timeoutMs: 300 })).rejects.toThrow(/^request [0-9a-f-]{36} to bob: no reply within 300 ms$/);
      // The task itself was delivered; only the reply is missing.
      expect(bob.contents()).toEqual(['anyone there?']);
    });

    it('a request to an agent that is not registered fails at once with NOT_FOUND', async () => {
      t = await startTestHub(kind);
      const claude = await t.agent('claude');
      const err = await rejectionOf(claude.request('ghost', 'hello', { timeoutMs: 10_000 }));
      expect(err.data?.code).toBe('NOT_FOUND');
    });

    it('a failing onTask handler answers with a reply whose content has failed: true', async () => {
      t = await startTestHub(kind);
      const received = deferred<string>();
      await t.agent('gemini', {
        onTask: (m) => {
          received.resolve(m.envelope.id);
          throw new Error('search index unavailable');
        },
      });
      const claude = await t.agent('claude');
      const reply = await claude.request('gemini', 'search RAG', { timeoutMs: 10_000, sessionId: 'sess_fail' });
      expect(reply.envelope.type).toBe('reply');
      expect(reply.envelope.from_agent).toBe('gemini');
      expect(reply.content).toEqual({ failed: true, error: 'search index unavailable' });
      expect(reply.envelope.payload.context.parent_message_id).toBe(await received.promise);
      expect(reply.envelope.payload.context.session_id).toBe('sess_fail');
    });
  });

  describe('acks', () => {
    it('the recipient runtime acks a requires_ack message and the sender sees it on messages.acks', async () => {
      t = await startTestHub(kind);
      const aliceToken = await t.addAgent('alice');
      const bob = await recordingAgent('bob');
      const alice = t.client(aliceToken).trpc;
      const acks: { id: string; data: { message_id: string; by: string; at: string } }[] = [];
      const started = deferred<void>();
      alice.messages.acks.subscribe(undefined, {
        onStarted: () => started.resolve(),
        onData: (e) => void acks.push(e as unknown as (typeof acks)[number]),
        onError: (e) => started.reject(e),
      });
      await started.promise;

      const plain = await alice.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'no ack needed' } });
      const needsAck = await alice.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'ack me', meta: { requires_ack: true } } });
      await vi.waitFor(() => expect(acks.map((a) => a.data.message_id)).toEqual([needsAck.id]));
      expect(acks[0]!.data.by).toBe('bob');
      expect(Date.parse(acks[0]!.data.at)).not.toBeNaN();
      expect(bob.contents()).toEqual(['no ack needed', 'ack me']);
      expect(plain.id).not.toBe(needsAck.id);

      // The acks stream is durable: a new subscription replays it.
      const replayed: string[] = [];
      const again = deferred<void>();
      alice.messages.acks.subscribe(undefined, {
        onData: (e) => {
          replayed.push((e as unknown as (typeof acks)[number]).data.message_id);
          again.resolve();
        },
        onError: (e) => again.reject(e),
      });
      await again.promise;
      expect(replayed).toEqual([needsAck.id]);
    });

    it('acking a stream id that is not in your inbox is NOT_FOUND; a mismatched message id is BAD_REQUEST', async () => {
      t = await startTestHub(kind);
      const aliceToken = await t.addAgent('alice');
      const bobToken = await t.addAgent('bob');
      await t.addAgent('carol');
      const alice = t.client(aliceToken).trpc;
      const toCarol = await alice.messages.send.mutate({ to_agent: 'carol', type: 'task', payload: { content: 'for carol', meta: { requires_ack: true } } });
      const bob = t.client(bobToken).trpc;

      const notMine = await rejectionOf(bob.messages.ack.mutate({ acks: [{ message_id: toCarol.id, stream_id: toCarol.stream_ids.carol! }] }));
      expect(notMine.data?.code).toBe('NOT_FOUND');
      expect(notMine.message).toBe(`no message ${toCarol.id} at ${toCarol.stream_ids.carol} in the inbox of bob`);

      const toBob = await alice.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'for bob', meta: { requires_ack: true } } });
      const mismatch = await rejectionOf(bob.messages.ack.mutate({ acks: [{ message_id: toCarol.id, stream_id: toBob.stream_ids.bob! }] }));
      expect(mismatch.data?.code).toBe('BAD_REQUEST');

      expect(await bob.messages.ack.mutate({ acks: [{ message_id: toBob.id, stream_id: toBob.stream_ids.bob! }] })).toEqual({
        acked: [toBob.id],
        cursor: null,
      });
      expect((await t.hub.memory.messages.readAcks('alice', undefined, 10)).map((a) => a.ack)).toEqual([
        { message_id: toBob.id, by: 'bob', at: expect.any(String) },
      ]);
    });
  });

  describe('stream ids at the edges', () => {
    const MAX = '18446744073709551615-18446744073709551615';

    it('acking 0-0 is NOT_FOUND and history before 0-0 is empty (not an internal error)', async () => {
      t = await startTestHub(kind);
      const alice = await t.agent('alice');
      const bobToken = await t.addAgent('bob');
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'first' } });
      const bob = t.client(bobToken).trpc;
      const err = await rejectionOf(bob.messages.ack.mutate({ acks: [{ message_id: 'm', stream_id: '0-0' }] }));
      expect(err.data?.code).toBe('NOT_FOUND');
      expect(await bob.messages.history.query({ before: '0-0' })).toEqual({ items: [], next_before: null });
      expect(await t.hub.memory.messages.readInbox('bob', MAX, 10)).toEqual([]);
    });

    it('stream ids beyond 64 bits are BAD_REQUEST for ack, cursor, history and lastEventId', async () => {
      t = await startTestHub(kind);
      const bobToken = await t.addAgent('bob');
      const bob = t.client(bobToken).trpc;
      const tooBig = '99999999999999999999-0';
      const codes = await Promise.all([
        rejectionOf(bob.messages.ack.mutate({ acks: [{ message_id: 'm', stream_id: tooBig }] })),
        rejectionOf(bob.messages.ack.mutate({ cursor: tooBig })),
        rejectionOf(bob.messages.history.query({ before: '1-99999999999999999999' })),
      ]).then((errs) => errs.map((e) => e.data?.code));
      expect(codes).toEqual(['BAD_REQUEST', 'BAD_REQUEST', 'BAD_REQUEST']);
      const inbox = watchInbox(bob, { lastEventId: tooBig });
      await expect(inbox.started).rejects.toMatchObject({ data: { code: 'BAD_REQUEST' } });
      // The refused cursor was not stored.
      expect(await t.hub.memory.messages.cursor('bob')).toBeNull();
    });
  });

  describe('ttl', () => {
    const tenSecondsAgo = () => new Date(Date.now() - 10_000).toISOString();

    it('an expired message is not delivered live; a fresh one sent after it is', async () => {
      t = await startTestHub(kind);
      const alice = await t.agent('alice');
      const bob = await recordingAgent('bob');
      // Once a first message arrived, the subscription is past its replay and streams live.
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'warm-up' } });
      await vi.waitFor(() => expect(bob.contents()).toEqual(['warm-up']));

      const expired = await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'stale', meta: { ttl: 1, timestamp: tenSecondsAgo() } } });
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'fresh', meta: { ttl: 60 } } });
      await vi.waitFor(() => expect(bob.contents()).toEqual(['warm-up', 'fresh']));
      expect(bob.got[1]!.replayed).toBe(false);
      // It was routed and stored, just not delivered.
      expect(expired.delivered_to).toEqual(['bob']);
      const history = await bob.agent.trpc.messages.history.query({});
      expect(history.items.map((i) => i.message.payload.content)).toEqual(['fresh', 'stale', 'warm-up']);
    });

    it('an expired message is not replayed to an agent that connects later; a fresh one is', async () => {
      t = await startTestHub(kind);
      const alice = await t.agent('alice');
      await t.addAgent('bob');
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'stale', meta: { ttl: 1, timestamp: tenSecondsAgo() } } });
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'fresh', meta: { ttl: 3600 } } });
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'stale too', meta: { ttl: 5, timestamp: tenSecondsAgo() } } });
      const bob = await recordingAgent('bob');
      // Backlog order is stream order for equal priorities, so a stale message would show up around 'fresh'.
      await bob.agent.send({ to_agent: 'bob', type: 'task', payload: { content: 'marker' } });
      await vi.waitFor(() => expect(bob.contents()).toEqual(['fresh', 'marker']));
    });
  });

  describe('priority', () => {
    it('a backlog is delivered highest priority first on connect; live messages after it in send order', async () => {
      t = await startTestHub(kind);
      const alice = await t.agent('alice');
      await t.addAgent('bob');
      for (const priority of [1, 9, 5, 10, 3]) {
        await alice.send({ to_agent: 'bob', type: 'task', payload: { content: `p${priority}`, context: { priority } } });
      }
      const bob = await recordingAgent('bob');
      await vi.waitFor(() => expect(bob.contents()).toEqual(['p10', 'p9', 'p5', 'p3', 'p1']));
      expect(bob.got.map((m) => m.envelope.payload.context.priority)).toEqual([10, 9, 5, 3, 1]);

      for (const priority of [2, 10, 1, 7]) {
        await alice.send({ to_agent: 'bob', type: 'task', payload: { content: `live${priority}`, context: { priority } } });
      }
      await vi.waitFor(() => expect(bob.contents().slice(5)).toEqual(['live2', 'live10', 'live1', 'live7']));
      expect(bob.got.slice(5).map((m) => m.replayed)).toEqual([false, false, false, false]);
    });

    it('after a reordered backlog the acked cursor covers the whole backlog: reconnecting replays nothing', async () => {
      t = await startTestHub(kind);
      const alice = await t.agent('alice');
      await t.addAgent('bob');
      for (const priority of [1, 10, 2]) await alice.send({ to_agent: 'bob', type: 'task', payload: { content: `p${priority}`, context: { priority } } });
      const bob = await recordingAgent('bob');
      await vi.waitFor(() => expect(bob.contents()).toEqual(['p10', 'p2', 'p1']));
      await bob.agent.close();
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'next', context: { priority: 1 } } });
      const bobAgain = await recordingAgent('bob');
      await vi.waitFor(() => expect(bobAgain.contents()).toEqual(['next']));
    });
  });

  describe('history', () => {
    it('pages newest first with next_before, and refuses another agent’s history without admin', async () => {
      t = await startTestHub(kind);
      const alice = await t.agent('alice');
      const bobToken = await t.addAgent('bob');
      const rootToken = await t.addAgent('root', { scopes: ['admin'] });
      for (let i = 1; i <= 5; i++) await alice.send({ to_agent: 'bob', type: 'task', payload: { content: `m${i}` } });
      const bob = t.client(bobToken).trpc;

      const contents = (page: { items: { message: { payload: { content: JsonValue } } }[] }) => page.items.map((i) => i.message.payload.content);
      const p1 = await bob.messages.history.query({ limit: 2 });
      expect(contents(p1)).toEqual(['m5', 'm4']);
      expect(p1.next_before).toBe(p1.items[1]!.stream_id);
      const p2 = await bob.messages.history.query({ limit: 2, before: p1.next_before! });
      expect(contents(p2)).toEqual(['m3', 'm2']);
      const p3 = await bob.messages.history.query({ limit: 2, before: p2.next_before! });
      expect(contents(p3)).toEqual(['m1']);
      expect(p3.next_before).toBeNull();
      expect(p3.items[0]!.message.from_agent).toBe('alice');
      expect(p3.items[0]!.message.to_agent).toBe('bob');

      const forbidden = await rejectionOf(alice.trpc.messages.history.query({ agent_id: 'bob' }));
      expect(forbidden.data?.code).toBe('FORBIDDEN');
      expect(forbidden.message).toBe('reading the history of bob needs the admin scope');

      const asAdmin = await t.client(rootToken).trpc.messages.history.query({ agent_id: 'bob', limit: 10 });
      expect(contents(asAdmin)).toEqual(['m5', 'm4', 'm3', 'm2', 'm1']);
      expect(asAdmin.next_before).toBeNull();
      // Alice's own history (her inbox) is empty: sent messages are not in it.
      expect((await alice.trpc.messages.history.query({})).items).toEqual([]);
    });
  });

  describe('unknown recipient', () => {
    it('sending to an agent nobody registered is NOT_FOUND and names the agent', async () => {
      t = await startTestHub(kind);
      const aliceToken = await t.addAgent('alice');
      const alice = t.client(aliceToken).trpc;
      const err = await rejectionOf(alice.messages.send.mutate({ to_agent: 'nobody', type: 'task', payload: { content: 'hi' } }));
      expect(err.data?.code).toBe('NOT_FOUND');
      expect(err.message).toContain('unknown agent nobody');
      expect((await t.hub.memory.messages.inboxInfo('nobody')).length).toBe(0);
    });
  });
});
