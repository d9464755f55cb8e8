/**
 * `kill -9` of a `serve` process on the default (embedded SQLite) store with sends in flight,
 * then a restart on the same data directory: every send that resolved is in the inbox, and so is
 * everything else the hub acknowledged before the kill (acks and the ack cursor, a context push,
 * a session, a token issued in between).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLinkerClient, type LinkerConnection } from '../../clients/client.js';
import { assertBuilt, Machine } from '../cli/helpers.js';
import { watchInbox } from '../hub/delivery-helpers.js';

describe('the embedded store after kill -9 of its serve process', () => {
  let m: Machine;
  const connections: LinkerConnection[] = [];
  const connect = (url: string, token: string) => {
    const c = createLinkerClient({ url, token, WebSocket, retryDelayMs: () => 20 });
    connections.push(c);
    return c.trpc;
  };
  beforeAll(() => {
    assertBuilt();
    m = new Machine();
  });
  afterAll(async () => {
    await Promise.all(connections.map((c) => c.close().catch(() => {})));
    await m?.dispose();
  });

  it('keeps every resolved send, ack, cursor, context push, session and token', async () => {
    const first = await m.serve('embedded');
    const adminToken = (JSON.parse(readFileSync(join(m.home, 'admin.json'), 'utf8')) as { token: string }).token;
    const admin = connect(first.url, adminToken);
    const [{ token: aliceToken }, { token: bobToken }] = await Promise.all([
      admin.agents.add.mutate({ agent_id: 'alice' }),
      admin.agents.add.mutate({ agent_id: 'bob' }),
    ]);
    const alice = connect(first.url, aliceToken);
    const bob = connect(first.url, bobToken);
    const bobInbox = watchInbox(bob);
    await bobInbox.started;

    // alice sends to bob, 16 in flight at any time; every 10th message asks for an ack.
    const resolved = new Set<string>();
    let n = 0;
    let stop = false;
    let reached!: () => void;
    const enough = new Promise<void>((r) => (reached = r));
    const worker = async () => {
      while (!stop) {
        const i = n++;
        try {
          const r = await alice.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: { i }, meta: { requires_ack: i % 10 === 0 } } });
          resolved.add(r.id);
          if (resolved.size >= 400) reached();
        } catch {
          // In flight when the hub died: not acknowledged, so not promised.
        }
      }
    };
    const workers = Promise.all(Array.from({ length: 16 }, worker));

    // Meanwhile, everything else the hub acknowledges: bob acks what asked for it (moving his
    // cursor), alice pushes a context and opens a session, the admin issues carol a token.
    await vi.waitFor(() => expect(bobInbox.events.filter((e) => e.message.payload.meta.requires_ack).length).toBeGreaterThanOrEqual(5), { timeout: 15_000 });
    const toAck = bobInbox.events.filter((e) => e.message.payload.meta.requires_ack).slice(0, 5);
    const acked = await bob.messages.ack.mutate({
      acks: toAck.map((e) => ({ message_id: e.message.id, stream_id: e.stream_id })),
      cursor: toAck.at(-1)!.stream_id,
    });
    expect(acked.acked).toEqual(toAck.map((e) => e.message.id));
    const pushed = await alice.context.push.mutate({ scope: 'agent:alice', patch: { plan: 'survive kill -9' } });
    const session = await alice.sessions.create.mutate({ participants: ['bob'], metadata: { goal: 'crash test' } });
    const { token: carolToken } = await admin.agents.add.mutate({ agent_id: 'carol' });
    await enough;

    const killed = await first.proc.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    // What was promised is what had resolved by now; the sends still in flight are not waited for
    // (their client is closed: nothing would ever answer them).
    const promised = [...resolved];
    stop = true;
    await Promise.all(connections.splice(0).map((c) => c.close().catch(() => {})));
    void workers;
    expect(promised.length).toBeGreaterThanOrEqual(400);

    const second = await m.serve('embedded');
    // Every send that resolved is in bob's inbox (read from its very start).
    const bob2 = connect(second.url, bobToken);
    const replay = watchInbox(bob2, { lastEventId: '0-0' });
    await vi.waitFor(
      () => {
        const got = new Set(replay.events.map((e) => e.message.id));
        expect(promised.filter((id) => !got.has(id))).toEqual([]);
      },
      { timeout: 20_000 },
    );
    // bob's acks reached alice's ack stream, and his cursor is where he left it.
    const alice2 = connect(second.url, aliceToken);
    const ackIds: string[] = [];
    const acks = alice2.messages.acks.subscribe(
      { lastEventId: '0-0' },
      { onData: (e) => void ackIds.push((e as unknown as { data: { message_id: string } }).data.message_id) },
    );
    await vi.waitFor(() => expect(ackIds).toEqual(acked.acked), { timeout: 10_000 });
    acks.unsubscribe();
    expect((await bob2.messages.ack.mutate({ acks: [] })).cursor).toBe(toAck.at(-1)!.stream_id);
    // The context, the session and carol's token.
    expect(await alice2.context.pull.query({ scope: 'agent:alice' })).toMatchObject({ version: pushed.version, data: { plan: 'survive kill -9' } });
    expect(await alice2.sessions.get.query({ session_id: session.session_id })).toMatchObject({
      session_id: session.session_id,
      participants: expect.arrayContaining(['bob']),
      metadata: { goal: 'crash test' },
    });
    const carol = connect(second.url, carolToken);
    expect(await carol.context.pull.query({ scope: 'agent:carol' })).toMatchObject({ scope: 'agent:carol' });
    replay.stop();
    await Promise.all(connections.splice(0).map((c) => c.close()));
    const stopped = await second.proc.stop('SIGTERM');
    expect(stopped.code, stopped.stderr).toBe(0);
  }, 120_000);
});
