/**
 * The typed client: tRPC v11 over WebSocket (default) or HTTP + SSE, superjson on the wire.
 * Imports only the `AppRouter` type from the hub, so it bundles for a browser or a Next.js panel.
 *
 * Over WebSocket the client reconnects by itself (jittered backoff) and resubscribes with the last
 * event id it received, so subscriptions resume without loss; a subscription the hub ends with a
 * server-side error (its Redis is down, a slow consumer cut off) resumes the same way. With several hub nodes, pass them
 * all (`url: [nodeA, nodeB]`): each reconnect goes to the next node in the list, so a node that
 * crashes or shuts down (it tells its clients to reconnect) is left for another one. Mutations in
 * flight when a connection drops fail ("WebSocket closed"): the send may or may not have been
 * stored; retry it with the same `id` and recipients drop the duplicate.
 */
import {
  createTRPCClient,
  createWSClient,
  httpBatchLink,
  httpSubscriptionLink,
  retryLink,
  splitLink,
  TRPCClientError,
  wsLink,
  type TRPCClient,
} from '@trpc/client';
import superjson from 'superjson';
import type { AppRouter } from '../router/app.js';

export type LinkerClient = TRPCClient<AppRouter>;

export interface LinkerClientOptions {
  /**
   * Hub URL: `ws://host:8000/ws` (WebSocket) or `http://host:8000` (HTTP + SSE). Over WebSocket
   * it may be a list of the nodes of one hub (same Redis, prefix and key file): the client starts
   * on the first and moves to the next one in the list each time it reconnects, whether its
   * connection dropped or the node asked it to (graceful shutdown). Subscriptions resume from their
   * last event id on the new node, so moving loses nothing.
   */
  url: string | readonly string[];
  /** The agent's token (sent as connectionParams on WebSocket, Authorization on HTTP). */
  token?: string;
  /** Identity when the hub runs with --insecure-no-auth. */
  agentId?: string;
  /** Announced agent type (e.g. planner, researcher); updates the registry. */
  agentType?: string;
  /** `WebSocket` implementation for Node 20 (`import WebSocket from 'ws'`). Default: the global one. */
  WebSocket?: unknown;
  /** `EventSource` implementation for SSE in Node (`eventsource` package). Default: the global one. */
  EventSource?: unknown;
  /** Reconnect delay after the n-th failed attempt. Default: full-jitter backoff 100 ms .. 5 s. */
  retryDelayMs?: (attempt: number) => number;
  onOpen?: () => void;
  onClose?: (cause?: { code?: number }) => void;
}

export interface LinkerConnection {
  trpc: LinkerClient;
  /** Closes the WebSocket (no-op over HTTP). */
  close(): Promise<void>;
}

/** Full-jitter exponential backoff (pure): a random delay in [0, min(cap, base·2^attempt)]. */
export function backoffDelay(attempt: number, opts: { baseMs?: number; capMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? 100;
  const cap = opts.capMs ?? 5_000;
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 20));
  return Math.max(base / 2, Math.floor((opts.random ?? Math.random)() * ceiling));
}

/**
 * Errors after which a subscription resumes by itself (WebSocket): failures on the hub's side, not
 * the caller's. A store outage inside a running stream arrives as SERVICE_UNAVAILABLE; an
 * unexpected failure (INTERNAL_SERVER_ERROR) is retried too, since resuming from the last event id
 * is always safe; retries back off up to 5 s, like the agent runtime's.
 */
const RESUMABLE_CODES = new Set(['SERVICE_UNAVAILABLE', 'TIMEOUT', 'INTERNAL_SERVER_ERROR']);

function errorCodeOf(error: unknown): string | undefined {
  return error instanceof TRPCClientError ? (error.data as { code?: string } | undefined)?.code : undefined;
}

function connectionParams(opts: LinkerClientOptions): Record<string, string> {
  const params: Record<string, string> = {};
  if (opts.token) params.token = opts.token;
  if (opts.agentId) params.agent_id = opts.agentId;
  if (opts.agentType) params.agent_type = opts.agentType;
  return params;
}

/**
 * The `url` option of the WebSocket client: the one URL, or for a list a function that returns
 * the first URL for the first connection and the next one (round robin) for every later one.
 */
export function failoverUrl(urls: readonly string[]): string | (() => string) {
  if (urls.length === 1) return urls[0]!;
  let index = -1;
  return () => {
    index = (index + 1) % urls.length;
    return urls[index]!;
  };
}

export function createLinkerClient(opts: LinkerClientOptions): LinkerConnection {
  const urls = typeof opts.url === 'string' ? [opts.url] : [...opts.url];
  if (urls.length === 0) throw new TypeError('createLinkerClient: url is an empty list');
  const isWs = urls.every((u) => /^wss?:\/\//.test(u));
  if (!isWs && urls.length > 1) throw new TypeError('createLinkerClient: a list of URLs is supported over WebSocket (ws:// or wss://) only');
  if (isWs) {
    const wsClient = createWSClient({
      url: failoverUrl(urls),
      WebSocket: opts.WebSocket as typeof WebSocket | undefined,
      connectionParams: connectionParams(opts),
      retryDelayMs: opts.retryDelayMs ?? ((n) => backoffDelay(n)),
      onOpen: opts.onOpen,
      onClose: opts.onClose,
    });
    const trpc = createTRPCClient<AppRouter>({
      links: [
        // A subscription the hub ends with a transient error (its store is briefly unreachable,
        // a slow consumer cut off) resubscribes from its last event id, like after a lost socket.
        retryLink({
          retry: ({ op, error }) => op.type === 'subscription' && RESUMABLE_CODES.has(errorCodeOf(error) ?? ''),
          retryDelayMs: opts.retryDelayMs ?? ((n) => backoffDelay(n)),
        }),
        wsLink({ client: wsClient, transformer: superjson }),
      ],
    });
    return { trpc, close: async () => wsClient.close() };
  }
  const base = urls[0]!.replace(/\/+$/, '').replace(/\/trpc$/, '');
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.agentId) headers['x-agent-id'] = opts.agentId;
  const calls = httpBatchLink({ url: `${base}/trpc`, transformer: superjson, headers });
  // An SSE URL never carries the token: each (re)connection asks for a single-use ticket first
  // (auth.ticket, over HTTP with the Authorization header) and puts that in the URL.
  const ticketClient = createTRPCClient<AppRouter>({ links: [calls] });
  const sseParams = async (): Promise<Record<string, string>> => {
    const params = connectionParams(opts);
    if (!params.token) return params;
    const { token: _token, ...rest } = params;
    const { ticket } = await ticketClient.auth.ticket.mutate();
    return { ...rest, ticket };
  };
  const trpc = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: `${base}/trpc`,
          transformer: superjson,
          connectionParams: sseParams,
          EventSource: opts.EventSource as typeof EventSource | undefined,
        }),
        false: calls,
      }),
    ],
  });
  return { trpc, close: async () => {} };
}

export type { AppRouter };
