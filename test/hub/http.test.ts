/**
 * The HTTP side of the hub's one port: /health, /metrics, 404s, the typed client over HTTP with
 * an SSE subscription, and the CORS allow-list.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { createLinkerClient } from '../../clients/client.js';
import { deferred, startTestHub, type StoreKind, type TestHub } from './harness.js';

/** The value of one sample line of a Prometheus text exposition, or undefined. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe.each<StoreKind>(['redis', 'embedded'])('HTTP endpoints on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('GET /health answers 200 JSON naming the store kind and the node', async () => {
    t = await startTestHub(kind, { nodeId: 'node-health' });
    const res = await fetch(`${t.hub.httpUrl}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({
      status: 'ok',
      store: { kind, reachable: true, latency_ms: expect.any(Number) },
      event_loop: { delay_ms: expect.any(Number), max_delay_ms: expect.any(Number), overloaded: false },
      node: 'node-health',
    });
  });

  it('GET /metrics exposes messages, delivery latency and connected agents in Prometheus text', async () => {
    t = await startTestHub(kind);
    const bob = await t.agent('bob');
    const received: string[] = [];
    const receiver = await t.agent('carol', { onMessage: (m) => void received.push(String(m.envelope.payload.content)) });

    const before = await (await fetch(`${t.hub.httpUrl}/metrics`)).text();
    expect(before).toContain('# TYPE skynet_messages_total counter');
    expect(before).not.toMatch(/^skynet_messages_total\{/m);

    // The first message may be replayed if it lands before the subscription listens; once it is
    // in, the second is certainly delivered live (and so observed by the latency histogram).
    await bob.send({ type: 'task', to_agent: 'carol', payload: { content: 'first' } });
    await vi.waitFor(() => expect(received).toEqual(['first']));
    await bob.send({ type: 'task', to_agent: 'carol', payload: { content: 'second' } });
    await vi.waitFor(() => expect(received).toEqual(['first', 'second']));
    await vi.waitFor(async () => {
      const text = await (await fetch(`${t.hub.httpUrl}/metrics`)).text();
      expect(sample(text, 'skynet_connected_agents')).toBe(2);
    });
    const res = await fetch(`${t.hub.httpUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(sample(text, 'skynet_messages_total{type="task",route="direct"}')).toBe(2);
    const live = sample(text, 'skynet_deliveries_total{kind="live"}') ?? 0;
    const replay = sample(text, 'skynet_deliveries_total{kind="replay"}') ?? 0;
    expect(live).toBeGreaterThanOrEqual(1);
    expect(live + replay).toBe(2);
    expect(text).toContain('# TYPE skynet_delivery_latency_seconds histogram');
    expect(sample(text, 'skynet_delivery_latency_seconds_count')).toBe(live);
    expect(sample(text, 'skynet_delivery_latency_seconds_bucket{le="+Inf"}')).toBe(live);
    expect(sample(text, 'skynet_ws_connections')).toBe(2);

    await receiver.close();
    await vi.waitFor(async () => expect(sample(await (await fetch(`${t.hub.httpUrl}/metrics`)).text(), 'skynet_connected_agents')).toBe(1));
  });

  it('answers 404 with a hint anywhere else, and refuses WebSocket upgrades off /ws', async () => {
    t = await startTestHub(kind);
    for (const [path, method] of [
      ['/', 'GET'],
      ['/healthz', 'GET'],
      ['/health', 'POST'],
      ['/metrics/extra', 'GET'],
      ['/trpcx/agents.whoami', 'GET'],
    ] as const) {
      const res = await fetch(`${t.hub.httpUrl}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(await res.json()).toEqual({ error: 'not found', hint: 'WebSocket at /ws, tRPC over HTTP at /trpc, /health, /metrics' });
    }
    const ws = new WebSocket(t.hub.url.replace(/\/ws$/, '/elsewhere'));
    const status = await new Promise<number | undefined>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode));
      ws.once('error', () => resolve(undefined));
    });
    ws.terminate();
    expect(status).toBe(404);
  });

  it('serves the typed client over HTTP: queries, mutations, typed errors, and an SSE inbox that receives a message', async () => {
    t = await startTestHub(kind);
    const aliceToken = await t.addAgent('alice');
    const bobToken = await t.addAgent('bob');
    const alice = createLinkerClient({ url: t.hub.httpUrl, token: aliceToken, EventSource });
    const bob = createLinkerClient({ url: `${t.hub.httpUrl}/trpc`, token: bobToken, EventSource });

    expect(await alice.trpc.agents.whoami.query()).toEqual({ agent_id: 'alice', scopes: ['agent'] });
    const [who, ctx] = await Promise.all([bob.trpc.agents.whoami.query(), bob.trpc.context.push.mutate({ scope: 'global', patch: { via: 'http' } })]);
    expect(who.agent_id).toBe('bob');
    expect(ctx.version).toBe(1);
    expect((await alice.trpc.context.pull.query({ scope: 'global' })).data).toEqual({ via: 'http' });
    const denied = await alice.trpc.admin.snapshotCreate.mutate().catch((e: unknown) => e as TRPCClientError<any>);
    expect(denied).toBeInstanceOf(TRPCClientError);
    expect((denied as TRPCClientError<any>).data?.code).toBe('FORBIDDEN');
    const anon = createLinkerClient({ url: t.hub.httpUrl, EventSource });
    const unauth = await anon.trpc.agents.whoami.query().catch((e: unknown) => e as TRPCClientError<any>);
    expect((unauth as TRPCClientError<any>).data?.code).toBe('UNAUTHORIZED');

    const started = deferred<void>();
    const received = deferred<{ id: string; data: { stream_id: string; replayed: boolean; message: { from_agent: string; payload: { content: unknown } } } }>();
    const sub = alice.trpc.messages.inbox.subscribe(undefined, { onStarted: () => started.resolve(), onData: received.resolve, onError: received.reject });
    try {
      await started.promise;
      const sent = await bob.trpc.messages.send.mutate({ type: 'task', to_agent: 'alice', payload: { content: { over: 'sse' } } });
      const event = await received.promise;
      expect(event.id).toBe(sent.stream_ids.alice);
      expect(event.data.stream_id).toBe(sent.stream_ids.alice);
      expect(event.data.message.from_agent).toBe('bob');
      expect(event.data.message.payload.content).toEqual({ over: 'sse' });
    } finally {
      sub.unsubscribe();
    }
  });

  it('speaks the raw HTTP of docs/wire-protocol.md: GET queries, POST mutations, SSE resumed with Last-Event-ID', async () => {
    t = await startTestHub(kind);
    const aliceToken = await t.addAgent('alice');
    const bobToken = await t.addAgent('bob');
    const bob = { authorization: `Bearer ${bobToken}` };
    const input = (v: unknown) => encodeURIComponent(JSON.stringify({ json: v }));

    const pulled = await fetch(`${t.hub.httpUrl}/trpc/context.pull?input=${input({ scope: 'global' })}`, { headers: bob });
    expect(await pulled.json()).toEqual({ result: { data: { json: { scope: 'global', version: 0, data: {}, updated_by: null, updated_at: null } } } });
    const noType = await fetch(`${t.hub.httpUrl}/trpc/messages.send`, { method: 'POST', headers: bob, body: '{}' });
    expect(noType.status).toBe(415);
    const streamIds: string[] = [];
    for (const content of ['one', 'two', 'three']) {
      const res = await fetch(`${t.hub.httpUrl}/trpc/messages.send`, {
        method: 'POST',
        headers: { ...bob, 'content-type': 'application/json' },
        body: JSON.stringify({ json: { type: 'task', to_agent: 'alice', payload: { content } } }),
      });
      expect(res.status).toBe(200);
      streamIds.push(((await res.json()) as { result: { data: { json: { stream_ids: { alice: string } } } } }).result.data.json.stream_ids.alice);
    }

    // SSE, authenticated by a single-use ticket in the URL (what a browser EventSource can do; a
    // token there is refused), resumed after "one".
    const inboxUrl = (params: Record<string, string>) =>
      `${t.hub.httpUrl}/trpc/messages.inbox?input=${input({})}&connectionParams=${encodeURIComponent(JSON.stringify(params))}`;
    const refused = await fetch(inboxUrl({ token: aliceToken }));
    expect(await refused.text()).toContain('a token in a URL is refused');
    const ticketReply = await fetch(`${t.hub.httpUrl}/trpc/auth.ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const { ticket } = ((await ticketReply.json()) as { result: { data: { json: { ticket: string } } } }).result.data.json;
    expect(ticket).toMatch(/^skt_/);
    const ac = new AbortController();
    const sse = await fetch(inboxUrl({ ticket }), {
      headers: { 'last-event-id': streamIds[0]! },
      signal: ac.signal,
    });
    try {
      expect(sse.status).toBe(200);
      expect(sse.headers.get('content-type')).toBe('text/event-stream');
      const reader = sse.body!.getReader();
      let text = '';
      while ((text.match(/^id: /gm) ?? []).length < 2) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
      // Events are blocks of `field: value` lines separated by blank lines.
      const events = text
        .split(/\n\n+/)
        .map((block) =>
          Object.fromEntries(
            block
              .split('\n')
              .filter(Boolean)
              .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
          ),
        )
        .filter((e) => Object.keys(e).length > 0);
      expect(events[0]).toEqual({ event: 'connected', data: '{}' });
      const parsed = events.slice(1).map((e) => ({
        id: e.id,
        json: (JSON.parse(e.data!) as { json: { stream_id: string; replayed: boolean; message: { payload: { content: string } } } }).json,
      }));
      expect(parsed.map((p) => [p.id, p.json.stream_id, p.json.replayed, p.json.message.payload.content])).toEqual([
        [streamIds[1], streamIds[1], true, 'two'],
        [streamIds[2], streamIds[2], true, 'three'],
      ]);
    } finally {
      ac.abort();
    }
  });

  it('sends CORS headers only to allowed origins', async () => {
    t = await startTestHub(kind, { corsOrigins: ['https://panel.example'] });
    const token = await t.addAgent('alice');
    const url = `${t.hub.httpUrl}/trpc/agents.whoami`;

    const preflight = await fetch(url, { method: 'OPTIONS', headers: { origin: 'https://panel.example', 'access-control-request-method': 'GET' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://panel.example');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization, content-type, trpc-accept, last-event-id');
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, POST, OPTIONS');
    expect(preflight.headers.get('vary')).toBe('Origin');

    const allowed = await fetch(url, { headers: { origin: 'https://panel.example', authorization: `Bearer ${token}` } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://panel.example');

    const foreign = await fetch(url, { headers: { origin: 'https://evil.example', authorization: `Bearer ${token}` } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    const foreignPreflight = await fetch(url, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
    expect(foreignPreflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(foreignPreflight.headers.get('access-control-allow-headers')).toBeNull();
  });

  it('sends no CORS headers at all by default', async () => {
    t = await startTestHub(kind);
    const res = await fetch(`${t.hub.httpUrl}/trpc/health`, { headers: { origin: 'https://panel.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});
