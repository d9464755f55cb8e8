/**
 * The typed client: tRPC v11 over WebSocket (default) or HTTP + SSE, superjson on the wire.
 * Imports only the `AppRouter` type from the hub, so it bundles for a browser or a Next.js panel.
 */
import { createTRPCClient, createWSClient, httpBatchLink, httpSubscriptionLink, splitLink, wsLink, type TRPCClient } from '@trpc/client';
import superjson from 'superjson';
import type { AppRouter } from '../router/app.js';

export type LinkerClient = TRPCClient<AppRouter>;

export interface LinkerClientOptions {
  /** Hub URL: `ws://host:8000/ws` (WebSocket) or `http://host:8000` (HTTP + SSE). */
  url: string;
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

function connectionParams(opts: LinkerClientOptions): Record<string, string> {
  const params: Record<string, string> = {};
  if (opts.token) params.token = opts.token;
  if (opts.agentId) params.agent_id = opts.agentId;
  if (opts.agentType) params.agent_type = opts.agentType;
  return params;
}

export function createLinkerClient(opts: LinkerClientOptions): LinkerConnection {
  const isWs = /^wss?:\/\//.test(opts.url);
  if (isWs) {
    const wsClient = createWSClient({
      url: opts.url,
      WebSocket: opts.WebSocket as typeof WebSocket | undefined,
      connectionParams: connectionParams(opts),
      retryDelayMs: opts.retryDelayMs ?? ((n) => backoffDelay(n)),
      onOpen: opts.onOpen,
      onClose: opts.onClose,
    });
    const trpc = createTRPCClient<AppRouter>({ links: [wsLink({ client: wsClient, transformer: superjson })] });
    return { trpc, close: async () => wsClient.close() };
  }
  const base = opts.url.replace(/\/+$/, '').replace(/\/trpc$/, '');
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.agentId) headers['x-agent-id'] = opts.agentId;
  const trpc = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url: `${base}/trpc`,
          transformer: superjson,
          connectionParams: connectionParams(opts),
          EventSource: opts.EventSource as typeof EventSource | undefined,
        }),
        false: httpBatchLink({ url: `${base}/trpc`, transformer: superjson, headers }),
      }),
    ],
  });
  return { trpc, close: async () => {} };
}

export type { AppRouter };
