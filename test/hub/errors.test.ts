/**
 * Bad input through the real hub: malformed WebSocket frames, oversized content and frames,
 * unknown envelope fields, the send rate limit. Every failure is a typed tRPC error with a clear
 * message and no stack trace, and the hub keeps serving everyone else.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TRPCClientError } from '@trpc/client';
import { openRawSocket, type RawSocket, rejection, startTestHub, type StoreKind, type TestHub } from './harness.js';

/** No stack trace anywhere in a reply: no `stack` key and no `at file.ts:12` lines. */
function expectNoStack(reply: unknown): void {
  const text = JSON.stringify(reply);
  expect(text).not.toContain('"stack"');
  expect(text).not.toMatch(/\bat .*\.(ts|js|mjs):\d+/);
  expect(text).not.toContain('node_modules');
}

const whoami = (id: number) => ({ id, method: 'query', params: { path: 'agents.whoami' } });

describe.each<StoreKind>(['redis', 'embedded'])('error replies on %s', (kind) => {
  let t: TestHub;
  const sockets: RawSocket[] = [];
  afterEach(async () => {
    await Promise.all(sockets.splice(0).map((s) => s.close()));
    await t?.close();
  });
  const raw = async (token: string) => {
    const s = await openRawSocket(t.hub.url, { connectionParams: { token } });
    sockets.push(s);
    return s;
  };

  it('answers malformed WebSocket frames with typed PARSE_ERROR replies and keeps serving the socket and others', async () => {
    t = await startTestHub(kind);
    const s = await raw(await t.addAgent('alice'));
    const other = t.client(await t.addAgent('bob'));

    const cases: { frame: string; message: string }[] = [
      { frame: 'this is not json', message: 'Unexpected token \'h\', "this is not json" is not valid JSON' },
      { frame: JSON.stringify({ hello: 'world' }), message: 'Invalid request id' },
      { frame: JSON.stringify({ id: 1, method: 'teleport', params: { path: 'agents.whoami' } }), message: 'Invalid procedure type' },
      { frame: JSON.stringify({ id: 2, method: 'query' }), message: 'Not an object' },
      { frame: JSON.stringify({ id: 3, method: 'query', params: { path: 42 } }), message: 'Invalid string' },
      { frame: JSON.stringify({ id: 4, jsonrpc: '1.0', method: 'query', params: { path: 'agents.whoami' } }), message: 'Must be JSONRPC 2.0' },
    ];
    for (const c of cases) {
      s.send(c.frame);
      const reply = (await s.next((f) => f.json?.error !== undefined)).json!;
      expect(reply.id).toBeNull();
      expect(reply.error.json.message).toBe(c.message);
      expect(reply.error.json.code).toBe(-32700);
      expect(reply.error.json.data).toEqual({ code: 'PARSE_ERROR', httpStatus: 400, details: null });
      expectNoStack(reply);
    }
    // The same socket still answers a good request, and so does another client.
    s.send(whoami(10));
    expect((await s.reply(10)).result.data.json).toEqual({ agent_id: 'alice', scopes: ['agent'] });
    expect(await other.trpc.agents.whoami.query()).toEqual({ agent_id: 'bob', scopes: ['agent'] });
  });

  it('answers an unknown procedure path with NOT_FOUND for that request id', async () => {
    t = await startTestHub(kind);
    const s = await raw(await t.addAgent('alice'));
    s.send({ id: 7, method: 'query', params: { path: 'messages.teleport', input: { json: null } } });
    const reply = await s.reply(7);
    expect(reply.error.json.message).toBe('No "query"-procedure on path "messages.teleport"');
    expect(reply.error.json.code).toBe(-32004);
    expect(reply.error.json.data).toEqual({ code: 'NOT_FOUND', httpStatus: 404, path: 'messages.teleport', details: null });
    // A real path called with the wrong method is NOT_FOUND too.
    s.send({ id: 8, method: 'query', params: { path: 'messages.send', input: { json: { type: 'task' } } } });
    expect((await s.reply(8)).error.json.message).toBe('No "query"-procedure on path "messages.send"');
    expectNoStack(s.frames.map((f) => f.json));
  });

  it('refuses a malformed lastEventId or a reused subscription id with BAD_REQUEST for that id', async () => {
    t = await startTestHub(kind);
    const s = await raw(await t.addAgent('alice'));
    for (const [id, lastEventId] of [
      [1, 'abc'],
      [2, '12'],
      [3, '1-2-3'],
    ] as const) {
      s.send({ id, method: 'subscription', params: { path: 'messages.inbox', input: { json: { lastEventId } } } });
      const reply = await s.reply(id);
      expect(reply.error.json.data.code).toBe('BAD_REQUEST');
      const [issue] = JSON.parse(reply.error.json.message) as { path: string[]; message: string }[];
      expect(issue).toMatchObject({ path: ['lastEventId'], message: 'lastEventId must be a stream id like 1732526096000-0' });
    }
    s.send({ id: 4, method: 'subscription', params: { path: 'messages.inbox', input: { json: { lastEventId: '99999999999999999999-0' } } } });
    const [tooBig] = JSON.parse((await s.reply(4)).error.json.message) as { message: string }[];
    expect(tooBig?.message).toBe('stream id parts must be at most 18446744073709551615');

    s.send({ id: 5, method: 'subscription', params: { path: 'messages.inbox', input: { json: {} } } });
    expect((await s.reply(5)).result.type).toBe('started');
    s.send({ id: 5, method: 'subscription', params: { path: 'messages.inbox', input: { json: {} } } });
    const dup = await s.next((f) => f.json?.id === 5 && f.json.error !== undefined);
    expect(dup.json!.error.json.message).toBe('Duplicate id 5');
    expect(dup.json!.error.json.data.code).toBe('BAD_REQUEST');
    expectNoStack(s.frames.map((f) => f.json));
  });

  it('refuses content over maxPayloadBytes with PAYLOAD_TOO_LARGE stating both sizes, and accepts exactly the limit', async () => {
    t = await startTestHub(kind, { maxPayloadBytes: 1024 });
    const alice = t.client(await t.addAgent('alice'));
    await t.addAgent('bob');
    const err = await rejection(alice.trpc.messages.send.mutate({ type: 'task', to_agent: 'bob', payload: { content: 'x'.repeat(2000) } }));
    expect(err.data?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(err.data?.httpStatus).toBe(413);
    expect(err.message).toBe('payload content is 2002 bytes, over the limit of 1024 bytes');
    expect((await t.hub.memory.messages.inboxInfo('bob')).length).toBe(0);

    // 1022 characters + the two JSON quotes = 1024 bytes: allowed. Multi-byte characters count as bytes.
    await alice.trpc.messages.send.mutate({ type: 'task', to_agent: 'bob', payload: { content: 'x'.repeat(1022) } });
    const utf8 = await rejection(alice.trpc.messages.send.mutate({ type: 'task', to_agent: 'bob', payload: { content: 'é'.repeat(600) } }));
    expect(utf8.message).toBe('payload content is 1202 bytes, over the limit of 1024 bytes');
    expect((await t.hub.memory.messages.inboxInfo('bob')).length).toBe(1);
  });

  it('closes a socket that sends a frame over maxFrameBytes with 1009 and keeps serving the others', async () => {
    t = await startTestHub(kind, { maxPayloadBytes: 1024, maxFrameBytes: 4096 });
    const token = await t.addAgent('alice');
    await t.addAgent('bob');
    const big = await raw(token);
    const bystander = await raw(token);
    const client = t.client(await t.addAgent('carol'));
    big.send(whoami(1));
    await big.reply(1);

    big.send({
      id: 2,
      method: 'mutation',
      params: { path: 'messages.send', input: { json: { type: 'task', to_agent: 'bob', payload: { content: 'x'.repeat(8000) } } } },
    });
    expect(await big.closed).toBe(1009);
    expect(big.frames.some((f) => f.json?.id === 2)).toBe(false);
    expect((await t.hub.memory.messages.inboxInfo('bob')).length).toBe(0);

    bystander.send(whoami(3));
    expect((await bystander.reply(3)).result.data.json.agent_id).toBe('alice');
    const sent = await client.trpc.messages.send.mutate({ type: 'task', to_agent: 'bob', payload: { content: 'still here' } });
    expect(sent.delivered_to).toEqual(['bob']);

    // Over HTTP the same limit applies to the request body.
    const res = await fetch(`${t.hub.httpUrl}/trpc/messages.send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ json: { type: 'task', to_agent: 'bob', payload: { content: 'x'.repeat(8000) } } }),
    });
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: { json: { data: { code: string } } } };
    expect(body.error.json.data.code).toBe('PAYLOAD_TOO_LARGE');
    expectNoStack(body);
  });

  it('refuses unknown envelope fields with BAD_REQUEST naming the field and where it is', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    await t.addAgent('bob');
    const send = alice.trpc.messages.send.mutate as (input: unknown) => Promise<unknown>;

    const top = await rejection(send({ type: 'task', to_agent: 'bob', colour: 'red', payload: { content: 'x' } }));
    expect(top.data?.code).toBe('BAD_REQUEST');
    const [topIssue] = JSON.parse(top.message) as { code: string; keys: string[]; path: string[]; message: string }[];
    expect(topIssue).toEqual({ code: 'unrecognized_keys', keys: ['colour'], path: [], message: 'Unrecognized key: "colour"' });

    const nested = await rejection(send({ type: 'task', to_agent: 'bob', payload: { content: 'x', meta: { requires_ack: true, urgent: true } } }));
    expect(nested.data?.code).toBe('BAD_REQUEST');
    const [nestedIssue] = JSON.parse(nested.message) as { keys: string[]; path: string[]; message: string }[];
    expect(nestedIssue?.keys).toEqual(['urgent']);
    expect(nestedIssue?.path).toEqual(['payload', 'meta']);
    expect(nestedIssue?.message).toBe('Unrecognized key: "urgent"');

    const bad = await rejection(send({ type: 'task', to_agent: 'bob', payload: { content: 'x', context: { priority: 11 } } }));
    expect(bad.data?.code).toBe('BAD_REQUEST');
    expect(bad.message).toContain('priority must be between 1 and 10');
    expectNoStack([top.shape, nested.shape, bad.shape]);
    expect((await t.hub.memory.messages.inboxInfo('bob')).length).toBe(0);
  });

  it('answers TOO_MANY_REQUESTS once an agent has used its burst, per agent', async () => {
    t = await startTestHub(kind, { rateLimit: { perSecond: 5, burst: 5 } });
    const alice = t.client(await t.addAgent('alice'));
    const bob = t.client(await t.addAgent('bob'));
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => alice.trpc.messages.send.mutate({ type: 'task', to_agent: 'bob', payload: { content: `m${i}` } })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as TRPCClientError<any>] : []));
    expect(ok).toHaveLength(5);
    expect(refused).toHaveLength(3);
    for (const err of refused) {
      expect(err.data?.code).toBe('TOO_MANY_REQUESTS');
      expect(err.data?.httpStatus).toBe(429);
      expect(err.message).toBe('rate limit: alice may send 5 messages per second');
    }
    expect((await t.hub.memory.messages.inboxInfo('bob')).length).toBe(5);
    // Bob has his own bucket.
    expect((await bob.trpc.messages.send.mutate({ type: 'task', to_agent: 'alice', payload: { content: 'mine' } })).delivered_to).toEqual(['alice']);
  });

  it('never puts a stack trace in an error reply, typed client or raw, for expected and unexpected errors', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    const errors = [
      await rejection(alice.trpc.messages.send.mutate({ type: 'task', to_agent: 'nobody', payload: { content: 'x' } })),
      await rejection(alice.trpc.sessions.get.query({ session_id: 'missing' })),
      await rejection(t.client(undefined).trpc.agents.whoami.query()),
    ];
    expect(errors.map((e) => e.data?.code)).toEqual(['NOT_FOUND', 'NOT_FOUND', 'UNAUTHORIZED']);
    expect(errors[0]!.message).toBe('unknown agent nobody: no such agent is registered (skynet-linker agents add nobody)');
    for (const e of errors) {
      expect(e.data).not.toHaveProperty('stack');
      expectNoStack(e.shape);
    }

    // An unexpected failure inside a procedure: the store breaks under the hub.
    const s = await raw(await t.addAgent('bob'));
    const store = t.hub.memory.store;
    const hashGetAll = store.hashGetAll;
    store.hashGetAll = async () => {
      throw new Error('disk on fire at /srv/secret/path.ts:12');
    };
    s.send({ id: 1, method: 'query', params: { path: 'agents.list' } });
    const reply = await s.reply(1).finally(() => (store.hashGetAll = hashGetAll));
    expect(reply.error.json.message).toBe('internal error');
    expect(reply.error.json.data.code).toBe('INTERNAL_SERVER_ERROR');
    expect(JSON.stringify(reply)).not.toContain('disk on fire');
    expectNoStack(reply);

    // The same inside a subscription, where the failure happens while it streams.
    const getDoc = store.getDoc;
    store.getDoc = async () => {
      throw new Error('cannot read /srv/secret/context');
    };
    s.send({ id: 2, method: 'subscription', params: { path: 'context.watch', input: { json: { scope: 'global' } } } });
    const subReply = await s.next((f) => f.json?.id === 2 && f.json.error !== undefined).finally(() => (store.getDoc = getDoc));
    expect(subReply.json!.error.json.message).toBe('internal error');
    expect(subReply.text).not.toContain('/srv/secret');
    expectNoStack(subReply.json);
    // The socket keeps serving.
    s.send(whoami(3));
    expect((await s.reply(3)).result.data.json.agent_id).toBe('bob');
  });
});
