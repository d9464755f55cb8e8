/**
 * The hub's WebSocket adapter: tRPC v11's WebSocket wire protocol (what `@trpc/client`'s wsLink
 * speaks, docs/wire-protocol.md) served from the router, written for the hub's hot path.
 *
 * It answers exactly as `@trpc/server/adapters/ws` 11.25 does — connectionParams first when the
 * URL says `connectionParams=1`, batched request arrays, `subscription.stop`, `started` / `stopped`
 * / `tracked` events with `lastEventId` merged into the input, the router's error formatter and
 * transformer, PING/PONG keepalive, `reconnect` notifications — and what its protocol test
 * (test/hub/wire-protocol.test.ts) checks. What it leaves out is per-call weight the hub paid on
 * every message (measured: a sixth of its CPU): an AbortController and a promise race per call and
 * per event, explicit-resource-management scaffolding, and object spreads through helper
 * functions at every middleware level and on every response.
 *
 * Procedures run through their own middleware list (`procedure._def.middlewares`: ours, the input
 * parser, the resolver) with tRPC's `next()` contract — ctx and input overrides, a thrown error
 * becoming `{ ok: false }` — built from plain object literals. A procedure without that list (a
 * future tRPC) is called through its public call signature instead.
 */
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { WebSocket, WebSocketServer } from 'ws';
import { TRPCError, getErrorShape, getTRPCErrorFromUnknown, isTrackedEnvelope, type AnyTRPCRouter } from '@trpc/server';
import { handleKeepAlive } from '@trpc/server/adapters/ws';
import { parseTRPCMessage } from '@trpc/server/rpc';
import { rawJsonOf } from '../protocol/json.js';

const OPEN = 1;
type CallType = 'query' | 'mutation' | 'subscription';

/** What a tRPC middleware receives (the fields tRPC 11 passes; `next` continues the chain). */
interface MiddlewareOpts {
  ctx: unknown;
  type: CallType;
  path: string;
  input: unknown;
  getRawInput: () => Promise<unknown>;
  meta: unknown;
  signal: AbortSignal | undefined;
  batchIndex: number;
  next: (opts?: { ctx?: object; input?: unknown; getRawInput?: () => Promise<unknown> }) => Promise<MiddlewareResult>;
}
interface MiddlewareResult {
  ok: boolean;
  data?: unknown;
  error?: TRPCError;
  marker: string;
}
type Middleware = (opts: MiddlewareOpts) => Promise<MiddlewareResult>;
interface ProcedureDef {
  type: CallType;
  meta?: unknown;
  middlewares?: Middleware[];
}
type Procedure = ((opts: Omit<MiddlewareOpts, 'next' | 'meta' | 'input'>) => Promise<unknown>) & { _def: ProcedureDef };
interface Transformer {
  input: { deserialize(v: unknown): unknown };
  output: { serialize(v: unknown): unknown };
}

export interface WireAdapterOptions<TContext> {
  wss: WebSocketServer;
  router: AnyTRPCRouter;
  createContext: (opts: { req: IncomingMessage; socket: WebSocket; connectionParams: Record<string, string> | null }) => Promise<TContext>;
  /** Application PING/PONG (tRPC's `handleKeepAlive`). */
  keepAlive?: { enabled: boolean; pingMs?: number; pongWaitMs?: number };
  /** A failure of the adapter itself (an error that could not be formatted or sent). Default: console.error. */
  onInternalError?: (err: unknown) => void;
  /** Subscriptions one connection may have open at once; past it TOO_MANY_REQUESTS. Default 64. */
  maxSubscriptions?: number;
  /**
   * Queries and mutations of one connection that run at once (however many frames and batches
   * they came in); the rest wait their turn, in order. Default 32.
   */
  maxConcurrentCalls?: number;
  /** Calls of one connection waiting for their turn; past it TOO_MANY_REQUESTS. Default 10 000. */
  maxQueuedCalls?: number;
  /** Bytes of frames whose calls wait their turn on one connection; past it TOO_MANY_REQUESTS. Default 64 MiB. */
  maxQueuedCallBytes?: number;
  /**
   * Called once a connection has its context; may return a cleanup called when it closes. The
   * connection's handle ends all its subscriptions with an error (a revoked token).
   */
  onContext?: (ctx: TContext, connection: ConnectionHandle) => (() => void) | void;
}

/** What `onContext` may do with a connection. */
export interface ConnectionHandle {
  /** Ends every open subscription of the connection with `error` (sent as each one's error). */
  endSubscriptions(error: TRPCError): void;
  /** The connection's open subscriptions. */
  readonly subscriptions: number;
}

