/**
 * `kill -9` of a hub process with many sends in flight, then a restart on the same port: every
 * message whose `send` resolved is delivered (the set of resolved ids is a subset of the set of
 * delivered ids), and the agent runtime's handler sees each message once.
 */
import { describe, expect, it, vi } from 'vitest';
import type { SendResult } from '../../clients/agent.js';
import { watchInbox } from '../hub/delivery-helpers.js';
import { errorCode, twoNodeCluster } from './cluster.js';

describe('a hub process killed with messages in flight', () => {
  const c = twoNodeCluster();

  it('after kill -9 and a restart, every send that resolved is delivered, each once to the runtime', async () => {
    const A = c.node('A');
    const B = c.node('B');
    const [aliceToken, bobToken, carolToken, daveToken] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((id) => c.addAgent(id)));
    // bob's runtime is on A only: it waits for A to come back. carol's is on B (another node).
    // dave is a raw subscription on A (wsLink resubscribes with lastEventId by itself).
    const handled: Record<string, string[]> = { bob: [], carol: [] };
    const errors: Error[] = [];
    const bob = await c.agent('bob', bobToken!, A.url, { onMessage: (m) => void handled.bob!.push(m.envelope.id), onError: (e) => void errors.push(e) });
    await c.agent('carol', carolToken!, B.url, { onMessage: (m) => void handled.carol!.push(m.envelope.id), onError: (e) => void errors.push(e) });
    const dave = watchInbox(c.client(daveToken!, A.url).trpc);
    await dave.started;

    // alice sends from A, 48 in flight at any time, round robin to bob, carol and dave.
    const alice = c.client(aliceToken!, A.url).trpc;
    const resolved = new Map<string, string>(); // message id -> recipient
    const failures: string[] = [];
    const recipients = ['bob', 'carol', 'dave'];
    let n = 0;
    let stop = false;
    let killAt = 150;
    let reachedKill!: () => void;
    const killPoint = new Promise<void>((r) => (reachedKill = r));
    const worker = async () => {
      while (!stop) {
        const to = recipients[n++ % recipients.length]!;
        try {
          const r: SendResult = await alice.messages.send.mutate({ to_agent: to, type: 'task', payload: { content: { n } } });
          resolved.set(r.id, to);
          if (resolved.size >= killAt) reachedKill();
        } catch (err) {
          failures.push(errorCode(err));
        }
      }
    };
    const workers = Promise.all(Array.from({ length: 48 }, worker));

    await killPoint;
    const killed = await A.proc.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    const resolvedBeforeCrash = resolved.size;
    // Restart on the same port: clients reconnect by themselves; sends queued meanwhile go out then.
    await c.startNode('A', { port: A.port });
    killAt = resolvedBeforeCrash + 150;
    await vi.waitFor(() => expect(resolved.size).toBeGreaterThanOrEqual(killAt), { timeout: 20_000 });
    stop = true;
    await workers;

    // The checker: resolved ⊆ delivered, for each recipient.
    const expected = (to: string) => [...resolved].filter(([, r]) => r === to).map(([id]) => id);
    await vi.waitFor(
      () => {
        expect(expected('bob').filter((id) => !handled.bob!.includes(id))).toEqual([]);
        expect(expected('carol').filter((id) => !handled.carol!.includes(id))).toEqual([]);
        const daveGot = new Set(dave.events.map((e) => e.message.id));
        expect(expected('dave').filter((id) => !daveGot.has(id))).toEqual([]);
      },
      { timeout: 20_000 },
    );
    // The runtime's handler saw every message once (the hub delivers at least once).
    expect(new Set(handled.bob).size).toBe(handled.bob!.length);
    expect(new Set(handled.carol).size).toBe(handled.carol!.length);
    // Nothing arrived that was not sent to that agent.
    expect(dave.events.every((e) => e.message.to_agent === 'dave')).toBe(true);
    // The sends that failed were the ones in flight when the socket died: no other error code.
    expect(failures.length).toBeGreaterThan(0); // there were sends in flight
    expect(failures.filter((f) => !f.startsWith('no code'))).toEqual([]);
    expect(resolvedBeforeCrash).toBeGreaterThanOrEqual(150);
    expect(bob.state).toBe('live');
    // What the runtimes reported were lost connections (no tRPC error code), nothing else.
    expect(errors.map(errorCode).filter((code) => !code.startsWith('no code'))).toEqual([]);
  });
});
