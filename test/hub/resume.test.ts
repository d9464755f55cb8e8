/**
 * Resume after an abruptly killed socket: wsLink resubscribes with the last event id, the hub
 * replays what was missed, and the agent runtime drops the duplicates an overlapping replay brings.
 */
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { pino } from 'pino';
import { createHub, type Hub } from '../../transport/hub.js';
import { RedisStore } from '../../memory/redis/store.js';
import { compareStreamIds } from '../../memory/store.js';
import { completeEnvelope, OutgoingMessageSchema } from '../../protocol/envelope.js';
import type { IncomingMessage, SendResult } from '../../clients/agent.js';
import { startTestHub, type StoreKind, type TestHub } from './harness.js';
import { closedPortUrl, deliveredMessageIds, recordingWebSocket, subscriptionRequests, watchInbox } from './delivery-helpers.js';

describe.each<StoreKind>(['redis', 'sqlite', 'embedded'])('resume on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('after the socket is terminated, wsLink resubscribes with lastEventId: what was sent while offline arrives, nothing twice', async () => {
    t = await startTestHub(kind);
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice');
    const rec = recordingWebSocket();
    const bob = t.client(bobToken, { WebSocket: rec.WebSocket, retryDelayMs: () => 5 });
    const inbox = watchInbox(bob.trpc);
    await inbox.started;

    const before: SendResult[] = [];
    for (const content of ['m1', 'm2']) before.push(await alice.send({ to_agent: 'bob', type: 'task', payload: { content } }));
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['m1', 'm2']));
    const lastId = inbox.events[1]!.id;
    expect(lastId).toBe(before[1]!.stream_ids.bob);

    // Kill the socket and keep bob offline (reconnects are refused) while more messages are sent.
    rec.block(await closedPortUrl());
    const first = rec.sockets[0]!;
    first.terminate();
    await vi.waitFor(() => expect(first.readyState).toBe(first.CLOSED));
    const during: SendResult[] = [];
    for (const content of ['m3', 'm4', 'm5']) during.push(await alice.send({ to_agent: 'bob', type: 'task', payload: { content } }));
    expect(rec.sockets).toHaveLength(1);
    rec.unblock();

    await vi.waitFor(() => expect(inbox.contents()).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']));
    // What was sent while bob was offline can only have come from the store.
    expect(inbox.events.slice(2).map((e) => e.replayed)).toEqual([true, true, true]);
    expect(inbox.events.slice(2).map((e) => e.stream_id)).toEqual(during.map((d) => d.stream_ids.bob));

    // The resubscription went out on the new socket, from the last event id received.
    expect(rec.sockets).toHaveLength(2);
    const subs = subscriptionRequests(rec.sent, 'messages.inbox');
    expect(subs.map((s) => [s.socket === rec.sockets[1], s.lastEventId])).toEqual([
      [false, undefined],
      [true, lastId],
    ]);

    // And live delivery continues on the new socket.
    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'm6' } });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']));
    expect(inbox.events[5]!.replayed).toBe(false);
    expect(inbox.errors).toEqual([]);
  });

  it('the runtime handler sees every message exactly once when a killed socket resumes into an overlapping replay', async () => {
    t = await startTestHub(kind);
    await t.addAgent('bob');
    const alice = await t.agent('alice');
    // A backlog whose priority order is the reverse of stream order: while it is replayed, the
    // safe resume id stays at the start, so a resume mid-backlog replays what bob already has.
    const pad = 'x'.repeat(12_000);
    const N = 120;
    for (let n = 0; n < N; n++) {
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: { n, pad }, context: { priority: n < N / 2 ? 1 : 10 } } });
    }

    const rec = recordingWebSocket();
    const offline = await closedPortUrl();
    const seen: number[] = [];
    const errors: Error[] = [];
    let killed = false;
    const bob = await t.agent('bob', {
      WebSocket: rec.WebSocket,
      retryDelayMs: () => 5,
      ackIntervalMs: 20,
      onError: (e) => void errors.push(e),
      onMessage: (m: IncomingMessage) => {
        seen.push((m.content as { n: number }).n);
        if (!killed) {
          // Drop the connection under the first message, mid-backlog, and stay offline.
          killed = true;
          rec.block(offline);
          rec.sockets[0]!.terminate();
        }
      },
    });
    await vi.waitFor(() => expect(rec.sockets[0]!.readyState).toBe(rec.sockets[0]!.CLOSED));
    for (let n = N; n < N + 5; n++) await alice.send({ to_agent: 'bob', type: 'task', payload: { content: { n, pad: '' }, context: { priority: 5 } } });
    rec.unblock();

    await vi.waitFor(() => expect(seen).toHaveLength(N + 5), { timeout: 15_000 });
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: N + 5 }, (_, i) => i));
    expect(new Set(seen).size).toBe(N + 5);
    expect(errors).toEqual([]);
    expect(bob.state).toBe('live');

    // The wire did carry duplicates (the replay overlapped), which the runtime dropped.
    const wire = deliveredMessageIds(rec.received);
    expect(new Set(wire).size).toBe(N + 5);
    expect(wire.length).toBeGreaterThan(N + 5);
    expect(subscriptionRequests(rec.sent, 'messages.inbox').map((s) => s.socket === rec.sockets[1])).toEqual([false, true]);
  });

  it('a subscription started with an explicit lastEventId replays only what came after it', async () => {
    t = await startTestHub(kind);
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice');
    const sent: SendResult[] = [];
    for (const content of ['a', 'b', 'c', 'd']) sent.push(await alice.send({ to_agent: 'bob', type: 'task', payload: { content } }));
    const inbox = watchInbox(t.client(bobToken).trpc, { lastEventId: sent[1]!.stream_ids.bob! });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['c', 'd']));
    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'e' } });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['c', 'd', 'e']));
  });
});

