/**
 * transport/ws-adapter.ts against the adapter it replaces: the same router served by tRPC's own
 * `applyWSSHandler` (11.25) and by `serveWebSocket` gets the same script of raw frames, and every
 * request id must get the same frames back, in the same order. The script walks the protocol's
 * corners: connectionParams, batches, middleware ctx/input overrides, validation and thrown
 * errors, wrong procedure types, tracked subscriptions with lastEventId, a subscription failing
 * mid-stream, stop, duplicate ids, malformed, binary and id-less frames. Then the real typed
 * client (wsLink) runs against the new adapter, and raw-JSON splicing is checked.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import superjson from 'superjson';
import { z } from 'zod';
import { initTRPC, TRPCError, tracked } from '@trpc/server';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import { serveWebSocket } from '../../transport/ws-adapter.js';
import { withRawJson } from '../../protocol/json.js';

interface Ctx {
  user: string | null;
}

const t = initTRPC.context<Ctx>().create({
  // superjson, with a missing input meaning no input (as the hub's transformer does).
  transformer: {
    input: {
      serialize: (v: unknown) => superjson.serialize(v),
      deserialize: (v: unknown) => (v === undefined ? undefined : superjson.deserialize(v as never)),
    },
    output: { serialize: (v: unknown) => superjson.serialize(v), deserialize: (v: unknown) => superjson.deserialize(v as never) },
  },
  isDev: false,
  errorFormatter: ({ shape, error }) => ({ ...shape, data: { ...shape.data, formatted: true, cause: error.cause?.message ?? null } }),
});

const authed = t.procedure.use(async ({ ctx, next }) => {
  if (!ctx.user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'who are you?' });
  return next({ ctx: { user: ctx.user, level: 2 } });
});

const router = t.router({
  whoami: authed.query(({ ctx }) => ({ user: ctx.user, level: ctx.level, when: new Date(0) })),
  add: authed.input(z.object({ a: z.number(), b: z.number() })).mutation(({ input }) => input.a + input.b),
  doubled: authed
    .input(z.object({ n: z.number() }))
    .use(({ input, next }) => next({ input: { n: input.n * 2 } }))
    .query(({ input }) => input.n),
  conflict: authed.mutation(() => {
    throw new TRPCError({ code: 'CONFLICT', message: 'taken' });
  }),
  crash: authed.mutation(() => {
    throw new Error('plain failure');
  }),
  iterableQuery: authed.query(async function* () {
    yield 1;
  }),
  notIterable: authed.subscription(() => 42 as never),
  count: authed.input(z.object({ to: z.number(), lastEventId: z.string().optional() }).optional()).subscription(async function* ({ input }) {
    const from = input?.lastEventId ? Number(input.lastEventId) + 1 : 1;
    for (let i = from; i <= (input?.to ?? 3); i++) yield tracked(String(i), { i });
  }),
  fails: authed.subscription(async function* () {
    yield { first: true };
    throw new TRPCError({ code: 'PRECONDITION_FAILED', message: 'went wrong mid-stream' });
  }),
  forever: authed.subscription(async function* ({ signal }) {
    yield 'hello';
    await new Promise<void>((resolve) => signal!.addEventListener('abort', () => resolve(), { once: true }));
  }),
  raw: authed.subscription(async function* () {
    const message = { text: 'sent as is', n: [1, 2, { deep: null }] };
    yield tracked('r1', { stream_id: 'r1', message: withRawJson(message, JSON.stringify(message)) });
  }),
});

type Server = { url: string; connections: () => number; close(): Promise<void>; reconnectAll(): void };

async function serve(kind: 'trpc' | 'ours', createContext: (params: Record<string, string> | null) => Promise<Ctx>): Promise<Server> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const handler =
    kind === 'trpc'
      ? applyWSSHandler({ wss, router, createContext: ({ info }) => createContext(info.connectionParams as Record<string, string> | null) })
      : serveWebSocket({ wss, router, createContext: ({ connectionParams }) => createContext(connectionParams) });
  let connections = 0;
  wss.on('connection', () => connections++);
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    connections: () => connections,
    reconnectAll: () => handler.broadcastReconnectNotification(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

const byParams = async (params: Record<string, string> | null): Promise<Ctx> => ({ user: params?.user ?? null });

interface Conversation {
  /** Frames per request id (JSON text of the id), in arrival order. */
  byId: Map<string, unknown[]>;
  closedWith: number | null;
}