export interface WireAdapter {
  /** Tells every connected client to reconnect (tRPC's `{ id: null, method: 'reconnect' }`). */
  broadcastReconnectNotification(): void;
}

const MIDDLEWARE_MARKER = 'middlewareMarker';

/** Runs a procedure's middleware list from `index`, as tRPC's `callRecursive` does. */
async function runChain(middlewares: Middleware[], index: number, call: Omit<MiddlewareOpts, 'next'>): Promise<MiddlewareResult> {
  try {
    const middleware = middlewares[index]!;
    return await middleware({
      ctx: call.ctx,
      type: call.type,
      path: call.path,
      input: call.input,
      getRawInput: call.getRawInput,
      meta: call.meta,
      signal: call.signal,
      batchIndex: call.batchIndex,
      next: (next) =>
        runChain(middlewares, index + 1, {
          ctx: next?.ctx ? { ...(call.ctx as object), ...next.ctx } : call.ctx,
          type: call.type,
          path: call.path,
          input: next && 'input' in next ? next.input : call.input,
          getRawInput: next?.getRawInput ?? call.getRawInput,
          meta: call.meta,
          signal: call.signal,
          batchIndex: call.batchIndex,
        }),
    });
  } catch (cause) {
    return { ok: false, error: getTRPCErrorFromUnknown(cause), marker: MIDDLEWARE_MARKER };
  }
}

/** Calls a procedure with tRPC's semantics: resolves its data or throws its TRPCError. */
export async function invokeProcedure(procedure: Procedure, call: Omit<MiddlewareOpts, 'next' | 'meta'>): Promise<unknown> {
  const middlewares = procedure._def.middlewares;
  if (!Array.isArray(middlewares) || middlewares.length === 0) {
    return procedure({ ctx: call.ctx, type: call.type, path: call.path, getRawInput: call.getRawInput, signal: call.signal, batchIndex: call.batchIndex });
  }
  const result = await runChain(middlewares, 0, { ...call, meta: procedure._def.meta });
  if (!result) throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'No result from middlewares - did you forget to `return next()`?' });
  if (!result.ok) throw result.error!;
  return result.data;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAbortError(err: unknown): boolean {
  return isObject(err) && err['name'] === 'AbortError';
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return isObject(value) && Symbol.asyncIterator in value;
}

function connectionParamsOf(raw: unknown): Record<string, string> | null {
  try {
    if (raw === null) return null;
    if (!isObject(raw)) throw new Error('Expected object');
    const bad = Object.entries(raw).filter(([, value]) => typeof value !== 'string');
    if (bad.length > 0)
      throw new Error(`Expected connectionParams to be string values. Got ${bad.map(([key, value]) => `${key}: ${typeof value}`).join(', ')}`);
    return raw as Record<string, string>;
  } catch (cause) {
    throw new TRPCError({ code: 'PARSE_ERROR', message: 'Invalid connection params shape', cause });
  }
}

/** What the client gets when its error cannot be formatted: nothing an error formatter would hide. */
const FALLBACK_ERROR_SHAPE = { code: -32603, message: 'Internal server error', data: { code: 'INTERNAL_SERVER_ERROR', httpStatus: 500 } };

type RequestId = number | string | null;

/**
 * Stands in for a value whose JSON text is already known (protocol/json.ts `withRawJson`: a
 * message's envelope, serialized once when it was sealed) while the rest of an event frame is
 * serialized; the text is then put in its place. Random per process, and only ever next to
 * hub-made fields (stream ids, flags), never next to client text.
 */
const RAW_PLACEHOLDER = `raw-json:${randomBytes(16).toString('hex')}`;
const RAW_PLACEHOLDER_JSON = JSON.stringify(RAW_PLACEHOLDER);

/**
 * A subscription event's data with one top-level value whose JSON text is known: that value
 * replaced by the placeholder, and its text. Null when there is none.
 */
function splitRawJson(data: unknown): { rest: Record<string, unknown>; raw: string } | null {
  if (!isObject(data)) return null;
  for (const key in data) {
    const raw = rawJsonOf(data[key]);
    if (raw !== undefined) return { rest: { ...data, [key]: RAW_PLACEHOLDER }, raw };
  }
  return null;
}

