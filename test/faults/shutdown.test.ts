/**
 * Graceful shutdown: SIGTERM on a `serve` process with clients connected and sends in flight. The
 * node stops accepting, tells its clients to reconnect, lets them move (clients given the list of
 * nodes go to the next one) and finish what they had in flight, then exits 0. Nothing is lost and
 * no send fails.
 */
import { describe, expect, it, vi } from 'vitest';
import { watchInbox } from '../hub/delivery-helpers.js';
import { errorCode, twoNodeCluster } from './cluster.js';

describe('SIGTERM on a hub process', () => {
  const c = twoNodeCluster();

  it('drains and exits 0; clients with the node list move to the other node without loss and without a failed send', async () => {
    const A = c.node('A');
    const B = c.node('B');
    const nodes = [A.url, B.url];
    const [aliceToken, bobToken, carolToken] = await Promise.all(['alice', 'bob', 'carol'].map((id) => c.addAgent(id)));
    const handled: string[] = [];
    const bob = await c.agent('bob', bobToken!, nodes, { onMessage: (m) => void handled.push(m.envelope.id) });
    const carol = watchInbox(c.client(carolToken!, nodes).trpc);
    await carol.started;
    const alice = c.client(aliceToken!, nodes).trpc;
    // Everyone starts on A (the first URL of the list).
    await vi.waitFor(async () => expect((await alice.agents.get.query({ agent_id: 'bob' })).online).toBe(true));

    const resolved = new Map<string, string>();
    const failures: string[] = [];
    let stop = false;
    let n = 0;
    const workers = Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        while (!stop) {
          const to = w % 2 ? 'bob' : 'carol';
          try {
            const r = await alice.messages.send.mutate({ to_agent: to, type: 'task', payload: { content: { n: n++ } } });
            resolved.set(r.id, to);
          } catch (err) {
            failures.push(errorCode(err));
          }
        }
      }),
    );
    await vi.waitFor(() => expect(resolved.size).toBeGreaterThan(150));

    const started = Date.now();
    const exit = await A.proc.stop('SIGTERM', 20_000);
    expect(exit.code).toBe(0);
    expect(exit.stdout).toContain('SIGTERM: shutting down');
    expect(exit.stdout).toContain('hub stopped');
    // The clients left by themselves: the drain did not have to wait for its deadline (10 s).
    expect(Date.now() - started).toBeLessThan(8_000);
    const atShutdown = resolved.size;

    // Traffic goes on through B.
    await vi.waitFor(() => expect(resolved.size).toBeGreaterThan(atShutdown + 150), { timeout: 10_000 });
    stop = true;
    await workers;

    const sentTo = (to: string) => [...resolved].filter(([, r]) => r === to).map(([id]) => id);
    await vi.waitFor(
      () => {
        expect(sentTo('bob').filter((id) => !handled.includes(id))).toEqual([]);
        const carolGot = new Set(carol.events.map((e) => e.message.id));
        expect(sentTo('carol').filter((id) => !carolGot.has(id))).toEqual([]);
      },
      { timeout: 15_000 },
    );
    expect(new Set(handled).size).toBe(handled.length);
    expect(failures).toEqual([]);
    expect(carol.errors).toEqual([]);
    expect(bob.state).toBe('live');
    // bob is online, through B now.
    expect((await alice.agents.get.query({ agent_id: 'bob' })).online).toBe(true);
    expect((await c.health('B')).status).toBe(200);
  });
});
