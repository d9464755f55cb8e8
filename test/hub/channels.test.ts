/**
 * Channels through the real hub: membership routes channel messages into members' inboxes
 * (durably), broadcasts go to skynet_core, and a channel's own stream is resumable.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { IncomingMessage, LinkerAgent } from '../../clients/agent.js';
import { deferred, startTestHub, type StoreKind, type TestHub } from './harness.js';
import { rejectionOf, watchChannel } from './delivery-helpers.js';

describe.each<StoreKind>(['redis', 'embedded'])('channels on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  async function recordingAgent(id: string, extra: Parameters<TestHub['agent']>[1] = {}) {
    const got: IncomingMessage[] = [];
    const agent = await t.agent(id, { ackIntervalMs: 20, ...extra, onMessage: (m) => void got.push(m) });
    return { agent, got, contents: () => got.map((m) => m.content) };
  }

  it('a channel message without to_agent reaches every member but the sender, and an offline member gets it when it connects', async () => {
    t = await startTestHub(kind);
    const carolToken = await t.addAgent('carol');
    const alice = await recordingAgent('alice', { channels: ['research'] });
    const bob = await recordingAgent('bob', { channels: ['research'] });
    const dave = await recordingAgent('dave'); // not a member
    const joined = await t.client(carolToken).trpc.channels.join.mutate({ channel: 'research' });
    expect(joined).toEqual({ channel: 'research', members: ['alice', 'bob', 'carol'] });

    const sent = await alice.agent.send({ channel: 'research', type: 'context_update', payload: { content: 'new RAG survey' } });
    expect(sent.route).toBe('channel');
    expect(sent.channel).toBe('research');
    expect(sent.delivered_to).toEqual(['bob', 'carol']);
    expect(Object.keys(sent.stream_ids).sort()).toEqual(['bob', 'carol']);

    await vi.waitFor(() => expect(bob.contents()).toEqual(['new RAG survey']));
    expect(bob.got[0]!.envelope).toMatchObject({ from_agent: 'alice', to_agent: null, channel: 'research', type: 'context_update' });

    // Nothing went into the sender's or a non-member's inbox.
    expect((await alice.agent.trpc.messages.history.query({})).items).toEqual([]);
    expect((await dave.agent.trpc.messages.history.query({})).items).toEqual([]);

    // carol was offline: it is in her inbox and delivered when she connects.
    const carol = await recordingAgent('carol');
    await vi.waitFor(() => expect(carol.contents()).toEqual(['new RAG survey']));
    expect(carol.got[0]!.replayed).toBe(true);
    expect(carol.got[0]!.streamId).toBe(sent.stream_ids.carol);
    expect(alice.got).toEqual([]);
    expect(dave.got).toEqual([]);
  });

  it('requires_ack on a channel message: the sender gets one ack from each member', async () => {
    t = await startTestHub(kind);
    const aliceToken = await t.addAgent('alice');
    await t.agent('bob', { channels: ['crew'], ackIntervalMs: 20 });
    await t.agent('carol', { channels: ['crew'], ackIntervalMs: 20 });
    const alice = t.client(aliceToken).trpc;
    const acks: { message_id: string; by: string }[] = [];
    const started = deferred<void>();
    alice.messages.acks.subscribe(undefined, {
      onStarted: () => started.resolve(),
      onData: (e) => void acks.push((e as unknown as { data: { message_id: string; by: string } }).data),
      onError: (e) => started.reject(e),
    });
    await started.promise;
    const sent = await alice.messages.send.mutate({ channel: 'crew', type: 'task', payload: { content: 'roll call', meta: { requires_ack: true } } });
    expect(sent.delivered_to).toEqual(['bob', 'carol']);
    await vi.waitFor(() => expect(acks.map((a) => a.by).sort()).toEqual(['bob', 'carol']));
    expect(acks.map((a) => a.message_id)).toEqual([sent.id, sent.id]);
  });

  it('after channels.leave an agent no longer receives the channel', async () => {
    t = await startTestHub(kind);
    const alice = await t.agent('alice', { channels: ['ops'] });
    const bob = await recordingAgent('bob', { channels: ['ops'] });
    const carol = await recordingAgent('carol', { channels: ['ops'] });
    expect(await bob.agent.trpc.channels.leave.mutate({ channel: 'ops' })).toEqual({ channel: 'ops', members: ['alice', 'carol'] });
    const sent = await alice.send({ channel: 'ops', type: 'task', payload: { content: 'deploy' } });
    expect(sent.delivered_to).toEqual(['carol']);
    await vi.waitFor(() => expect(carol.contents()).toEqual(['deploy']));
    expect((await bob.agent.trpc.messages.history.query({})).items).toEqual([]);
  });

  it('type broadcast without a channel goes to skynet_core: every registered agent but the sender', async () => {
    t = await startTestHub(kind);
    const alice = await t.agent('alice');
    const bob = await recordingAgent('bob');
    await t.addAgent('carol');
    const sent = await alice.send({ type: 'broadcast', payload: { content: 'maintenance at noon' } });
    expect(sent).toMatchObject({ route: 'channel', channel: 'skynet_core', delivered_to: ['bob', 'carol'] });
    await vi.waitFor(() => expect(bob.contents()).toEqual(['maintenance at noon']));
    expect(bob.got[0]!.envelope).toMatchObject({ type: 'broadcast', channel: 'skynet_core', to_agent: null, from_agent: 'alice' });
    const carolHistory = await t.hub.memory.messages.history('carol', undefined, 10);
    expect(carolHistory.map((m) => m.envelope.id)).toEqual([sent.id]);
  });

  it('a broadcast to 50 runtime agents reaches each of them exactly once', async () => {
    t = await startTestHub(kind);
    const n = 50;
    const ids = Array.from({ length: n }, (_, i) => `worker-${String(i).padStart(2, '0')}`);
    const seen = new Map<string, string[]>();
    const agents: LinkerAgent[] = await Promise.all(
      ids.map((id) => {
        seen.set(id, []);
        return t.agent(id, { onMessage: (m) => void seen.get(id)!.push(m.envelope.id) });
      }),
    );
    expect(agents).toHaveLength(n);
    const boss = await t.agent('boss');

    const first = await boss.send({ type: 'broadcast', payload: { content: 'start' } });
    expect(first.delivered_to).toEqual(ids);
    const second = await boss.send({ type: 'broadcast', payload: { content: 'stop' } });
    // Each inbox is delivered in order: once 'stop' is in, 'start' has had its chance to repeat.
    await vi.waitFor(
      () => {
        for (const id of ids) expect(seen.get(id)).toEqual([first.id, second.id]);
      },
      { timeout: 15_000 },
    );
    // And the hub stored exactly one copy per inbox.
    for (const id of ids.slice(0, 5)) {
      expect((await t.hub.memory.messages.history(id, undefined, 10)).map((m) => m.envelope.id)).toEqual([second.id, first.id]);
    }
    const channel = await t.hub.memory.messages.readChannel('skynet_core', undefined, 10);
    expect(channel.map((m) => m.envelope.id)).toEqual([first.id, second.id]);
  });

  it('channels.subscribe streams a channel live and resumes after a lastEventId', async () => {
    t = await startTestHub(kind);
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice', { channels: ['news'] });
    await alice.send({ channel: 'news', type: 'context_update', payload: { content: 'n1' } });

    const bob = t.client(bobToken).trpc;
    await bob.channels.join.mutate({ channel: 'news' });
    const live = watchChannel(bob, 'news');
    await live.started;
    // Without lastEventId it replays the channel's stream from its start, then goes live.
    await vi.waitFor(() => expect(live.contents()).toEqual(['n1']));
    await alice.send({ channel: 'news', type: 'context_update', payload: { content: 'n2' } });
    await vi.waitFor(() => expect(live.contents()).toEqual(['n1', 'n2']));
    expect(live.events.map((e) => e.replayed)).toEqual([true, false]);
    const resumeFrom = live.events[1]!.id;
    live.stop();

    await alice.send({ channel: 'news', type: 'context_update', payload: { content: 'n3' } });
    await alice.send({ type: 'broadcast', channel: 'news', payload: { content: 'n4' } });
    await alice.send({ type: 'broadcast', payload: { content: 'elsewhere' } }); // skynet_core, not news
    const resumed = watchChannel(bob, 'news', resumeFrom);
    await resumed.started;
    await vi.waitFor(() => expect(resumed.contents()).toEqual(['n3', 'n4']));
    await alice.send({ channel: 'news', type: 'context_update', payload: { content: 'n5' } });
    await vi.waitFor(() => expect(resumed.contents()).toEqual(['n3', 'n4', 'n5']));
    expect(resumed.events.map((e) => e.message.channel)).toEqual(['news', 'news', 'news']);
    expect(resumed.errors).toEqual([]);
  });

  it('channels.list shows every channel with its members', async () => {
    t = await startTestHub(kind);
    const alice = await t.agent('alice', { channels: ['research', 'ops'] });
    await t.agent('bob', { channels: ['research'] });
    const list = await alice.trpc.channels.list.query();
    expect(list.map((c) => [c.name, c.members])).toEqual([
      ['ops', ['alice']],
      ['research', ['alice', 'bob']],
      ['skynet_core', ['alice', 'bob']],
    ]);
    for (const c of list) expect(Date.parse(c.created_at)).not.toBeNaN();
  });

  it('a channel name that breaks the naming rules is BAD_REQUEST', async () => {
    t = await startTestHub(kind);
    const alice = await t.agent('alice');
    const err = await rejectionOf(alice.trpc.channels.join.mutate({ channel: 'bad name!' }));
    expect(err.data?.code).toBe('BAD_REQUEST');
  });
});