/** Serves `router` on every connection `wss` accepts. */
export function serveWebSocket<TContext>(opts: WireAdapterOptions<TContext>): WireAdapter {
  const { router } = opts;
  const config = (router._def as unknown as { _config: { transformer: Transformer } })._config;
  const transformer = config.transformer;
  const procedures = router._def.procedures as Record<string, Procedure | undefined>;
  const internalError = opts.onInternalError ?? ((err: unknown) => console.error('[skynet-linker ws adapter]', err));

  const maxSubscriptions = opts.maxSubscriptions ?? 64;
  const maxConcurrentCalls = opts.maxConcurrentCalls ?? 32;
  const maxQueuedCalls = opts.maxQueuedCalls ?? 10_000;
  const maxQueuedCallBytes = opts.maxQueuedCallBytes ?? 64 * 1024 * 1024;

  opts.wss.on('connection', (client: WebSocket, req: IncomingMessage) => {
    const subscriptions = new Map<RequestId, AbortController>();
    /** Subscriptions ended by the hub with an error (said instead of `stopped`). */
    const endedWith = new Map<RequestId, TRPCError>();
    const connection = new AbortController();
    let ctx: TContext | undefined;
    let cleanup: (() => void) | void;
    // The work one connection can start is bounded: calls beyond maxConcurrentCalls wait in order.
    let running = 0;
    const waiting: (() => void)[] = [];
    /** Bytes of the frames the waiting calls came in (each call counts its share of its frame). */
    let waitingBytes = 0;
    const runNext = () => {
      running--;
      const next = waiting.shift();
      if (next && !connection.signal.aborted) next();
    };
    if (opts.keepAlive?.enabled) handleKeepAlive(client, opts.keepAlive.pingMs, opts.keepAlive.pongWaitMs);

    const send = (frame: unknown): void => {
      if (client.readyState === OPEN) client.send(JSON.stringify(frame));
    };

    const errorShape = (error: TRPCError, type: CallType | 'unknown', path: string | undefined, input: unknown): unknown => {
      try {
        return transformer.output.serialize(
          getErrorShape({
            config: (router._def as unknown as { _config: Parameters<typeof getErrorShape>[0]['config'] })._config,
            error,
            type,
            path,
            input,
            ctx,
          }),
        );
      } catch (cause) {
        internalError(cause);
        return transformer.output.serialize(FALLBACK_ERROR_SHAPE);
      }
    };

    const sendError = (
      id: RequestId,
      jsonrpc: '2.0' | undefined,
      cause: unknown,
      type: CallType | 'unknown',
      path: string | undefined,
      input: unknown,
    ): void => {
      const error = getTRPCErrorFromUnknown(cause);
      try {
        send({ id, jsonrpc, error: errorShape(error, type, path, input) });
      } catch (err) {
        internalError(err);
        try {
          send({ id, jsonrpc, error: transformer.output.serialize(FALLBACK_ERROR_SHAPE) });
        } catch {
          // Nothing more can be said on this connection.
        }
      }
    };

    const createCtx = async (connectionParams: () => Record<string, string> | null): Promise<{ ok: true } | { ok: false; error: TRPCError }> => {
      try {
        ctx = await opts.createContext({ req, socket: client, connectionParams: connectionParams() });
        if (opts.onContext && !connection.signal.aborted) {
          cleanup = opts.onContext(ctx, {
            endSubscriptions(error) {
              for (const [id, abort] of subscriptions) {
                endedWith.set(id, error);
                abort.abort();
              }
            },
            get subscriptions() {
              return subscriptions.size;
            },
          });
        }
        return { ok: true };
      } catch (cause) {
        const error = getTRPCErrorFromUnknown(cause);
        sendError(null, undefined, error, 'unknown', undefined, undefined);
        setImmediate(() => client.close());
        return { ok: false, error };
      }
    };

    let ctxReady: Promise<{ ok: true } | { ok: false; error: TRPCError }> | null =
      new URL(req.url ?? '/', 'http://hub').searchParams.get('connectionParams') === '1' ? null : createCtx(() => null);

    const respond = (id: RequestId, jsonrpc: '2.0' | undefined, result: Record<string, unknown>): void => {
      send(jsonrpc === undefined ? { id, result } : { id, jsonrpc, result });
    };

    /** Streams a subscription's events until it ends, fails (answered with the error) or is stopped. */
    async function runSubscription(
      id: RequestId,
      jsonrpc: '2.0' | undefined,
      iterable: AsyncIterable<unknown>,
      abort: AbortController,
      path: string,
      input: unknown,
    ): Promise<void> {
      const iterator = iterable[Symbol.asyncIterator]();
      // The pending next() is not raced with a long-lived promise (that would pile up reactions
      // on it): stopping resolves the one waiter of the moment.
      let stop: ((value: 'abort') => void) | null = null;
      const onAbort = () => stop?.('abort');
      abort.signal.addEventListener('abort', onAbort);
      let completed = false;
      try {
        if (abort.signal.aborted || client.readyState !== OPEN) return;
        respond(id, jsonrpc, { type: 'started' });
        for (;;) {
          const next = await new Promise<IteratorResult<unknown> | 'abort'>((resolve, reject) => {
            stop = resolve;
            iterator.next().then(resolve, reject);
          });
          stop = null;
          if (next === 'abort') break;
          if (next.done) {
            completed = true;
            break;
          }
          const value = next.value;
          const [eventId, data] = isTrackedEnvelope(value) ? value : [undefined, value];
          const split = splitRawJson(data);
          const payload = split ? split.rest : data;
          const result =
            eventId === undefined
              ? { type: 'data', data: transformer.output.serialize(payload) }
              : { type: 'data', id: eventId, data: transformer.output.serialize({ id: eventId, data: payload }) };
          if (!split) {
            respond(id, jsonrpc, result);
            continue;
          }
          if (client.readyState !== OPEN) continue;
          const text = JSON.stringify(jsonrpc === undefined ? { id, result } : { id, jsonrpc, result });
          const at = text.lastIndexOf(RAW_PLACEHOLDER_JSON);
          if (at < 0) throw new Error('ws adapter: raw JSON placeholder lost in serialization');
          client.send(text.slice(0, at) + split.raw + text.slice(at + RAW_PLACEHOLDER_JSON.length));
        }
      } catch (cause) {
        if (!abort.signal.aborted) sendError(id, jsonrpc, cause, 'subscription', path, input);
        else if (!isAbortError(getTRPCErrorFromUnknown(cause).cause)) internalError(cause);
      } finally {
        abort.signal.removeEventListener('abort', onAbort);
        if (!completed) {
          abort.abort();
          // A generator waiting at an await finishes its step first; its cleanup runs after.
          void Promise.resolve()
            .then(() => iterator.return?.())
            .catch((err: unknown) => {
              if (!isAbortError(err) && !isAbortError(getTRPCErrorFromUnknown(err).cause)) internalError(err);
            });
        }
      }
    }

    async function handleRequest(
      msg: ReturnType<typeof parseTRPCMessage>,
      batchIndex: number,
      ready: NonNullable<typeof ctxReady>,
      bytes: number,
    ): Promise<void> {
      const { id, jsonrpc } = msg;
      if (id === null) {
        sendError(null, jsonrpc, new TRPCError({ code: 'PARSE_ERROR', message: '`id` is required' }), 'unknown', undefined, undefined);
        return;
      }
      if (msg.method === 'subscription.stop') {
        subscriptions.get(id)?.abort();
        return;
      }
      const { path, lastEventId } = msg.params;
      let input = msg.params.input;
      const type = msg.method;
      if (lastEventId !== undefined) {
        if (isObject(input)) input = { ...input, lastEventId };
        else input ??= { lastEventId };
      }
      if (type === 'subscription' && subscriptions.has(id)) {
        sendError(id, jsonrpc, new TRPCError({ code: 'BAD_REQUEST', message: `Duplicate id ${id}` }), type, path, input);
        return;
      }
      if (type === 'subscription' && subscriptions.size >= maxSubscriptions) {
        sendError(
          id,
          jsonrpc,
          new TRPCError({
            code: 'TOO_MANY_REQUESTS',
            message: `a connection may have at most ${maxSubscriptions} subscriptions open (limits.max_subscriptions_per_connection); stop one first`,
          }),
          type,
          path,
          input,
        );
        return;
      }
      if (type !== 'subscription') {
        if (running >= maxConcurrentCalls) {
          if (waiting.length >= maxQueuedCalls || waitingBytes + bytes > maxQueuedCallBytes) {
            const what =
              waiting.length >= maxQueuedCalls ? `${waiting.length} calls are already waiting` : `${waitingBytes} bytes of calls are already waiting`;
            sendError(
              id,
              jsonrpc,
              new TRPCError({
                code: 'TOO_MANY_REQUESTS',
                message: `${what} on this connection (limits.max_queued_calls); wait for answers before sending more`,
              }),
              type,
              path,
              input,
            );
            return;
          }
          waitingBytes += bytes;
          await new Promise<void>((resolve) => waiting.push(resolve));
          waitingBytes -= bytes;
          // The connection closed while this call waited: it is dropped, nothing runs.
          if (connection.signal.aborted) return;
        }
        running++;
      }
      const abort = type === 'subscription' ? new AbortController() : null;
      if (abort) subscriptions.set(id, abort);
      try {
        const status = await ready;
        if (!status.ok) throw status.error;
        // Stopped (or gone) before it started: only `stopped` is said.
        if (abort && (abort.signal.aborted || client.readyState !== OPEN)) {
          abort.abort();
          respond(id, jsonrpc, { type: 'stopped' });
          return;
        }
        const procedure = procedures[path];
        if (!procedure || procedure._def.type !== type) throw new TRPCError({ code: 'NOT_FOUND', message: `No "${type}"-procedure on path "${path}"` });
        const rawInput = input;
        const result = await invokeProcedure(procedure, {
          ctx,
          type,
          path,
          input: undefined,
          getRawInput: async () => rawInput,
          signal: abort?.signal ?? connection.signal,
          batchIndex,
        });
        if (!abort) {
          if (isAsyncIterable(result)) {
            throw new TRPCError({
              code: 'UNSUPPORTED_MEDIA_TYPE',
              message: `Cannot return an async iterable or observable from a ${type} procedure with WebSockets`,
            });
          }
          respond(id, jsonrpc, { type: 'data', data: transformer.output.serialize(result) });
          return;
        }
        if (!isAsyncIterable(result)) {
          throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: `Subscription ${path} did not return an observable or a AsyncGenerator` });
        }
        await runSubscription(id, jsonrpc, result, abort, path, input);
        const ended = endedWith.get(id);
        if (ended) sendError(id, jsonrpc, ended, type, path, input);
        else respond(id, jsonrpc, { type: 'stopped' });
      } catch (cause) {
        const error = getTRPCErrorFromUnknown(cause);
        // A subscription stopped while it was being set up gives up with an AbortError: only
        // `stopped` is said. Any other failure to start is answered with its error alone.
        const cancelled = abort?.signal.aborted && error.code === 'INTERNAL_SERVER_ERROR' && isAbortError(error.cause);
        const ended = endedWith.get(id);
        if (ended) sendError(id, jsonrpc, ended, type, path, input);
        else if (cancelled) respond(id, jsonrpc, { type: 'stopped' });
        else sendError(id, jsonrpc, error, type, path, input);
      } finally {
        if (abort && subscriptions.get(id) === abort) subscriptions.delete(id);
        if (abort) endedWith.delete(id);
        else runNext();
      }
    }

    client.on('message', (raw: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (!Buffer.isBuffer(raw)) {
        sendError(
          null,
          undefined,
          new TRPCError({ code: 'UNPROCESSABLE_CONTENT', message: 'Unexpected WebSocket message format' }),
          'unknown',
          undefined,
          undefined,
        );
        return;
      }
      const text = isBinary ? null : raw.toString('utf8');
      if (text === 'PONG') return;
      if (text === 'PING') {
        client.send('PONG');
        return;
      }
      /** The frame's JSON; a binary frame is refused as tRPC's JSON encoder refuses it. */
      const decode = (): unknown => {
        if (text === null) throw new Error('jsonEncoder received binary data. JSON uses text frames. Use a binary encoder for binary data.');
        return JSON.parse(text);
      };
      if (!ctxReady) {
        ctxReady = createCtx(() => {
          let msg: unknown;
          try {
            msg = decode();
            if (!isObject(msg)) throw new Error('Message was not an object');
          } catch (cause) {
            throw new TRPCError({ code: 'PARSE_ERROR', message: 'Malformed TRPCConnectionParamsMessage', cause });
          }
          return connectionParamsOf(msg.data);
        });
        return;
      }
      let messages: ReturnType<typeof parseTRPCMessage>[];
      try {
        const json = decode();
        messages = Array.isArray(json) ? json.map((item) => parseTRPCMessage(item, transformer as never)) : [parseTRPCMessage(json, transformer as never)];
      } catch (cause) {
        sendError(null, undefined, new TRPCError({ code: 'PARSE_ERROR', cause }), 'unknown', undefined, undefined);
        return;
      }
      const ready = ctxReady;
      const share = Math.ceil(raw.length / messages.length);
      for (let i = 0; i < messages.length; i++) handleRequest(messages[i]!, i, ready, share).catch(internalError);
    });

    client.on('error', () => {
      // ws emits the close that follows: that is where work is cancelled.
    });
    client.once('close', () => {
      for (const abort of subscriptions.values()) abort.abort();
      subscriptions.clear();
      connection.abort();
      // Calls still waiting their turn are dropped (their connection is gone).
      for (const wake of waiting.splice(0)) wake();
      cleanup?.();
    });
  });

  return {
    broadcastReconnectNotification() {
      const frame = JSON.stringify({ id: null, method: 'reconnect' });
      for (const client of opts.wss.clients) if (client.readyState === OPEN) client.send(frame);
    },
  };
}