/** Opens a socket, sends `frames` (string = raw text, Buffer = binary), waits until `done` holds. */
async function converse(url: string, frames: (object | string | Buffer)[], done: (c: Conversation) => boolean): Promise<Conversation> {
  const ws = new WebSocket(url);
  const c: Conversation = { byId: new Map(), closedWith: null };
  ws.on('message', (data) => {
    const text = data.toString();
    const json = text === 'PING' || text === 'PONG' ? text : (JSON.parse(text) as { id?: unknown });
    const key = JSON.stringify(typeof json === 'string' ? 'keepalive' : (json.id ?? null));
    c.byId.set(key, [...(c.byId.get(key) ?? []), json]);
  });
  ws.on('close', (code) => (c.closedWith = code));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  for (const f of frames) ws.send(typeof f === 'string' || Buffer.isBuffer(f) ? f : JSON.stringify(f), { binary: Buffer.isBuffer(f) });
  await vi.waitFor(() => expect(done(c), JSON.stringify([...c.byId])).toBe(true), { timeout: 5_000 });
  ws.terminate();
  return c;
}

const q = (id: number | string, path: string, input?: unknown, extra: Record<string, unknown> = {}) => ({
  id,
  method: 'query',
  params: { path, ...(input === undefined ? {} : { input: superjson.serialize(input) }), ...extra },
});
const m = (id: number | string, path: string, input?: unknown) => ({ ...q(id, path, input), method: 'mutation' });
const s = (id: number | string, path: string, input?: unknown, extra: Record<string, unknown> = {}) => ({
  ...q(id, path, input, extra),
  method: 'subscription',
});

/** The ids whose last frame is a reply (data or error) or `stopped`. */
const ended = (c: Conversation, ids: (number | string)[]) =>
  ids.every((id) => {
    const frames = c.byId.get(JSON.stringify(id)) as { error?: unknown; result?: { type: string } }[] | undefined;
    const last = frames?.at(-1);
    return last !== undefined && (last.error !== undefined || last.result?.type === 'data' || last.result?.type === 'stopped');
  });

