/**
 * Redis goes away under two running hub processes and comes back (same port, same directory,
 * AOF with `appendfsync always`): `send` fails fast with SERVICE_UNAVAILABLE, the hubs stay up
 * and say so on /health, subscriptions stay open and resume by themselves, the hubs serve again
 * once Redis is back, and no accepted message is lost. Then a dropped Redis connection (Redis up)
 * with sends in flight, which ioredis re-sends after reconnecting.
 */
import { describe, expect, it, vi } from 'vitest';
import type { LinkerClient } from '../../clients/client.js';
import { watchInbox } from '../hub/delivery-helpers.js';
import { errorCode, twoNodeCluster } from './cluster.js';

describe('Redis outage under two hub processes', () => {
  const c = twoNodeCluster();

  /** Sends that resolved (message id -> recipient) and the codes of those that failed. */
  function sender(trpc: LinkerClient) {
    const resolved = new Map<string, string>();
    const failures: string[] = [];
    let n = 0;
    const sendOne = async (to: string) => {
      try {
        const r = await trpc.messages.send.mutate({ to_agent: to, type: 'task', payload: { content: { n: n++ } } });
        resolved.set(r.id, to);
        return true;
      } catch (err) {
        failures.push(errorCode(err));
        return false;
      }
    };
    return { resolved, failures, sendOne, sentTo: (to: string) => [...resolved].filter(([, r]) => r === to).map(([id]) => id) };
  }

  it('send fails fast with SERVICE_UNAVAILABLE, /health says 503, subscriptions survive, and after Redis returns nothing accepted is lost', async () => {
    const A = c.node('A');
    const B = c.node('B');
    const [aliceToken, bobToken, carolToken, erinToken] = await Promise.all(['alice', 'bob', 'carol', 'erin'].map((id) => c.addAgent(id)));
    const handled: string[] = [];
    const bob = await c.agent('bob', bobToken!, B.url, { onMessage: (m) => void handled.push(m.envelope.id) });
    const carol = watchInbox(c.client(carolToken!, B.url).trpc); // raw subscription, no retry logic of its own
    await carol.started;
    const alice = c.client(aliceToken!, A.url).trpc;
    const aliceOnB = c.client(aliceToken!, B.url).trpc;
    const s = sender(alice);

    // Traffic before and while Redis dies: 16 senders, until each has seen a failure.
    for (let i = 0; i < 40; i++) await s.sendOne(i % 2 ? 'bob' : 'carol');
    let killed = false;
    const inFlight = Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        while (await s.sendOne(w % 2 ? 'bob' : 'carol'));
      }),
    );
    await vi.waitFor(() => expect(s.resolved.size).toBeGreaterThan(80));
    await c.killRedis();
    killed = true;
    await inFlight;
    expect(killed).toBe(true);
    const acceptedBeforeOutage = new Map(s.resolved);

    // While Redis is down: a clear SERVICE_UNAVAILABLE within a couple of seconds, on both nodes.
    for (const call of [
      () => alice.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'during the outage' } }),
      () => aliceOnB.messages.send.mutate({ channel: 'skynet_core', type: 'task', payload: { content: 'during the outage' } }),
      () => alice.agents.list.query(),
    ]) {
      const started = Date.now();
      const outcome = await call().then(
        () => 'resolved',
        (err: unknown) => errorCode(err),
      );
      expect(outcome).toBe('SERVICE_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(2_500);
    }
    // The hubs stay up and say the store is unreachable.
    for (const node of ['A', 'B']) {
      await vi.waitFor(async () => {
        const h = await c.health(node);
        expect(h.status).toBe(503);
        expect(h.body?.store).toMatchObject({ kind: 'redis', reachable: false });
      });
    }
    expect(A.proc.running && B.proc.running).toBe(true);
    // An agent that connects now cannot be authenticated: it is told to come back (not that its
    // token is bad, which would stop its runtime for good), and gets in once Redis is back.
    const erinGot: string[] = [];
    const erinLive = c.agent('erin', erinToken!, A.url, { onMessage: (m) => void erinGot.push(String(m.content)) });

    // Redis comes back on the same port with its AOF: the hubs serve again by themselves.
    await c.startRedis();
    for (const node of ['A', 'B']) await vi.waitFor(async () => expect((await c.health(node)).status).toBe(200), { timeout: 10_000 });
    // Pub/sub lost whatever was published meanwhile: each node asked its clients to resume.
    for (const node of [A, B]) await node.proc.waitForLine(/"event":"store_resubscribed"/, { stream: 'stderr' });
    await vi.waitFor(async () => expect(await s.sendOne('bob')).toBe(true), { timeout: 10_000 });
    for (let i = 0; i < 40; i++) await s.sendOne(i % 2 ? 'bob' : 'carol');
    const erin = await erinLive;
    await alice.messages.send.mutate({ to_agent: 'erin', type: 'task', payload: { content: 'welcome back' } });
    await vi.waitFor(() => expect(erinGot).toEqual(['welcome back']));
    expect(erin.state).toBe('live');

    // Every accepted message arrives: bob's runtime handles each once, carol's raw subscription
    // (never restarted by the test) gets every one of hers.
    await vi.waitFor(
      () => {
        expect(carol.errors.map((e) => `${errorCode(e)} ${(e as Error).message}`)).toEqual([]);
        expect(s.sentTo('bob').filter((id) => !handled.includes(id))).toEqual([]);
        const carolGot = new Set(carol.events.map((e) => e.message.id));
        expect(s.sentTo('carol').filter((id) => !carolGot.has(id))).toEqual([]);
      },
      { timeout: 15_000 },
    );
    expect(new Set(handled).size).toBe(handled.length);
    expect(carol.errors).toEqual([]);
    expect(bob.state).toBe('live');
    // What was accepted before Redis died was on disk (AOF, fsync always): it is in the history.
    const history = await bob.trpc.messages.history.query({ limit: 500 });
    const stored = new Set(history.items.map((i) => i.message.id));
    expect([...acceptedBeforeOutage].filter(([id, to]) => to === 'bob' && !stored.has(id))).toEqual([]);
    // The sends that failed said why: the store is unavailable.
    expect(s.failures.filter((f) => f !== 'SERVICE_UNAVAILABLE')).toEqual([]);
  });

  it('a dropped Redis connection with sends in flight (Redis up, commands re-sent): nothing resolved is lost, the runtime sees each once', async () => {
    const A = c.node('A');
    const [senderToken, daveToken] = await Promise.all(['sender', 'dave'].map((id) => c.addAgent(id)));
    const handled: string[] = [];
    await c.agent('dave', daveToken!, c.node('B').url, { onMessage: (m) => void handled.push(m.envelope.id) });
    const s = sender(c.client(senderToken!, A.url).trpc);
    let stop = false;
    const workers = Promise.all(
      Array.from({ length: 32 }, async () => {
        while (!stop) await s.sendOne('dave');
      }),
    );
    let killed = 0;
    for (let round = 1; round <= 3; round++) {
      await vi.waitFor(() => expect(s.resolved.size).toBeGreaterThan(round * 100), { timeout: 15_000 });
      // Every hub connection that is not pub/sub: the hubs' command connections.
      killed += Number((await c.redisCli('CLIENT', 'KILL', 'TYPE', 'normal')).trim());
    }
    expect(killed).toBeGreaterThan(0);
    await vi.waitFor(() => expect(s.resolved.size).toBeGreaterThan(400), { timeout: 15_000 });
    stop = true;
    await workers;
    await vi.waitFor(() => expect(s.sentTo('dave').filter((id) => !handled.includes(id))).toEqual([]), { timeout: 15_000 });
    expect(new Set(handled).size).toBe(handled.length);
    expect(s.failures.filter((f) => f !== 'SERVICE_UNAVAILABLE')).toEqual([]);
  });
});
