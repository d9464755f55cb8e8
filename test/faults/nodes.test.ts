/**
 * Several hub processes (`serve`) on one Redis, prefix and data directory behave as one hub:
 * direct, channel and broadcast delivery, channel streams, presence, `agents.list` and the monitor
 * work across nodes, and an agent that moves from node A to node B resumes its inbox without loss.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IncomingMessage, LinkerAgent, SendResult } from '../../clients/agent.js';
import type { MonitorEvent } from '../../procedures/monitor.js';
import { watchChannel, watchInbox } from '../hub/delivery-helpers.js';
import { assertBuilt, Cluster, inParallel } from './cluster.js';

describe('several hub processes sharing one Redis', () => {
  const c = new Cluster();
  let a: string;
  let b: string;
  beforeAll(async () => {
    assertBuilt();
    await c.startRedis();
    // The first node creates the key file and the admin credential; the others read them.
    a = (await c.startNode('A')).url;
    b = (await c.startNode('B')).url;
  }, 60_000);
  afterAll(async () => c.dispose());

  it('direct, channel and broadcast messages cross nodes; channel streams, agents.list and the monitor are cluster-wide', async () => {
    const tokens = Object.fromEntries(await Promise.all(['alice', 'bob', 'carol', 'dave'].map(async (id) => [id, await c.addAgent(id)] as const)));
    const got: Record<string, string[]> = { alice: [], bob: [], carol: [], dave: [] };
    const on = (id: string) => (m: IncomingMessage) => void got[id]!.push(String(m.content));
    // The monitor on B, an operator watching the whole hub.
    const monitorToken = await c.addAgent('ops', { scopes: ['monitor'] });
    const seenByMonitor: MonitorEvent[] = [];
    const monitorSub = c.client(monitorToken, b).trpc.monitor.stream.subscribe(undefined, {
      onData: (e) => void seenByMonitor.push(e as MonitorEvent),
    });
    const alice = await c.agent('alice', tokens.alice!, a, { onMessage: on('alice') });
    const dave = await c.agent('dave', tokens.dave!, a, { onMessage: on('dave'), channels: ['ops_room'] });
    const bob = await c.agent('bob', tokens.bob!, b, { onMessage: on('bob') });
    await c.agent('carol', tokens.carol!, b, { onMessage: on('carol'), channels: ['ops_room'] });
    // A raw channel stream on A.
    const room = watchChannel(c.client(tokens.dave!, a).trpc, 'ops_room');
    await room.started;

    // Presence is cluster-wide: asked on A, agents connected to B are online, and the other way round.
    const asker = { [a]: c.client(tokens.alice!, a).trpc, [b]: c.client(tokens.alice!, b).trpc };
    const online = async (url: string) => (await asker[url]!.agents.list.query()).filter((s) => s.online).map((s) => s.agent_id);
    await vi.waitFor(async () => expect(await online(a)).toEqual(['alice', 'bob', 'carol', 'dave']));
    await vi.waitFor(async () => expect(await online(b)).toEqual(['alice', 'bob', 'carol', 'dave']));

    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'A->B direct' } });
    await bob.send({ to_agent: 'alice', type: 'reply', payload: { content: 'B->A direct' } });
    await bob.send({ channel: 'ops_room', type: 'task', payload: { content: 'B->room' } });
    await dave.send({ type: 'broadcast', payload: { content: 'A->all' } });

    await vi.waitFor(() => {
      expect(got.bob).toEqual(['A->B direct', 'A->all']);
      expect(got.alice).toEqual(['B->A direct', 'A->all']);
      expect(got.carol).toEqual(['B->room', 'A->all']);
      expect(got.dave).toEqual(['B->room']);
      expect(room.contents()).toEqual(['B->room']);
    });
    // The monitor on B saw every message, those routed by A included, with the node that routed them.
    await vi.waitFor(() =>
      expect(seenByMonitor.map((e) => e.message.payload.content).sort()).toEqual(['A->B direct', 'A->all', 'B->A direct', 'B->room'].sort()),
    );
    const routedBy = new Map(seenByMonitor.map((e) => [e.message.payload.content, e.node]));
    expect(routedBy.get('A->B direct')).toBe(routedBy.get('A->all'));
    expect(routedBy.get('B->A direct')).toBe(routedBy.get('B->room'));
    expect(routedBy.get('A->B direct')).not.toBe(routedBy.get('B->A direct'));
    expect(seenByMonitor.find((e) => e.message.payload.content === 'A->all')!.delivered_to.sort()).toEqual(['alice', 'bob', 'carol', 'ops'].sort());

    // An agent leaving B is offline when asked on A.
    await bob.close();
    await vi.waitFor(async () => expect(await online(a)).toEqual(['alice', 'carol', 'dave']));
    monitorSub.unsubscribe();
  });

  it('an agent runtime closed on node A and started on node B resumes its inbox from the stored cursor: nothing lost, nothing twice', async () => {
    const senderToken = await c.addAgent('sender1');
    const movingToken = await c.addAgent('mover');
    const seen: { n: number; node: 'A' | 'B' }[] = [];
    let onA: LinkerAgent | null = null;
    let half!: () => void;
    const halfway = new Promise<void>((r) => (half = r));
    const N = 400;
    onA = await c.agent('mover', movingToken, a, {
      onMessage: (m) => {
        seen.push({ n: (m.content as { n: number }).n, node: 'A' });
        if (seen.length === N / 4) half();
      },
    });
    const sender = c.client(senderToken, b).trpc;
    const sent: SendResult[] = [];
    // Messages keep coming (8 in flight) while the agent moves.
    const sending = inParallel(
      Array.from({ length: N }, (_, n) => n),
      8,
      async (n) => void sent.push(await sender.messages.send.mutate({ to_agent: 'mover', type: 'task', payload: { content: { n } } })),
    );
    await halfway;
    await onA.close();
    const handledOnA = seen.length;
    await c.agent('mover', movingToken, b, { onMessage: (m) => void seen.push({ n: (m.content as { n: number }).n, node: 'B' }) });
    await sending;
    await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(N), { timeout: 15_000 });
    const ns = seen.map((s) => s.n);
    expect(new Set(ns).size).toBe(N);
    expect(ns).toHaveLength(N); // each once, across both runtimes
    expect(seen.slice(handledOnA).every((s) => s.node === 'B')).toBe(true);
    expect(seen.filter((s) => s.node === 'B').length).toBeGreaterThan(0);
  });

  it('a raw subscription resumed on node B with lastEventId gets exactly what came after it', async () => {
    const senderToken = await c.addAgent('sender2');
    const erinToken = await c.addAgent('erin');
    const sender = c.client(senderToken, a).trpc;
    const send = (content: string) => sender.messages.send.mutate({ to_agent: 'erin', type: 'task', payload: { content } });
    const onA = watchInbox(c.client(erinToken, a).trpc);
    await onA.started;
    for (const m of ['e1', 'e2', 'e3']) await send(m);
    await vi.waitFor(() => expect(onA.contents()).toEqual(['e1', 'e2', 'e3']));
    onA.stop();
    const lastEventId = onA.events.at(-1)!.id;
    for (const m of ['e4', 'e5']) await send(m);
    const onB = watchInbox(c.client(erinToken, b).trpc, { lastEventId });
    await vi.waitFor(() => expect(onB.contents()).toEqual(['e4', 'e5']));
    await send('e6');
    await vi.waitFor(() => expect(onB.contents()).toEqual(['e4', 'e5', 'e6']));
    expect(onB.errors).toEqual([]);
  });

  it('the agents of a node killed with kill -9 are offline within seconds (its heartbeat runs out), not after the presence TTL', async () => {
    const frankToken = await c.addAgent('frank');
    const graceToken = await c.addAgent('grace');
    const C = await c.startNode('C');
    await c.agent('frank', frankToken, C.url, { onMessage: () => {} });
    await c.agent('grace', graceToken, a, { onMessage: () => {} });
    const asker = c.client(graceToken, a).trpc;
    const online = async () => (await asker.agents.list.query()).filter((s) => s.online).map((s) => s.agent_id);
    await vi.waitFor(async () => expect(await online()).toEqual(expect.arrayContaining(['frank', 'grace'])));
    const killedAt = Date.now();
    await C.proc.stop('SIGKILL');
    // Presence TTL is 60 s; node heartbeats run out 3 x 2 s after the last one.
    await vi.waitFor(async () => expect(await online()).not.toContain('frank'), { timeout: 15_000, interval: 200 });
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expect(await online()).toContain('grace');
    expect((await asker.agents.get.query({ agent_id: 'frank' })).online).toBe(false);
  }, 30_000);

  it('a node whose clock runs 30 s ahead still sees its peers: its messages reach their subscribers live, and its agents are online on them', async () => {
    const henryToken = await c.addAgent('henry');
    const irisToken = await c.addAgent('iris');
    // Node D's clock (Date.now and new Date()) runs 30 s ahead (heartbeats used to carry "alive
    // until" in the writer's clock).
    const clock = [
      'const RealDate = Date;',
      'const now = () => RealDate.now() + 30_000;',
      'globalThis.Date = class extends RealDate { constructor(...a) { super(...(a.length ? a : [now()])); } static now() { return now(); } };',
    ].join(' ');
    const skew = `--import=data:text/javascript,${encodeURIComponent(clock)}`;
    const D = await c.startNode('D', { env: { NODE_OPTIONS: skew } });
    const got: string[] = [];
    await c.agent('iris', irisToken, a, { onMessage: (m) => void got.push(String(m.content)) });
    const henry = await c.agent('henry', henryToken, D.url, { onMessage: () => {} });
    const asker = c.client(irisToken, a).trpc;
    await vi.waitFor(async () => expect((await asker.agents.list.query()).find((s) => s.agent_id === 'henry')?.online).toBe(true));
    await henry.send({ to_agent: 'iris', type: 'task', payload: { content: 'from the future' } });
    await vi.waitFor(() => expect(got).toEqual(['from the future']), { timeout: 3_000 });
    // And asked on D, the agents of the other nodes are online.
    const onD = c.client(henryToken, D.url).trpc;
    expect((await onD.agents.list.query()).find((s) => s.agent_id === 'iris')?.online).toBe(true);
  }, 40_000);
});