describe('transport/ws-adapter.ts speaks exactly what tRPC 11.25 applyWSSHandler speaks', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((x) => x.close()));
  });
  const both = async (createContext = byParams) => {
    const pair = [await serve('trpc', createContext), await serve('ours', createContext)] as const;
    servers.push(...pair);
    return pair;
  };

  it('answers every call, error and subscription event with the same frames', async () => {
    const [theirs, ours] = await both();
    const script = (url: string) =>
      converse(
        `${url}?connectionParams=1`,
        [
          { method: 'connectionParams', data: { user: 'ann' } },
          q(1, 'whoami'),
          m(2, 'add', { a: 2, b: 3 }),
          m(3, 'add', { a: 'two' }),
          q('four', 'doubled', { n: 21 }, {}),
          { ...m(5, 'add', { a: 1, b: 1 }), jsonrpc: '2.0' },
          { ...q(55, 'add', { a: 1, b: 1 }), jsonrpc: '2.0' },
          q(6, 'nowhere'),
          m(7, 'conflict'),
          m(8, 'crash'),
          q(9, 'iterableQuery'),
          s(10, 'notIterable'),
          s(11, 'count', { to: 3 }),
          s(12, 'count', { to: 4 }, { lastEventId: '2' }),
          s(13, 'count', undefined, { lastEventId: '1' }),
          s(14, 'fails'),
          [q(15, 'whoami'), m(16, 'add', { a: 10, b: 20 })],
          s(17, 'raw'),
        ],
        (c) => ended(c, [1, 2, 3, 'four', 5, 55, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]),
      );
    const expected = await script(theirs.url);
    const actual = await script(ours.url);
    expect([...actual.byId.keys()].sort()).toEqual([...expected.byId.keys()].sort());
    for (const [id, frames] of expected.byId) expect({ id, frames: actual.byId.get(id) }).toEqual({ id, frames });
    // Spot checks that the script exercised what it says.
    expect(actual.byId.get('12')!.map((f) => (f as { result?: { id?: string } }).result?.id)).toEqual([undefined, '3', '4', undefined]);
    expect(JSON.stringify(actual.byId.get('14'))).toContain('went wrong mid-stream');
    expect(actual.byId.get('17')![1]).toEqual({
      id: 17,
      result: { type: 'data', id: 'r1', data: { json: { id: 'r1', data: { stream_id: 'r1', message: { text: 'sent as is', n: [1, 2, { deep: null }] } } } } },
    });
  });

  it('stops a subscription, refuses a duplicate id, and answers malformed, binary and id-less frames alike', async () => {
    const [theirs, ours] = await both();
    const script = async (url: string) => {
      const first = await converse(
        url,
        [
          s(1, 'forever'),
          s(1, 'forever'),
          '{not json',
          Buffer.from([1, 2, 3]),
          { id: null, method: 'query', params: { path: 'whoami' } },
          { id: 2, method: 'bogus' },
        ],
        // Unauthenticated (no connectionParams): `forever` fails at its middleware.
        (c) => ended(c, [1]) && (c.byId.get('null')?.length ?? 0) >= 4,
      );
      const stopped = await converse(
        `${url}?connectionParams=1`,
        [{ method: 'connectionParams', data: { user: 'ann' } }, s(1, 'forever'), s(1, 'forever'), { id: 1, method: 'subscription.stop' }],
        (c) => ended(c, [1]),
      );
      return { first, stopped };
    };
    const expected = await script(theirs.url);
    const actual = await script(ours.url);
    expect(actual.first.byId).toEqual(expected.first.byId);
    expect(actual.stopped.byId).toEqual(expected.stopped.byId);
    expect(JSON.stringify(actual.stopped.byId.get('1'))).toContain('Duplicate id 1');
    expect((actual.stopped.byId.get('1')!.at(-1) as { result: { type: string } }).result.type).toBe('stopped');
  });

  it('refuses bad connectionParams and a failing createContext with an id-less error, then closes', async () => {
    const failing = async (params: Record<string, string> | null): Promise<Ctx> => {
      if (params?.user === 'mallory') throw new TRPCError({ code: 'FORBIDDEN', message: 'not you' });
      return { user: params?.user ?? null };
    };
    const [theirs, ours] = await both(failing);
    const script = async (url: string) => [
      await converse(
        `${url}?connectionParams=1`,
        [{ method: 'connectionParams', data: { user: 'mallory' } }],
        (c) => c.closedWith !== null && c.byId.has('null'),
      ),
      await converse(`${url}?connectionParams=1`, [{ method: 'connectionParams', data: { user: 7 } }], (c) => c.closedWith !== null && c.byId.has('null')),
      await converse(`${url}?connectionParams=1`, [q(1, 'whoami')], (c) => c.closedWith !== null && c.byId.has('null')),
    ];
    const expected = await script(theirs.url);
    const actual = await script(ours.url);
    expect(actual.map((c) => c.byId)).toEqual(expected.map((c) => c.byId));
    expect(JSON.stringify(actual[0]!.byId.get('null'))).toContain('not you');
  });

  it('serves the typed client (wsLink): calls, batched calls, tracked resume and the reconnect notification', async () => {
    const [, ours] = await both();
    const wsClient = createWSClient({ url: ours.url, WebSocket: WebSocket as never, connectionParams: { user: 'ann' }, retryDelayMs: () => 10 });
    const client = createTRPCClient<typeof router>({ links: [wsLink({ client: wsClient, transformer: superjson })] });
    try {
      const [who, sum, doubled] = await Promise.all([client.whoami.query(), client.add.mutate({ a: 1, b: 2 }), client.doubled.query({ n: 4 })]);
      expect(who).toEqual({ user: 'ann', level: 2, when: new Date(0) });
      expect([sum, doubled]).toEqual([3, 8]);
      await expect(client.conflict.mutate()).rejects.toMatchObject({ message: 'taken', data: { code: 'CONFLICT', formatted: true } });
      const seen: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const sub = client.count.subscribe({ to: 3 }, { onData: (e) => void seen.push(e.data.i), onError: reject, onComplete: () => resolve() });
        void sub;
      });
      expect(seen).toEqual([1, 2, 3]);
      // The reconnect notification: the client opens a new connection and keeps working.
      expect(ours.connections()).toBe(1);
      ours.reconnectAll();
      await vi.waitFor(() => expect(ours.connections()).toBe(2));
      expect(await client.add.mutate({ a: 5, b: 5 })).toBe(10);
    } finally {
      wsClient.close();
    }
  });
});