/** Another hub node on the same Redis prefix and key ring as `t`'s. */
function secondNode(t: TestHub): Promise<Hub> {
  return createHub({
    store: new RedisStore({ url: inject('redisUrl'), prefix: t.prefix }),
    sealer: t.hub.memory.sealer,
    port: 0,
    logger: pino({ level: 'silent' }),
  });
}

describe('two hub nodes sharing one Redis', () => {
  let t: TestHub;
  let second: Hub | undefined;
  afterEach(async () => {
    await t?.close(); // closes the agents (on both nodes) first
    await second?.close();
    second = undefined;
  });

  it('a message sent on node A reaches an agent on node B live, and B resumes it after a killed socket', async () => {
    t = await startTestHub('redis');
    second = await secondNode(t);
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice'); // on node A
    const rec = recordingWebSocket();
    const bob = t.client(bobToken, { url: second.url, WebSocket: rec.WebSocket, retryDelayMs: () => 5 }); // on node B
    const inbox = watchInbox(bob.trpc);
    await inbox.started;

    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'across nodes' } });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['across nodes']));

    rec.block(await closedPortUrl());
    rec.sockets[0]!.terminate();
    await vi.waitFor(() => expect(rec.sockets[0]!.readyState).toBe(rec.sockets[0]!.CLOSED));
    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'while bob was away' } });
    rec.unblock();
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['across nodes', 'while bob was away']));
    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'live again' } });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['across nodes', 'while bob was away', 'live again']));
    expect(inbox.events.map((e) => e.replayed)).toEqual([expect.any(Boolean), true, false]);
  });
});

describe.each<StoreKind>(['redis', 'embedded'])('live delivery when an event never comes, on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('an entry stored without a live event (its node died before publishing) is delivered with the next one, in stream order', async () => {
    t = await startTestHub(kind);
    const bobToken = await t.addAgent('bob');
    await t.addAgent('alice');
    const bob = t.client(bobToken);
    const inbox = watchInbox(bob.trpc);
    await inbox.started;
    const alice = await t.agent('alice');
    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'first' } });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['first']));

    // Stored durably, but its live event is never published (sendMessage cut off after route()).
    const lost = completeEnvelope(OutgoingMessageSchema.parse({ to_agent: 'bob', type: 'task', payload: { content: 'never announced' } }), {
      fromAgent: 'alice',
    });
    const routed = await t.hub.memory.messages.route(await t.hub.memory.messages.prepare(lost), ['bob'], null, 'bob');
    // The next message's event says it follows that entry, not bob's cursor: the hub reads the
    // store and delivers both, in order, instead of skipping the silent one.
    const next = await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'next' } });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['first', 'never announced', 'next']));
    expect(inbox.events.slice(1).map((e) => e.stream_id)).toEqual([routed.inboxes.bob, next.stream_ids.bob]);
    expect(inbox.events.slice(1).map((e) => e.replayed)).toEqual([false, false]);
  });
});

