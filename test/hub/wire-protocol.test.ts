/**
 * docs/wire-protocol.md, executed: an agent with nothing but a plain WebSocket (no tRPC client)
 * joins the hub, sends, receives on its inbox, acks, resumes, and reads error frames, keepalive
 * and the reconnect notification. Every frame shape asserted here is one the doc shows.
 * Set WIRE_TRACE=1 to print the frames both ways.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { openRawSocket, startTestHub, type RawSocket, type StoreKind, type TestHub } from './harness.js';

const trace = process.env.WIRE_TRACE === '1';

/** A raw socket that optionally prints what it sends and receives (WIRE_TRACE=1). */
async function agentSocket(t: TestHub, name: string, connectionParams?: Record<string, string>): Promise<RawSocket> {
  const s = await openRawSocket(t.hub.url, connectionParams ? { connectionParams } : {});
  if (trace) {
    if (connectionParams) console.log(`${name} >> ${JSON.stringify({ method: 'connectionParams', data: connectionParams })}`);
    s.ws.on('message', (d) => console.log(`${name} << ${d.toString()}`));
    const send = s.send;
    s.send = (frame) => {
      console.log(`${name} >> ${typeof frame === 'string' ? frame : JSON.stringify(frame)}`);
      send(frame);
    };
  }
  return s;
}

const sendFrame = (id: number, to: string, content: unknown, extra: Record<string, unknown> = {}) => ({
  id,
  method: 'mutation',
  params: { path: 'messages.send', input: { json: { type: 'task', to_agent: to, payload: { content, ...extra } } } },
});

const isData = (id: number) => (f: { json: Record<string, any> | null }) => f.json?.id === id && f.json.result?.type === 'data';

