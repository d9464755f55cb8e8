/**
 * Resume after an abruptly killed socket: wsLink resubscribes with the last event id, the hub
 * replays what was missed, and the agent runtime drops the duplicates an overlapping replay brings.
 */
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { pino } from 'pino';
import { createHub, type Hub } from '../../transport/hub.js';
import { RedisStore } from '../../memory/redis/store.js';
import type { IncomingMessage, SendResult } from '../../clients/agent.js';
import { startTestHub, type StoreKind, type TestHub } from './harness.js';
import { closedPortUrl, deliveredMessageIds, recordingWebSocket, subscriptionRequests, watchInbox } from './delivery-helpers.js';

describe.each<StoreKind>(['redis', 'embedded'])('resume on %s', (kind) => {
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
    second = await createHub({
      store: new RedisStore({ url: inject('redisUrl'), prefix: t.prefix }),
      sealer: t.hub.memory.sealer,
      port: 0,
      logger: pino({ level: 'silent' }),
    });
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