describe('two hub nodes: live events arriving out of stream order', () => {
  let t: TestHub;
  let second: Hub | undefined;
  afterEach(async () => {
    await t?.close();
    await second?.close();
    second = undefined;
  });

  it('an entry stored earlier on another node whose live event arrives late is still delivered, before the later one', async () => {
    t = await startTestHub('redis');
    second = await secondNode(t);
    const bobToken = await t.addAgent('bob');
    const aliceToken = await t.addAgent('alice');
    const bob = t.client(bobToken, { url: second.url }); // bob on node B
    const inbox = watchInbox(bob.trpc);
    await inbox.started;
    const aliceOnB = t.client(aliceToken, { url: second.url }).trpc;
    await aliceOnB.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'warm-up' } });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['warm-up']));

    // Node A stores m1 in bob's inbox, but its live event is still in flight (what sendMessage does
    // between route() and publishRouted(), here held back by hand)...
    const nodeA = t.hub;
    const m1 = completeEnvelope(OutgoingMessageSchema.parse({ to_agent: 'bob', type: 'task', payload: { content: 'm1 via node A' } }), { fromAgent: 'alice' });
    const stored = await nodeA.memory.messages.prepare(m1);
    const routed = await nodeA.memory.messages.route(stored, ['bob'], null);
    // ...while node B routes m2, stored after m1, and delivers it live at once.
    const m2 = await aliceOnB.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'm2 via node B' } });
    expect(compareStreamIds(routed.inboxes.bob!, m2.stream_ids.bob!)).toBeLessThan(0);
    // Then node A's event arrives.
    nodeA.services.bus.publishRouted({
      node: nodeA.nodeId,
      fields: nodeA.memory.messages.storedFields(stored),
      inboxes: routed.inboxes,
      channel: null,
      channelStreamId: null,
      from: 'alice',
      to: 'bob',
      type: 'task',
      sentAt: Date.now(),
    });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['warm-up', 'm1 via node A', 'm2 via node B']));
    expect(inbox.events.slice(1).map((e) => e.stream_id)).toEqual([routed.inboxes.bob, m2.stream_ids.bob]);
  });
});

describe('hub restart on the same port and Redis', () => {
  let t: TestHub;
  let restarted: Hub | undefined;
  afterEach(async () => {
    await t?.close();
    await restarted?.close();
    restarted = undefined;
  });

  it('the runtime reconnects to the restarted hub and gets what was sent meanwhile, each message once', async () => {
    t = await startTestHub('redis');
    const aliceToken = await t.addAgent('alice');
    await t.addAgent('bob');
    const rec = recordingWebSocket();
    const seen: string[] = [];
    const bob = await t.agent('bob', {
      WebSocket: rec.WebSocket,
      retryDelayMs: () => 5,
      ackIntervalMs: 20,
      onMessage: (m) => void seen.push(String(m.content)),
    });
    const first = t.client(aliceToken).trpc;
    await first.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'before restart' } });
    await vi.waitFor(() => expect(seen).toEqual(['before restart']));

    // Stop the hub (clients are told to reconnect) and keep bob away until the new process is up.
    rec.block(await closedPortUrl());
    const { port } = t.hub;
    await t.hub.close({ keepStore: true });
    await vi.waitFor(() => expect(rec.sockets[0]!.readyState).toBe(rec.sockets[0]!.CLOSED));
    restarted = await createHub({
      store: t.hub.memory.store,
      sealer: t.hub.memory.sealer,
      port,
      logger: pino({ level: 'silent' }),
    });
    const alice = t.client(aliceToken, { url: restarted.url }).trpc;
    for (const content of ['during 1', 'during 2']) await alice.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content } });
    rec.unblock();

    await vi.waitFor(() => expect(seen).toEqual(['before restart', 'during 1', 'during 2']));
    await alice.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'after' } });
    await vi.waitFor(() => expect(seen).toEqual(['before restart', 'during 1', 'during 2', 'after']));
    expect(bob.state).toBe('live');
    expect(rec.sockets).toHaveLength(2);
  });
});
