/**
 * Helpers for the delivery tests (delivery, channels, resume, sealed-delivery): a `ws` subclass
 * that records its sockets and frames (so a test can kill a socket abruptly), raw subscription
 * collectors, and a way to get a rejected call's tRPC error.
 */
import WebSocket from 'ws';
import { TRPCClientError } from '@trpc/client';
import type { Envelope } from '../../protocol/envelope.js';
import type { AppRouter, LinkerClient } from '../../clients/client.js';
import { deferred } from './harness.js';

/** A tRPC frame sent or received on one socket, parsed. */
export interface Frame {
  socket: WebSocket;
  message: unknown;
}

/**
 * A `WebSocket` class for `createLinkerClient({ WebSocket })` that records every socket the client
 * opens and every frame it sends and receives. `block()` makes new connections fail (they go to a
 * closed port) until `unblock()`, so a test controls when a client is offline.
 */
export function recordingWebSocket() {
  const sockets: WebSocket[] = [];
  const sent: Frame[] = [];
  const received: Frame[] = [];
  let blockedUrl: string | null = null;
  const parse = (data: unknown): unknown => {
    const text = String(data);
    if (text === 'PING' || text === 'PONG') return text;
    return JSON.parse(text) as unknown;
  };
  class RecordingWebSocket extends WebSocket {
    constructor(address: string | URL, options?: WebSocket.ClientOptions) {
      super(blockedUrl ?? address, options);
      if (blockedUrl) return;
      sockets.push(this);
      this.on('message', (data) => received.push({ socket: this, message: parse(data) }));
    }
    override send(data: unknown, ...rest: unknown[]): void {
      sent.push({ socket: this, message: parse(data) });
      (WebSocket.prototype.send as (...args: unknown[]) => void).call(this, data, ...rest);
    }
  }
  return {
    WebSocket: RecordingWebSocket,
    sockets,
    sent,
    received,
    /** New connections fail (connection refused) until unblock(). */
    block(closedPortUrl: string) {
      blockedUrl = closedPortUrl;
    },
    unblock() {
      blockedUrl = null;
    },
  };
}

/** Subscription requests (`method: 'subscription'`) among sent frames, flattening batches. */
export function subscriptionRequests(frames: Frame[], path: string) {
  const out: { socket: WebSocket; id: number; input: unknown; lastEventId: string | undefined }[] = [];
  for (const f of frames) {
    for (const m of Array.isArray(f.message) ? f.message : [f.message]) {
      const msg = m as { id?: number; method?: string; params?: { path?: string; input?: unknown; lastEventId?: string } };
      if (msg.method === 'subscription' && msg.params?.path === path) {
        out.push({ socket: f.socket, id: msg.id ?? -1, input: msg.params.input, lastEventId: msg.params.lastEventId });
      }
    }
  }
  return out;
}

/** Message ids of the inbox/channel data events among received frames (duplicates kept). */
export function deliveredMessageIds(frames: Frame[]): string[] {
  const ids: string[] = [];
  for (const f of frames) {
    const r = (f.message as { result?: { type?: string; data?: { json?: { data?: { message?: { id?: string } } } } } }).result;
    const id = r?.type === 'data' ? r.data?.json?.data?.message?.id : undefined;
    if (id) ids.push(id);
  }
  return ids;
}

export interface InboxEvent {
  /** The tracked event id (what wsLink resumes from). */
  id: string;
  stream_id: string;
  replayed: boolean;
  message: Envelope;
}

interface TrackedMessageData {
  id: string;
  data: { stream_id: string; replayed: boolean; message: Envelope };
}

function collector() {
  const events: InboxEvent[] = [];
  const errors: unknown[] = [];
  const started = deferred<void>();
  started.promise.catch(() => {});
  return {
    events,
    errors,
    started,
    onStarted: () => started.resolve(),
    onData: (event: unknown) => {
      const { id, data } = event as TrackedMessageData;
      events.push({ id, ...data });
    },
    onError: (err: unknown) => {
      errors.push(err);
      started.reject(err);
    },
  };
}

function view(c: ReturnType<typeof collector>, unsubscribe: () => void) {
  return {
    events: c.events,
    errors: c.errors,
    /** Resolves once the hub confirmed the subscription. */
    started: c.started.promise,
    contents: () => c.events.map((e) => e.message.payload.content),
    stop: unsubscribe,
  };
}

/** A raw `messages.inbox` subscription that collects what it receives. */
export function watchInbox(trpc: LinkerClient, input?: { lastEventId?: string }) {
  const c = collector();
  const sub = trpc.messages.inbox.subscribe(input, { onStarted: c.onStarted, onData: c.onData, onError: c.onError });
  return view(c, () => sub.unsubscribe());
}

/** A raw `channels.subscribe` subscription that collects what it receives. */
export function watchChannel(trpc: LinkerClient, channel: string, lastEventId?: string) {
  const c = collector();
  const sub = trpc.channels.subscribe.subscribe(lastEventId ? { channel, lastEventId } : { channel }, {
    onStarted: c.onStarted,
    onData: c.onData,
    onError: c.onError,
  });
  return view(c, () => sub.unsubscribe());
}

/** Awaits a call that must fail and returns its tRPC error (fails the test if it succeeds). */
export async function rejectionOf(call: Promise<unknown>): Promise<TRPCClientError<AppRouter>> {
  try {
    await call;
  } catch (err) {
    if (err instanceof TRPCClientError) return err as TRPCClientError<AppRouter>;
    throw err;
  }
  throw new Error('expected the call to be rejected, but it succeeded');
}

/** A URL on which nothing listens (connections are refused at once). */
export async function closedPortUrl(): Promise<string> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `ws://127.0.0.1:${port}/ws`;
}
