/**
 * Trust between agents (issue 13): what a hostile agent holding an ordinary `agent` token tries,
 * and what the hub answers. Each `it` is one row of the table (docs/security.md), run on
 * a real hub over real Redis and the embedded store, through the typed client or a plain
 * WebSocket. Rows about records changed in Redis run on Redis (nothing outside the hub can
 * reach the embedded store's memory).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import type { TRPCClientError } from '@trpc/client';
import { keys } from '../../memory/keys.js';
import { hashToken } from '../../memory/tokens.js';
import type { Envelope } from '../../protocol/envelope.js';
import { capturedLogger, deferred, openRawSocket, rejection, startTestHub, type RawSocket, type StoreKind, type TestHub } from './harness.js';

const code = (err: TRPCClientError<any>) => (err.data as { code?: string } | undefined)?.code;

describe.each<StoreKind>(['redis', 'embedded'])('trust between agents on %s', (kind) => {
  let t: TestHub | undefined;
  const sockets: RawSocket[] = [];
  afterEach(async () => {
    await Promise.all(sockets.splice(0).map((s) => s.close()));
    await t?.close();
    t = undefined;
  });
  const raw = async (params?: Record<string, string>) => {
    const s = await openRawSocket(t!.hub.url, params ? { connectionParams: params } : {});
    sockets.push(s);
    return s;
  };

  it('a message naming a session between bob and carol is FORBIDDEN to alice, even addressed to herself; she gains nothing', async () => {
    t = await startTestHub(kind);
    const [alice, bob] = await Promise.all([t.addAgent('alice'), t.addAgent('bob'), t.addAgent('carol')]).then(([a, b]) => [
      t!.client(a).trpc,
      t!.client(b).trpc,
    ]);
    // The seed's way: the first message naming an unknown session creates it with sender and recipient.
    await bob!.messages.send.mutate({ to_agent: 'carol', type: 'task', payload: { content: 'secret plan', context: { session_id: 'sess_bc' } } });
    const before = await bob!.sessions.get.query({ session_id: 'sess_bc' });
    expect(before.participants).toEqual(['bob', 'carol']);

    for (const to of ['alice', 'carol', 'bob']) {
      const err = await rejection(
        alice!.messages.send.mutate({ to_agent: to, type: 'task', payload: { content: 'let me in', context: { session_id: 'sess_bc' } } }),
      );
      expect(code(err)).toBe('FORBIDDEN');
      expect(err.message).toBe('alice is not a participant of session sess_bc: only participants add messages to it (a participant can add you)');
    }
    // Nothing was delivered and the session is unchanged; alice cannot read, change or close it.
    expect((await alice!.messages.history.query({})).items).toEqual([]);
    const after = await bob!.sessions.get.query({ session_id: 'sess_bc' });
    expect(after.participants).toEqual(['bob', 'carol']);
    expect(after.messages).toHaveLength(1);
    expect(code(await rejection(alice!.sessions.get.query({ session_id: 'sess_bc' })))).toBe('FORBIDDEN');
    expect(code(await rejection(alice!.sessions.update.mutate({ session_id: 'sess_bc', metadata: { goal: 'mine now' } })))).toBe('FORBIDDEN');
    expect(code(await rejection(alice!.sessions.close.mutate({ session_id: 'sess_bc' })))).toBe('FORBIDDEN');
    expect((await alice!.sessions.list.query()).map((s) => s.session_id)).toEqual([]);
    // A participant adds her, by messaging her: then she may take part.
    await bob!.messages.send.mutate({ to_agent: 'alice', type: 'task', payload: { content: 'join us', context: { session_id: 'sess_bc' } } });
    await alice!.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'thanks', context: { session_id: 'sess_bc' } } });
    expect((await bob!.sessions.get.query({ session_id: 'sess_bc' })).participants).toEqual(['bob', 'carol', 'alice']);
  });

  it("the session's context is FORBIDDEN to non-participants: pull, push and watch", async () => {
    t = await startTestHub(kind);
    const [alice, bob] = await Promise.all([t.addAgent('alice'), t.addAgent('bob'), t.addAgent('carol')]).then(([a, b]) => [
      t!.client(a).trpc,
      t!.client(b).trpc,
    ]);
    await bob!.sessions.create.mutate({ session_id: 'sess_bc', participants: ['carol'] });
    await bob!.context.push.mutate({ scope: 'session:sess_bc', patch: { secret: 'launch codes' } });

    const pull = await rejection(alice!.context.pull.query({ scope: 'session:sess_bc' }));
    expect(code(pull)).toBe('FORBIDDEN');
    expect(pull.message).toBe('reading the context of session sess_bc is for its participants; alice is not one');
    expect(code(await rejection(alice!.context.push.mutate({ scope: 'session:sess_bc', patch: { secret: 'overwritten' } })))).toBe('FORBIDDEN');
    const watched = deferred<unknown>();
    alice!.context.watch.subscribe({ scope: 'session:sess_bc' }, { onData: (d) => watched.resolve(d), onError: (e) => watched.reject(e) });
    expect(
      code(
        (await watched.promise.then(
          () => null,
          (e: unknown) => e,
        )) as TRPCClientError<any>,
      ),
    ).toBe('FORBIDDEN');
    expect((await bob!.context.pull.query({ scope: 'session:sess_bc' })).data).toEqual({ secret: 'launch codes' });
    // An unknown session's context cannot be read (nobody's yet); a first push starts the session.
    expect(code(await rejection(alice!.context.pull.query({ scope: 'session:nobody_yet' })))).toBe('NOT_FOUND');
    await alice!.context.push.mutate({ scope: 'session:alices', patch: { mine: true } });
    expect((await alice!.sessions.get.query({ session_id: 'alices' })).participants).toEqual(['alice']);
    expect(code(await rejection(bob!.context.pull.query({ scope: 'session:alices' })))).toBe('FORBIDDEN');
  });

  it("a reply to bob's task to carol is FORBIDDEN to alice; bob.request(carol) resolves only with carol's answer", async () => {
    t = await startTestHub(kind);
    await t.addAgent('mallory', { scopes: ['admin'] }); // an operator may answer anything: the runtime still holds
    const aliceToken = await t.addAgent('alice');
    const tasks: Envelope[] = [];
    const carolGot = deferred<Envelope>();
    const carol = await t.agent('carol', { onMessage: (m) => void carolGot.resolve(m.envelope) });
    const bob = await t.agent('bob');
    const mallory = t.client(await t.addAgent('mallory2', { scopes: ['admin'] })).trpc;
    const alice = t.client(aliceToken).trpc;

    const answer = bob.request('carol', 'what is 6×7?', { timeoutMs: 20_000 });
    const task = await carolGot.promise;
    tasks.push(task);
    const forged = await rejection(
      alice.messages.send.mutate({ to_agent: 'bob', type: 'reply', payload: { content: 'forged: 41', context: { parent_message_id: task.id } } }),
    );
    expect(code(forged)).toBe('FORBIDDEN');
    expect(forged.message).toBe(`a reply must answer a message delivered to alice; message ${task.id} was not`);
    const unknown = await rejection(
      alice.messages.send.mutate({ to_agent: 'bob', type: 'reply', payload: { content: 'x', context: { parent_message_id: globalThis.crypto.randomUUID() } } }),
    );
    expect(unknown.message).toMatch(
      /^a reply must answer a message delivered to alice: no message .* is known \(unknown id, or older than the reply window of 24 h\)$/,
    );
    // The hub lets an admin reply to anything; bob's runtime still waits for carol herself.
    await mallory.messages.send.mutate({ to_agent: 'bob', type: 'reply', payload: { content: 'admin says 40', context: { parent_message_id: task.id } } });
    await carol.reply(task, 42);
    const reply = await answer;
    expect(reply.envelope.from_agent).toBe('carol');
    expect(reply.content).toBe(42);
  });

  it('channels: subscribe is for members; an invite-only channel takes members only through an invitation', async () => {
    t = await startTestHub(kind);
    const [aliceT, bobT, carolT] = await Promise.all(['alice', 'bob', 'carol'].map((id) => t!.addAgent(id)));
    const alice = t.client(aliceT!).trpc;
    const bob = t.client(bobT!).trpc;
    const carol = t.client(carolT!).trpc;
    await bob.channels.join.mutate({ channel: 'bc' });
    await carol.channels.join.mutate({ channel: 'bc' });
    const sub = deferred<unknown>();
    alice.channels.subscribe.subscribe({ channel: 'bc' }, { onData: (d) => sub.resolve(d), onError: (e) => sub.reject(e) });
    const err = (await sub.promise.then(
      () => null,
      (e: unknown) => e,
    )) as TRPCClientError<any>;
    expect(code(err)).toBe('FORBIDDEN');
    expect(err.message).toBe('alice is not a member of channel bc: join it first (channels.join)');

    // An invite-only channel: joining takes an invitation by a member; posting takes membership.
    expect((await bob.channels.create.mutate({ channel: 'inner', policy: 'invite' })).members).toEqual(['bob']);
    expect(code(await rejection(bob.channels.create.mutate({ channel: 'inner' })))).toBe('CONFLICT');
    expect((await rejection(alice.channels.join.mutate({ channel: 'inner' }))).message).toBe(
      'channel inner is invite-only: a member or an admin adds members (channels.invite)',
    );
    expect(code(await rejection(alice.channels.invite.mutate({ channel: 'inner', agent_id: 'alice' })))).toBe('FORBIDDEN');
    expect(code(await rejection(alice.messages.send.mutate({ channel: 'inner', type: 'broadcast', payload: { content: 'spam' } })))).toBe('FORBIDDEN');
    expect((await alice.channels.list.query()).map((c) => c.name)).not.toContain('inner');
    expect((await bob.channels.invite.mutate({ channel: 'inner', agent_id: 'carol' })).members).toEqual(['bob', 'carol']);
    const got = deferred<Envelope>();
    carol.channels.subscribe.subscribe(
      { channel: 'inner' },
      { onData: (d) => got.resolve((d as { data: { message: Envelope } }).data.message), onError: (e) => got.reject(e) },
    );
    await vi.waitFor(async () => {
      await bob.messages.send.mutate({ channel: 'inner', type: 'broadcast', payload: { content: 'for members' } });
      expect((await Promise.race([got.promise, new Promise((r) => setTimeout(r, 200))])) as Envelope | undefined).toBeDefined();
    });
    expect((await got.promise).payload.content).toBe('for members');
    // skynet_core is open: anyone joins it.
    await alice.channels.join.mutate({ channel: 'skynet_core' });
  });

  it('a removed token ends every open stream (inbox, channel, monitor, context watch, SSE) with UNAUTHORIZED', async () => {
    t = await startTestHub(kind, { tokenRecheckMs: 500 });
    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] })).trpc;
    const aliceToken = await t.addAgent('alice', { scopes: ['agent', 'monitor'] });
    const alice = t.client(aliceToken).trpc;
    const sse = t.client(aliceToken, { url: t.hub.httpUrl, EventSource }).trpc;
    await alice.channels.join.mutate({ channel: 'ops' });
    const ended = new Map<string, string | undefined>();
    const started: Promise<void>[] = [];
    const watch = (name: string, subscribe: (h: { onStarted: () => void; onError: (e: unknown) => void; onData: () => void }) => void) => {
      const s = deferred<void>();
      started.push(s.promise);
      subscribe({ onStarted: () => s.resolve(), onError: (e) => ended.set(name, code(e as TRPCClientError<any>)), onData: () => {} });
    };
    watch('inbox', (h) => alice.messages.inbox.subscribe(undefined, h));
    watch('channel', (h) => alice.channels.subscribe.subscribe({ channel: 'ops' }, h));
    watch('monitor', (h) => alice.monitor.stream.subscribe(undefined, h));
    watch('context', (h) => alice.context.watch.subscribe({ scope: 'global' }, h));
    watch('sse-inbox', (h) => sse.messages.inbox.subscribe(undefined, h));
    await Promise.all(started);

    await admin.agents.remove.mutate({ agent_id: 'alice' });
    await vi.waitFor(
      () =>
        expect(Object.fromEntries(ended)).toEqual({
          inbox: 'UNAUTHORIZED',
          channel: 'UNAUTHORIZED',
          monitor: 'UNAUTHORIZED',
          context: 'UNAUTHORIZED',
          'sse-inbox': 'UNAUTHORIZED',
        }),
      {
        timeout: 5_000,
      },
    );
    expect(code(await rejection(alice.agents.whoami.query()))).toBe('UNAUTHORIZED');
  });

  it('1,000 context.push calls in one frame cost O(N), stop when the connection closes, and the typed client never trips the bounds', async () => {
    t = await startTestHub(kind, { callRateLimit: { writesPerSecond: 100_000 } });
    const token = await t.addAgent('alice');
    const frame = (n: number, scope = 'global') =>
      Array.from({ length: n }, (_, i) => ({
        id: i + 1,
        method: 'mutation',
        params: { path: 'context.push', input: { json: { scope, patch: { [`k${i}`]: i } } } },
      }));
    const s = await raw({ token });
    s.send(frame(1000));
    // Every push answered, none lost to a compare-and-set race: versions 1..1000, one each.
    const replies = await Promise.all(Array.from({ length: 1000 }, (_, i) => s.reply(i + 1, 60_000)));
    expect(replies.filter((r) => r.error)).toEqual([]);
    expect(new Set(replies.map((r) => r.result.data.json.version)).size).toBe(1000);
    const trpc = t.client(token).trpc;
    expect((await trpc.context.pull.query({ scope: 'global' })).version).toBe(1000);

    // A connection that sends 1,000 pushes and leaves: what had not started is dropped. The
    // store holds the first push until the connection is gone (or all 1,000 may finish first).
    const store = t.hub.memory.store;
    const getDoc = store.getDoc.bind(store);
    const hold = deferred<void>();
    let held = 0;
    store.getDoc = async (key) => {
      if (key === keys.context('agent:alice')) {
        held++;
        await hold.promise;
      }
      return getDoc(key);
    };
    try {
      const quitter = await raw({ token });
      quitter.send(frame(1000, 'agent:alice'));
      await vi.waitFor(() => expect(held).toBe(1));
      await quitter.close();
      hold.resolve();
      let last = -1;
      await vi.waitFor(
        async () => {
          const v = (await trpc.context.pull.query({ scope: 'agent:alice' })).version;
          const settled = v === last;
          last = v;
          expect(settled).toBe(true);
        },
        { timeout: 10_000, interval: 300 },
      );
      // Only the push already running when the connection closed was written.
      expect(last).toBe(1);
    } finally {
      store.getDoc = getDoc;
    }

    // The typed client, 300 pushes at once (its own batching included), is served in full.
    const all = await Promise.all(Array.from({ length: 300 }, (_, i) => trpc.context.push.mutate({ scope: 'session:typed', patch: { [`t${i}`]: i } })));
    expect(Math.max(...all.map((d) => d.version))).toBe(300);
    // And 2,000 sends at once (far over the calls that run at once): every one is stored.
    await t.addAgent('bob');
    const sent = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => trpc.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: i } })),
    );
    expect(new Set(sent.map((r) => r.id)).size).toBe(2000);
  });

  it('every resource a caller grows is bounded with an error naming the limit', async () => {
    t = await startTestHub(kind, { maxContextBytes: 64 * 1024, callRateLimit: { readsPerSecond: 50 }, maxQueuedCalls: 1000 });
    const token = await t.addAgent('alice');
    const trpc = t.client(token).trpc;
    // Context documents.
    const big = 'x'.repeat(20 * 1024);
    await trpc.context.push.mutate({ scope: 'global', patch: { a: big } });
    await trpc.context.push.mutate({ scope: 'global', patch: { b: big } });
    const tooBig = await rejection(trpc.context.push.mutate({ scope: 'global', patch: { c: big, d: big } }));
    expect(code(tooBig)).toBe('PAYLOAD_TOO_LARGE');
    expect(tooBig.message).toMatch(/^context global would be \d+ bytes after this push, over the limit of 65536 bytes \(limits.max_context_bytes\)$/);
    expect(Object.keys((await trpc.context.pull.query({ scope: 'global' })).data)).toEqual(['a', 'b']);
    // Agent metadata.
    const meta = await rejection(trpc.agents.update.mutate({ metadata: { blob: 'y'.repeat(500 * 1024) } }));
    expect(code(meta)).toBe('PAYLOAD_TOO_LARGE');
    expect(meta.message).toMatch(/^agent metadata is \d+ bytes, over the limit of 16384 bytes \(limits.max_metadata_bytes\)$/);
    // Session metadata.
    expect(code(await rejection(trpc.sessions.create.mutate({ metadata: { goal: 'g', notes: 'z'.repeat(70 * 1024) } })))).toBe('PAYLOAD_TOO_LARGE');

    // Subscriptions per connection: the 65th is refused, the others keep working.
    const s = await raw({ token });
    for (let i = 1; i <= 70; i++) s.send({ id: i, method: 'subscription', params: { path: 'context.watch', input: { json: { scope: 'global' } } } });
    const refused = await s.reply(65);
    expect(refused.error.json.data.code).toBe('TOO_MANY_REQUESTS');
    expect(refused.error.json.message).toBe('a connection may have at most 64 subscriptions open (limits.max_subscriptions_per_connection); stop one first');
    expect((await s.reply(70)).error.json.data.code).toBe('TOO_MANY_REQUESTS');

    // 5,000 queries in one frame: 32 run at once, 1,000 wait (the limit set for this hub), the
    // rest are refused at once; of those that run, the read bucket refuses what exceeds the rate.
    const q = await raw({ token: await t.addAgent('carol') });
    q.send(Array.from({ length: 5000 }, (_, i) => ({ id: i + 1, method: 'query', params: { path: 'agents.list' } })));
    const answers = await Promise.all(Array.from({ length: 5000 }, (_, i) => q.reply(i + 1, 60_000)));
    const messages = answers.map((a) => (a.error ? (a.error.json.message as string) : 'ok'));
    expect(
      messages.filter((m) => m === '1000 calls are already waiting on this connection (limits.max_queued_calls); wait for answers before sending more').length,
    ).toBeGreaterThan(3900);
    const limited = messages.filter((m) => m === 'rate limit: carol may make 50 queries per second (limits.reads_per_second)').length;
    expect(limited).toBeGreaterThan(0);
    expect(messages.filter((m) => m === 'ok').length).toBeLessThan(1032 - limited + 1);
    const other = t.client(await t.addAgent('bob')).trpc;
    expect((await other.agents.whoami.query()).agent_id).toBe('bob');
  });

  it('sockets that never authenticate are closed after the timeout; one address holds only so many', async () => {
    t = await startTestHub(kind, { authTimeoutMs: 300, maxUnauthenticatedPerAddress: 20 });
    const idle = await Promise.all(Array.from({ length: 20 }, () => raw()));
    // The 21st is refused at the upgrade (429), while the 20 wait.
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(t!.hub.url);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => {});
    });
    expect(refused).toBe(429);
    // They answer PING, but that does not keep them: closed with 4401 once the timeout passes.
    for (const s of idle) s.send('PING');
    expect(await Promise.all(idle.map((s) => s.closed))).toEqual(idle.map(() => 4401));
    // An authenticated one stays.
    const ok = await raw({ token: await t.addAgent('alice') });
    expect(
      (
        await (async () => {
          ok.send({ id: 1, method: 'query', params: { path: 'agents.whoami' } });
          return ok.reply(1);
        })()
      ).result.data.json.agent_id,
    ).toBe('alice');
    await new Promise((r) => setTimeout(r, 600)); // past the auth timeout (a condition cannot show "still open later")
    ok.send({ id: 2, method: 'query', params: { path: 'agents.whoami' } });
    expect((await ok.reply(2)).result.data.json.agent_id).toBe('alice');
  });

  it('agents.add on an existing agent keeps its type unless one is given', async () => {
    t = await startTestHub(kind);
    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] })).trpc;
    expect((await admin.agents.add.mutate({ agent_id: 'gemini', agent_type: 'researcher' })).agent.agent_type).toBe('researcher');
    expect((await admin.agents.add.mutate({ agent_id: 'gemini' })).agent.agent_type).toBe('researcher');
    expect((await admin.agents.add.mutate({ agent_id: 'fresh' })).agent.agent_type).toBe('agent');
    expect((await admin.agents.add.mutate({ agent_id: 'gemini', agent_type: 'coder' })).agent.agent_type).toBe('coder');
  });

  it('/ws checks Origin: its own and the allowed origins pass, any other is refused with 403', async () => {
    t = await startTestHub(kind, { corsOrigins: ['https://panel.example'] });
    const upgrade = (origin: string | undefined) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(t!.hub.url, origin ? { headers: { origin } } : {});
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => {});
      });
    expect(await upgrade('https://evil.example')).toBe(403);
    expect(await upgrade('https://panel.example')).toBe(101);
    expect(await upgrade(t.hub.httpUrl)).toBe(101);
    expect(await upgrade(undefined)).toBe(101);
  });

  it('SSE tickets are single-use and stand for their token', async () => {
    t = await startTestHub(kind);
    const token = await t.addAgent('alice');
    const trpc = t.client(token, { url: t.hub.httpUrl }).trpc;
    const { ticket } = await trpc.auth.ticket.mutate();
    const url = `${t.hub.httpUrl}/trpc/agents.whoami?connectionParams=${encodeURIComponent(JSON.stringify({ ticket }))}`;
    const first = await fetch(url);
    expect(((await first.json()) as { result: { data: { json: { agent_id: string } } } }).result.data.json.agent_id).toBe('alice');
    const second = await fetch(url);
    expect(second.status).toBe(401);
    expect(await second.text()).toContain('invalid ticket: tickets are single-use');
  });

  it('a corrupt agent record or sessions index entry affects only itself; a corrupt context answers DATA_CORRUPTED and an admin resets it', async () => {
    const log = capturedLogger('error');
    t = await startTestHub(kind, { logger: log.logger });
    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] })).trpc;
    const alice = t.client(await t.addAgent('alice')).trpc;
    await t.addAgent('bob');
    await alice.sessions.create.mutate({ session_id: 's_ok' });
    await alice.sessions.create.mutate({ session_id: 's_bad' });
    await alice.context.push.mutate({ scope: 'global', patch: { fine: true } });
    const store = t.hub.memory.store;
    await store.hashSet(keys.agents(), { bob: 'not a record{' });
    await store.hashSet(keys.sessions(), { s_bad: 'garbage' });
    const doc = (await store.getDoc(keys.context('global')))!;
    await store.putDocIfVersion(keys.context('global'), doc.version, 'garbage');

    expect((await alice.agents.list.query()).map((a) => a.agent_id)).toEqual(['alice', 'root']);
    expect((await alice.sessions.list.query()).map((s) => s.session_id)).toEqual(['s_ok']);
    const corrupt = await rejection(alice.context.pull.query({ scope: 'global' }));
    expect(corrupt.message).toBe(
      'DATA_CORRUPTED: the context record global failed its integrity check (changed outside the hub?); an admin can reset it (skynet-linker context reset --scope global)',
    );
    expect((corrupt.data as { details?: { error?: string } }).details?.error).toBe('DATA_CORRUPTED');
    expect(code(await rejection(alice.context.reset.mutate({ scope: 'global' })))).toBe('FORBIDDEN');
    const reset = await admin.context.reset.mutate({ scope: 'global' });
    expect(reset).toMatchObject({ version: doc.version + 2, data: {}, updated_by: 'root' });
    expect((await alice.context.pull.query({ scope: 'global' })).data).toEqual({});
    expect(
      log.lines
        .filter((l) => l.event === 'record_integrity_failed')
        .map((l) => l.kind)
        .sort(),
    ).toEqual(expect.arrayContaining(['agent', 'context', 'session_index']));
    expect(await (await fetch(`${t.hub.httpUrl}/metrics`)).text()).toMatch(/skynet_corrupt_records_total\{kind="agent"\} [1-9]/);
  });

  it('/health tells an overloaded event loop apart from a store outage', async () => {
    t = await startTestHub(kind);
    const healthy = (await (await fetch(`${t.hub.httpUrl}/health`)).json()) as Record<string, any>;
    expect(healthy).toMatchObject({ status: 'ok', store: { reachable: true }, event_loop: { overloaded: false } });
    // Stall this process's event loop (the hub runs in it) for 1.5 s, then ask.
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      // busy: the loop cannot run
    }
    const res = await fetch(`${t.hub.httpUrl}/health`);
    const stalled = (await res.json()) as Record<string, any>;
    expect(res.status).toBe(503);
    expect(stalled).toMatchObject({ status: 'overloaded', store: { reachable: true }, event_loop: { overloaded: true } });
    expect(stalled.event_loop.max_delay_ms).toBeGreaterThanOrEqual(1000);
  });
});

describe('records changed in Redis are refused (integrity under the key ring)', () => {
  let t: TestHub | undefined;
  let redis: Redis | undefined;
  afterEach(async () => {
    redis?.disconnect();
    await t?.close();
    t = undefined;
  });

  it("a token record rewritten to scopes ['admin'] is refused, logged and counted; the agent's real token is not raised", async () => {
    const log = capturedLogger('error');
    t = await startTestHub('redis', { logger: log.logger });
    redis = new Redis(inject('redisUrl'));
    const token = await t.addAgent('alice');
    const trpc = t.client(token).trpc;
    expect((await trpc.agents.whoami.query()).scopes).toEqual(['agent']);
    const field = hashToken(token);
    const stored = await redis.hget(`${t.prefix}${keys.tokens()}`, field);
    expect(stored).not.toContain('agent_id'); // sealed, not JSON
    await redis.hset(
      `${t.prefix}${keys.tokens()}`,
      field,
      JSON.stringify({ agent_id: 'alice', scopes: ['admin'], created_at: new Date().toISOString(), hint: 'skl_xxxx' }),
    );
    const fresh = t.client(token).trpc;
    const err = await rejection(fresh.agents.whoami.query());
    expect(code(err)).toBe('UNAUTHORIZED');
    expect(log.lines.some((l) => l.event === 'record_integrity_failed' && l.kind === 'token')).toBe(true);
    // Moving another agent's sealed record under this token's hash does not open either.
    const bobToken = await t.addAgent('bob', { scopes: ['admin'] });
    const bobRecord = await redis.hget(`${t.prefix}${keys.tokens()}`, hashToken(bobToken));
    await redis.hset(`${t.prefix}${keys.tokens()}`, field, bobRecord!);
    expect(code(await rejection(t.client(token).trpc.agents.whoami.query()))).toBe('UNAUTHORIZED');
  });

  it("an open stream ends once its token's record is changed in Redis (the re-check sees different bytes)", async () => {
    t = await startTestHub('redis', { tokenRecheckMs: 300 });
    redis = new Redis(inject('redisUrl'));
    const token = await t.addAgent('alice');
    const trpc = t.client(token).trpc;
    const started = deferred<void>();
    let ended: string | undefined;
    trpc.messages.inbox.subscribe(undefined, {
      onStarted: () => started.resolve(),
      onData: () => {},
      onError: (e) => (ended = code(e as TRPCClientError<any>)),
    });
    await started.promise;
    await redis.hset(
      `${t.prefix}${keys.tokens()}`,
      hashToken(token),
      JSON.stringify({ agent_id: 'alice', scopes: ['admin'], created_at: new Date().toISOString(), hint: 'skl_xxxx' }),
    );
    await vi.waitFor(() => expect(ended).toBe('UNAUTHORIZED'), { timeout: 5_000 });
  });

  it('a session record or agent record rewritten in Redis is refused (participants cannot be added from outside)', async () => {
    t = await startTestHub('redis');
    redis = new Redis(inject('redisUrl'));
    const alice = t.client(await t.addAgent('alice')).trpc;
    const bob = t.client(await t.addAgent('bob')).trpc;
    await bob.sessions.create.mutate({ session_id: 'sess_b' });
    const key = `${t.prefix}${keys.session('sess_b')}`;
    // The document's value field (its version stays): readable JSON naming alice in place of the sealed value.
    const fields = await redis.hgetall(key);
    const valueField = Object.keys(fields).find((f) => (fields[f] ?? '').length > 40);
    expect(valueField).toBeDefined();
    await redis.hset(
      key,
      valueField!,
      JSON.stringify({
        session_id: 'sess_b',
        participants: ['bob', 'alice'],
        created_by: 'bob',
        created_at: new Date().toISOString(),
        updated_at: new Date().toISOString(),
        status: 'active',
        metadata: {},
      }),
    );
    const err = await rejection(alice.sessions.get.query({ session_id: 'sess_b' }));
    expect(err.message).toMatch(/^DATA_CORRUPTED: the session record sess_b failed its integrity check/);
    expect(
      code(await rejection(alice.messages.send.mutate({ to_agent: 'bob', type: 'task', payload: { content: 'in?', context: { session_id: 'sess_b' } } }))),
    ).toBe('INTERNAL_SERVER_ERROR');
  });
});