describe.each<StoreKind>(['redis', 'embedded'])('the wire protocol with a plain WebSocket on %s', (kind) => {
  let t: TestHub;
  const sockets: RawSocket[] = [];
  afterEach(async () => {
    await Promise.all(sockets.splice(0).map((s) => s.close()));
    await t?.close();
  });
  const open = async (name: string, params?: Record<string, string>) => {
    const s = await agentSocket(t, name, params);
    sockets.push(s);
    return s;
  };

  it('authenticates, sends, receives on the inbox, acks, and resumes after lastEventId with only newer messages', async () => {
    t = await startTestHub(kind);
    const alice = await open('alice', { token: await t.addAgent('alice'), agent_type: 'python-bot' });
    const bob = await open('bob', { token: await t.addAgent('bob') });

    // Who am I: a query without input.
    alice.send({ id: 1, method: 'query', params: { path: 'agents.whoami' } });
    expect(await alice.reply(1)).toEqual({ id: 1, result: { type: 'data', data: { json: { agent_id: 'alice', scopes: ['agent'] } } } });
    expect((await t.hub.memory.agents.get('alice'))?.agent_type).toBe('python-bot');
    alice.send({ id: 'who-2', jsonrpc: '2.0', method: 'query', params: { path: 'agents.whoami', input: { json: null } } });
    expect(await alice.reply('who-2')).toEqual({
      id: 'who-2',
      jsonrpc: '2.0',
      result: { type: 'data', data: { json: { agent_id: 'alice', scopes: ['agent'] } } },
    });

    // Subscribe to the inbox.
    alice.send({ id: 2, method: 'subscription', params: { path: 'messages.inbox', input: { json: {} } } });
    expect(await alice.reply(2)).toEqual({ id: 2, result: { type: 'started' } });

    // Bob sends; the reply says where it was stored.
    bob.send(sendFrame(1, 'alice', { question: 'ping?' }, { meta: { requires_ack: true } }));
    const sent = (await bob.reply(1)).result.data.json;
    expect(sent).toMatchObject({ route: 'direct', channel: null, delivered_to: ['alice'] });
    expect(sent.trace_id).toBe(sent.id);
    const s1: string = sent.stream_ids.alice;
    expect(s1).toMatch(/^\d+-\d+$/);

    // The message arrives as a data frame of subscription 2, its event id = the stream id.
    const frame = (await alice.next(isData(2))).json!;
    expect(Object.keys(frame)).toEqual(['id', 'result']);
    expect(frame.result.id).toBe(s1);
    expect(frame.result.data.json.id).toBe(s1);
    const event = frame.result.data.json.data;
    expect(event.stream_id).toBe(s1);
    expect(event.message).toEqual({
      id: sent.id,
      from_agent: 'bob',
      to_agent: 'alice',
      type: 'task',
      channel: null,
      payload: {
        content: { question: 'ping?' },
        context: { session_id: null, parent_message_id: null, priority: 5 },
        meta: { timestamp: sent.timestamp, ttl: null, requires_ack: true },
      },
      timestamp: sent.timestamp,
      trace_id: sent.id,
      encrypted: false,
      signature: null,
    });
    expect(frame.result.data.meta).toBeUndefined(); // plain JSON: no superjson meta to decode

    // Bob listens for acks of what he sent; Alice acks and moves her cursor.
    bob.send({ id: 2, method: 'subscription', params: { path: 'messages.acks', input: { json: {} } } });
    expect(await bob.reply(2)).toEqual({ id: 2, result: { type: 'started' } });
    alice.send({
      id: 3,
      method: 'mutation',
      params: { path: 'messages.ack', input: { json: { acks: [{ message_id: sent.id, stream_id: s1 }], cursor: s1 } } },
    });
    expect(await alice.reply(3)).toEqual({ id: 3, result: { type: 'data', data: { json: { acked: [sent.id], cursor: s1 } } } });
    const ack = (await bob.next(isData(2))).json!.result.data.json.data;
    expect(ack).toMatchObject({ message_id: sent.id, by: 'alice' });

    // Alice stops the subscription; two more messages arrive while she is away.
    alice.send({ id: 2, method: 'subscription.stop' });
    expect(await alice.reply(2)).toEqual({ id: 2, result: { type: 'stopped' } });
    bob.send(sendFrame(3, 'alice', 'low', { context: { priority: 1 } }));
    const s2: string = (await bob.reply(3)).result.data.json.stream_ids.alice;
    bob.send(sendFrame(4, 'alice', 'urgent', { context: { priority: 9 } }));
    const s3: string = (await bob.reply(4)).result.data.json.stream_ids.alice;

    // Resubscribe after s1: only the two newer ones, highest priority first. The event id is the
    // safe resume point (everything up to it was delivered), not necessarily the message's own id.
    alice.send({ id: 4, method: 'subscription', params: { path: 'messages.inbox', input: { json: { lastEventId: s1 } } } });
    expect(await alice.reply(4)).toEqual({ id: 4, result: { type: 'started' } });
    const r1 = (await alice.next(isData(4))).json!.result;
    const r2 = (await alice.next(isData(4))).json!.result;
    expect([r1.data.json.data.message.payload.content, r2.data.json.data.message.payload.content]).toEqual(['urgent', 'low']);
    expect([r1.data.json.data.stream_id, r2.data.json.data.stream_id]).toEqual([s3, s2]);
    expect([r1.id, r2.id]).toEqual([s1, s3]);
    expect([r1.data.json.data.replayed, r2.data.json.data.replayed]).toEqual([true, true]);
    alice.send({ id: 4, method: 'subscription.stop' });
    await alice.reply(4);

    // The same resume with lastEventId at the top of params (what tRPC's own client sends).
    alice.send({ id: 5, method: 'subscription', params: { path: 'messages.inbox', input: { json: {} }, lastEventId: s2 } });
    await alice.reply(5);
    const only = (await alice.next(isData(5))).json!.result;
    expect(only.data.json.data.stream_id).toBe(s3);
    alice.send({ id: 5, method: 'subscription.stop' });
    await alice.reply(5);

    // Without lastEventId, a subscription starts after the acked cursor (s1): s2 and s3 again.
    alice.send({ id: 6, method: 'subscription', params: { path: 'messages.inbox', input: { json: {} } } });
    await alice.reply(6);
    const fresh = [(await alice.next(isData(6))).json!, (await alice.next(isData(6))).json!];
    expect(fresh.map((f) => f.result.data.json.data.stream_id).sort()).toEqual([s2, s3].sort());

    // Nothing else was sent on 2, 4, 5 after their "stopped".
    expect(alice.frames.filter((f) => f.json?.id === 4 && f.json.result?.type === 'data')).toHaveLength(2);
    expect(alice.frames.filter((f) => f.json?.id === 5 && f.json.result?.type === 'data')).toHaveLength(1);
  });

  it('answers bad input and bad credentials with error frames for the request id', async () => {
    t = await startTestHub(kind);
    await t.addAgent('bob');
    const alice = await open('alice', { token: await t.addAgent('alice') });
    alice.send(sendFrame(1, 'bob', 'x', { context: { priority: 11 } }));
    const bad = await alice.reply(1);
    expect(Object.keys(bad)).toEqual(['id', 'error']);
    expect(bad.error.json.code).toBe(-32600);
    expect(bad.error.json.data).toEqual({ code: 'BAD_REQUEST', httpStatus: 400, path: 'messages.send', details: null });
    expect(JSON.parse(bad.error.json.message)).toEqual([
      {
        origin: 'number',
        code: 'too_big',
        maximum: 10,
        inclusive: true,
        path: ['payload', 'context', 'priority'],
        message: 'priority must be between 1 and 10',
      },
    ]);

    alice.send(sendFrame(2, 'nobody', 'x'));
    const missing = (await alice.reply(2)).error.json;
    expect(missing).toEqual({
      message: 'unknown agent nobody: no such agent is registered (skynet-linker agents add nobody)',
      code: -32004,
      data: { code: 'NOT_FOUND', httpStatus: 404, path: 'messages.send', details: null },
    });

    const stranger = await open('stranger', { token: 'skl_wrong' });
    stranger.send({ id: 1, method: 'query', params: { path: 'agents.whoami' } });
    expect((await stranger.reply(1)).error.json).toEqual({
      message: 'invalid token: this hub does not know it (revoked, mistyped, or issued by another hub)',
      code: -32001,
      data: { code: 'UNAUTHORIZED', httpStatus: 401, path: 'agents.whoami', details: null },
    });
    // The socket stays open: the next call is answered too.
    stranger.send({ id: 2, method: 'query', params: { path: 'health' } });
    expect((await stranger.reply(2)).result.data.json.status).toBe('ok');
  });

  it('needs ?connectionParams=1 for the connectionParams frame, and that frame first', async () => {
    t = await startTestHub(kind);
    const token = await t.addAgent('alice');
    // Without the query flag the hub does not wait for connectionParams: the frame is not a request.
    const noFlag = await open('no-flag');
    noFlag.send({ method: 'connectionParams', data: { token } });
    expect((await noFlag.next((f) => f.json?.error !== undefined)).json).toEqual({
      id: null,
      error: { json: { message: 'Invalid request id', code: -32700, data: { code: 'PARSE_ERROR', httpStatus: 400, details: null } } },
    });
    noFlag.send({ id: 1, method: 'query', params: { path: 'agents.whoami' } });
    expect((await noFlag.reply(1)).error.json.data.code).toBe('UNAUTHORIZED');

    // With the flag, a first frame that is not connectionParams is refused and the socket closed.
    const wrongFirst = await openRawSocket(`${t.hub.url}?connectionParams=1`);
    sockets.push(wrongFirst);
    wrongFirst.send({ id: 1, method: 'query', params: { path: 'agents.whoami' } });
    expect((await wrongFirst.next((f) => f.json !== null)).json).toEqual({
      id: null,
      error: { json: { message: 'Invalid connection params shape', code: -32700, data: { code: 'PARSE_ERROR', httpStatus: 400, details: null } } },
    });
    await wrongFirst.closed;
  });

  it('keeps a socket that answers PING with PONG and drops one that does not; answers PING with PONG', async () => {
    t = await startTestHub(kind, { keepAlive: { enabled: true, pingMs: 100, pongWaitMs: 400 } });
    const token = await t.addAgent('alice');
    const polite = await open('polite', { token });
    let pings = 0;
    polite.ws.on('message', (d) => {
      if (d.toString() === 'PING') {
        pings++;
        polite.ws.send('PONG');
      }
    });
    const silent = await open('silent', { token });

    expect(await silent.closed).toBe(1006); // terminated by the hub
    expect(silent.frames.map((f) => f.text)).toEqual(['PING']);
    expect(pings).toBeGreaterThanOrEqual(1);
    expect(polite.ws.readyState).toBe(WebSocket.OPEN);

    polite.send('PING');
    await polite.next((f) => f.text === 'PONG');
    polite.send({ id: 1, method: 'query', params: { path: 'agents.whoami' } });
    expect((await polite.reply(1)).result.data.json.agent_id).toBe('alice');
  });

  it('tells connected sockets to reconnect when the hub shuts down', async () => {
    t = await startTestHub(kind);
    const alice = await open('alice', { token: await t.addAgent('alice') });
    alice.send({ id: 1, method: 'subscription', params: { path: 'messages.inbox', input: { json: {} } } });
    await alice.reply(1);
    const closing = t.hub.close();
    expect((await alice.next((f) => f.json?.method === 'reconnect')).json).toEqual({ id: null, method: 'reconnect' });
    expect(await alice.closed).toBe(1012);
    await closing;
    await vi.waitFor(() => expect(alice.ws.readyState).toBe(WebSocket.CLOSED));
  });
});
