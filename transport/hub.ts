/**
 * One HTTP(S) server and port: tRPC over WebSocket at /ws, tRPC over HTTP (+SSE subscriptions)
 * at /trpc, GET /health and GET /metrics. `createHub` builds everything from options so tests
 * start a hub on port 0 in a few lines; `close()` drains and tells clients to reconnect.
 */
import { DEFAULT_GUARD_LIMITS, type GuardLimits } from '../memory/guards.js';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { pino, type Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../protocol/envelope.js';
import { DEFAULT_CHANNEL } from '../protocol/ids.js';
import { createSharedMemory, type SharedMemory } from '../memory/index.js';
import { DEFAULT_REPLY_WINDOW_MS, type StreamLimits } from '../memory/messages.js';
import { plainText, type ValueSealer } from '../memory/sealing.js';
import { EmbeddedStore } from '../memory/embedded/store.js';
import type { Store } from '../memory/store.js';
import type { Scope } from '../memory/tokens.js';
import { appRouter } from '../router/app.js';
import type { HubServices, HubSettings, RotateKeys } from '../router/context.js';
import { createHubMetrics } from '../router/metrics.js';
import { createRateLimiter, type RateLimitOptions } from '../router/rate-limit.js';
import { resolveContext } from './auth.js';
import { StoreBus } from './bus.js';
import { RevocationWatcher } from './revocation.js';
import { createConnectionGate } from './gate.js';
import { createLoadMonitor } from './load.js';
import { NodePresence } from './presence.js';
import { socketWrites } from './socket-writes.js';
import { serveWebSocket } from './ws-adapter.js';

export interface HubOptions {
  /** Where state lives. Default: a fresh embedded store. The hub closes it on close(). */
  store?: Store;
  /** Seals values at rest. Default: plain text. */
  sealer?: ValueSealer;
  /** Seal each value on the embedded store too, not only its snapshots (SharedMemoryOptions.sealInMemory). */
  sealInMemory?: boolean;
  /** Rotates the at-rest key ring (admin.keysRotate). */
  rotateKeys?: RotateKeys;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Port. Default 8000; 0 picks a free one. */
  port?: number;
  /** Serve HTTPS/WSS with this certificate and key (PEM file paths). */
  tls?: { certPath: string; keyPath: string };
  /** Origins allowed to call /trpc from a browser. Default: none (same-origin only). */
  corsOrigins?: string[];
  /** Largest `payload.content` in bytes. Default 256 KiB. */
  maxPayloadBytes?: number;
  /** Largest WebSocket frame / HTTP body in bytes. Default 2 × maxPayloadBytes + 64 KiB. */
  maxFrameBytes?: number;
  /** Per-agent send rate. Default 1000/s with a burst of 2000; perSecond 0 disables. */
  rateLimit?: RateLimitOptions;
  /** Auth off. Only for experiments: logs a warning at start. Default false. */
  insecureNoAuth?: boolean;
  /** How stale a WebSocket connection's token check may get before a call checks it again (revocation). Default 5 000 ms; 0 = every call. */
  tokenRecheckMs?: number;
  /** WebSocket keepalive: application PING/PONG. Default enabled, 30 000 ms / 10 000 ms. */
  keepAlive?: { enabled: boolean; pingMs?: number; pongWaitMs?: number };
  /** How long an agent stays online without a refresh. Default 60 000 ms. */
  presenceTtlMs?: number;
  /** Stream caps. Default 1000 each. */
  limits?: Partial<StreamLimits>;
  /** Bytes a socket may hold unsent before the hub pauses a subscription. Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Live messages queued per subscription before falling back to the store. Default 10 000. */
  maxQueuedMessages?: number;
  /** How long a subscriber's socket may stay over maxBufferedBytes before the hub closes it. Default 30 000 ms. */
  slowConsumerTimeoutMs?: number;
  /**
   * Bytes a WebSocket may hold unsent before the hub closes it at once, reading or not (replies
   * pile up when a client calls faster than it reads). Keep it above the largest reply a client
   * may ask for (a `messages.history` page of large messages). Default 64 MiB.
   */
  maxConnectionBufferBytes?: number;
  /** Tokens to make sure exist at start (from config.yaml), stored hashed. */
  tokens?: { token: string; agent_id: string; scopes: Scope[]; agent_type?: string }[];
  /**
   * Graceful close: how long to wait for connected clients to move away (they are told to
   * reconnect, finish what they have in flight on this node, then close) before the remaining
   * connections are closed. Default 2 000 ms.
   */
  drainTimeoutMs?: number;
  /** Loop guards: hop limit, session budget, pair window (see docs/loop-guards.md). Defaults in DEFAULT_GUARD_LIMITS. */
  guards?: Partial<GuardLimits>;
  /** Node id in logs, metrics and presence. Default a random id. */
  nodeId?: string;
  logger?: Logger;
  /** How long a message can be answered with a reply. Default 24 hours. */
  replyWindowMs?: number;
  /** Largest agent metadata, JSON bytes. Default 16 KiB. */
  maxMetadataBytes?: number;
  /** Largest context document, JSON bytes. Default 1 MiB. */
  maxContextBytes?: number;
  /** Subscriptions one WebSocket may have open. Default 64. */
  maxSubscriptionsPerConnection?: number;
  /** Queries and mutations of one WebSocket running at once (the rest wait in order). Default 32. */
  maxConcurrentCalls?: number;
  /** Calls of one WebSocket waiting their turn before TOO_MANY_REQUESTS (also at most 64 MiB of their frames). Default 10 000. */
  maxQueuedCalls?: number;
  /**
   * Per-agent rate of every procedure but messages.send (which has `rateLimit`): queries, and
   * mutations plus subscription starts. Default 500 and 200 per second, bursts twice that; 0 disables.
   */
  callRateLimit?: { readsPerSecond?: number; writesPerSecond?: number };
  /** A WebSocket without valid credentials by then is closed. Default 10 000 ms. */
  authTimeoutMs?: number;
  /** WebSockets from one address that have not authenticated yet; past it upgrades get 429. Default 256. */
  maxUnauthenticatedPerAddress?: number;
  /** Event-loop delay past which /health says the hub is overloaded. Default 1 000 ms. */
  overloadDelayMs?: number;
}

export interface Hub {
  /** ws://host:port/ws */
  readonly url: string;
  /** http://host:port */
  readonly httpUrl: string;
  readonly port: number;
  readonly nodeId: string;
  readonly memory: SharedMemory;
  readonly services: HubServices;
  /**
   * Graceful stop: stop listening and refuse new WebSocket upgrades, tell clients to reconnect
   * (elsewhere: another node, or this one once restarted), wait up to `drainTimeoutMs` for them to
   * leave (a client closes its old connection once its in-flight calls are answered), close what
   * is left, then close the store.
   */
  close(opts?: { keepStore?: boolean; drainTimeoutMs?: number }): Promise<void>;
}

function corsHeaders(req: IncomingMessage, res: ServerResponse, allowed: string[]): void {
  const origin = req.headers.origin;
  if (!origin || !(allowed.includes(origin) || allowed.includes('*'))) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Vary', 'Origin');
  res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, trpc-accept, last-event-id');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
}

export async function createHub(opts: HubOptions = {}): Promise<Hub> {
  const nodeId = opts.nodeId ?? `node-${randomUUID().slice(0, 8)}`;
  const logger = opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info', base: { node: nodeId } });
  const store: Store = opts.store ?? new EmbeddedStore();
  const metrics = createHubMetrics();
  const memory = createSharedMemory({
    store,
    sealer: opts.sealer ?? plainText,
    sealInMemory: opts.sealInMemory,
    limits: opts.limits,
    presenceTtlMs: opts.presenceTtlMs,
    nodeId,
    contextLimits: opts.maxContextBytes === undefined ? undefined : { maxDocumentBytes: opts.maxContextBytes },
    onCorrupt: (record) => {
      metrics.corruptRecords.inc({ kind: record.kind });
      logger.error(
        { event: 'record_integrity_failed', kind: record.kind, id: record.id, reason: record.reason },
        'a stored record failed its integrity check (changed outside the hub?): refused',
      );
    },
  });
  const maxPayloadBytes = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const settings: HubSettings = {
    maxPayloadBytes,
    defaultChannel: DEFAULT_CHANNEL,
    insecureNoAuth: opts.insecureNoAuth ?? false,
    maxBufferedBytes: opts.maxBufferedBytes ?? 4 * 1024 * 1024,
    maxQueuedMessages: opts.maxQueuedMessages ?? 10_000,
    slowConsumerTimeoutMs: opts.slowConsumerTimeoutMs ?? 30_000,
    maxConnectionBufferBytes: opts.maxConnectionBufferBytes ?? 64 * 1024 * 1024,
    presenceRefreshMs: Math.max(100, Math.floor((opts.presenceTtlMs ?? 60_000) / 3)),
    tokenRecheckMs: opts.tokenRecheckMs ?? 5_000,
    replyWindowMs: opts.replyWindowMs ?? DEFAULT_REPLY_WINDOW_MS,
    maxMetadataBytes: opts.maxMetadataBytes ?? 16 * 1024,
    guards: { ...DEFAULT_GUARD_LIMITS, ...opts.guards },
  };
  const bus = new StoreBus(nodeId, store, logger);
  await bus.start();
  const presence = new NodePresence(nodeId, memory.agents, metrics, logger, settings.presenceRefreshMs);
  presence.start();
  const services: HubServices = {
    memory,
    bus,
    logger,
    metrics,
    rateLimiter: createRateLimiter(opts.rateLimit ?? { perSecond: 1000 }),
    callLimits: {
      reads: createRateLimiter({ perSecond: opts.callRateLimit?.readsPerSecond ?? 500 }),
      writes: createRateLimiter({ perSecond: opts.callRateLimit?.writesPerSecond ?? 200 }),
    },
    settings,
    rotateKeys: opts.rotateKeys ?? null,
    presence,
  };

  for (const t of opts.tokens ?? []) {
    await memory.tokens.register(t.token, t.agent_id, t.scopes);
    if (!(await memory.agents.get(t.agent_id))) {
      await memory.agents.upsert({ agent_id: t.agent_id, agent_type: t.agent_type });
      await memory.channels.join(settings.defaultChannel, t.agent_id);
    }
  }
  if (settings.insecureNoAuth) {
    logger.warn(
      { event: 'insecure_no_auth' },
      'AUTH IS OFF (--insecure-no-auth): anyone who can reach this port can act as any agent. Never use this outside experiments.',
    );
  }

  const maxFrameBytes = opts.maxFrameBytes ?? maxPayloadBytes * 2 + 64 * 1024;
  const trpcHandler = createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    maxBodySize: maxFrameBytes,
    createContext: ({ req, info }) => resolveContext(services, { req, connectionParams: info.connectionParams }),
  });
  const cors = opts.corsOrigins ?? [];
  const load = createLoadMonitor({ overloadDelayMs: opts.overloadDelayMs ?? 1_000 });
  const revocation = new RevocationWatcher(memory.tokens, settings.tokenRecheckMs, logger, metrics);
  revocation.start();
  services.revocation = revocation;

  const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    if (url.pathname === '/health' && req.method === 'GET') {
      const health = await load.health(() => store.ping());
      res.writeHead(health.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ...health, store: { kind: store.kind, ...health.store }, node: nodeId }));
      return;
    }
    if (url.pathname === '/metrics' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(await metrics.registry.metrics());
      return;
    }
    if (url.pathname.startsWith('/trpc/')) {
      corsHeaders(req, res, cors);
      if (req.method === 'OPTIONS') {
        res.writeHead(204);
        res.end();
        return;
      }
      trpcHandler(req, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'not found', hint: 'WebSocket at /ws, tRPC over HTTP at /trpc, /health, /metrics' }));
  };

  const server: Server = opts.tls
    ? createHttpsServer({ cert: readFileSync(opts.tls.certPath), key: readFileSync(opts.tls.keyPath) }, (req, res) => void onRequest(req, res))
    : createHttpServer((req, res) => void onRequest(req, res));

  const wss = new WebSocketServer({ noServer: true, maxPayload: maxFrameBytes });
  const gate = createConnectionGate({
    allowedOrigins: cors,
    authTimeoutMs: opts.authTimeoutMs ?? 10_000,
    maxUnauthenticatedPerAddress: opts.maxUnauthenticatedPerAddress ?? 256,
    onRefused: (reason, address) => {
      metrics.connectionsRefused.inc({ reason });
      logger.warn(
        { event: 'connection_refused', reason, address },
        reason === 'auth_timeout' ? 'closed a WebSocket that did not authenticate in time' : 'refused a WebSocket upgrade',
      );
    },
  });
  // Before the tRPC adapter's own listener: every frame it sends goes through this.
  const wrapWrites = socketWrites({
    // Subscriptions pause at maxBufferedBytes (plus at most a frame); replies keep coming while the
    // client calls. Past twice that plus a frame the client must keep reading: a connection that
    // drains nothing for slowConsumerTimeoutMs is closed, as a stalled subscriber is. Past
    // maxConnectionBufferBytes it is closed at once.
    softLimit: () => 2 * settings.maxBufferedBytes + maxFrameBytes,
    stallMs: () => settings.slowConsumerTimeoutMs ?? 30_000,
    hardLimit: () => settings.maxConnectionBufferBytes,
    onTerminate: ({ reason, bufferedAmount }) =>
      logger.warn(
        { event: 'slow_consumer_closed', reason: reason === 'stalled' ? 'unread_replies' : 'connection_buffer_limit', buffered_bytes: bufferedAmount },
        'closed a connection that does not read what it asked for',
      ),
  });
  wss.on('connection', wrapWrites);
  const wsHandler = serveWebSocket({
    wss,
    router: appRouter,
    createContext: ({ req, socket, connectionParams }) => resolveContext(services, { req, socket, connectionParams }),
    keepAlive: { enabled: true, pingMs: 30_000, pongWaitMs: 10_000, ...opts.keepAlive },
    onInternalError: (err) => logger.error({ event: 'ws_adapter_error', err }, 'WebSocket adapter failure'),
    maxSubscriptions: opts.maxSubscriptionsPerConnection ?? 64,
    maxConcurrentCalls: opts.maxConcurrentCalls ?? 32,
    maxQueuedCalls: opts.maxQueuedCalls ?? 10_000,
    onContext: (ctx, connection) => {
      const socket = ctx.socket as unknown as import('ws').WebSocket | null;
      if (ctx.agent && socket) gate.authenticated(socket);
      return revocation.watch(ctx, connection);
    },
  });
  let closing = false;
  let clientsGone: (() => void) | null = null;
  wss.on('connection', (socket, req: IncomingMessage) => {
    metrics.connections.inc();
    gate.opened(socket, req);
    socket.once('close', () => {
      metrics.connections.dec();
      if (wss.clients.size === 0) clientsGone?.();
    });
  });
  // Redis pub/sub keeps nothing for a disconnected subscriber: events published by other nodes
  // while this node's pub/sub connection was down are lost. Clients are told to reconnect, so
  // their subscriptions resume from their last event id and read what they missed from the streams.
  const offResubscribed =
    store.onResubscribed?.(() => {
      void (async () => {
        // Resuming needs the command connection too (it reconnects on its own schedule).
        for (let attempt = 0; !closing && attempt < 100; attempt++) {
          if (
            await store.ping().then(
              () => true,
              () => false,
            )
          )
            break;
          await new Promise((r) => setTimeout(r, 100));
        }
        if (closing) return;
        logger.warn({ event: 'store_resubscribed', clients: wss.clients.size }, 'Redis pub/sub is back: asking clients to resume their subscriptions');
        wsHandler.broadcastReconnectNotification();
      })();
    }) ?? (() => {});
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://hub').pathname;
    if (closing || path !== '/ws') {
      socket.end(closing ? 'HTTP/1.1 503 Service Unavailable\r\n\r\n' : 'HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    const refused = gate.refuseUpgrade(req);
    if (refused) {
      socket.end(refused);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8000, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const scheme = opts.tls ? 's' : '';
  logger.info({ event: 'hub_listening', port: address.port, store: store.kind, sealing: memory.sealer.enabled }, 'hub listening');

  return {
    url: `ws${scheme}://${host}:${address.port}/ws`,
    httpUrl: `http${scheme}://${host}:${address.port}`,
    port: address.port,
    nodeId,
    memory,
    services,
    async close(closeOpts = {}) {
      if (closing) return;
      closing = true;
      offResubscribed();
      // Stop listening (a load balancer sees the node go) and refuse upgrades on open connections.
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections?.();
      const drainMs = closeOpts.drainTimeoutMs ?? opts.drainTimeoutMs ?? 2_000;
      if (wss.clients.size > 0) wsHandler.broadcastReconnectNotification();
      // Clients told to reconnect can only leave for another node: with none (a single hub, the
      // embedded store) waiting would only hold Ctrl-C for the whole drain timeout.
      if (wss.clients.size > 0 && drainMs > 0 && bus.hasPeers) {
        logger.info({ event: 'hub_draining', clients: wss.clients.size, drain_timeout_ms: drainMs }, 'draining: clients told to reconnect');
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          clientsGone = resolve;
          timer = setTimeout(resolve, drainMs);
          if (wss.clients.size === 0) resolve();
        });
        clearTimeout(timer);
      }
      // Whoever is left resumes from its last event id after reconnecting.
      for (const client of wss.clients) client.close(1012, 'hub restarting: reconnect');
      server.closeAllConnections?.();
      await serverClosed;
      presence.stop();
      revocation.stop();
      load.stop();
      gate.stop();
      await presence.clear();
      wss.close();
      await bus.stop();
      if (!closeOpts.keepStore) await store.close();
      logger.info({ event: 'hub_closed' }, 'hub closed');
    },
  };
}
