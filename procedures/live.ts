/**
 * Resumable live streams: listen on the bus first, then replay what the store holds after the
 * cursor, then stream live entries, skipping anything at or before the cursor. When several hub
 * nodes may publish (Redis), a live event only signals that the store has news: entries are read
 * from the store after the cursor, so one arriving late from another node is not skipped. Memory stays
 * bounded: past `maxQueued` live entries the queue is dropped and the stream is re-read from the
 * store; a socket that does not drain within `slowConsumerTimeoutMs` ends the subscription (the
 * client resumes from its last id).
 */
import { TRPCError } from '@trpc/server';
import { compareStreamIds } from '../memory/store.js';
import type { SocketLike, Unlisten } from '../router/context.js';

export interface LiveItem {
  streamId: string;
}

export interface LiveStreamOptions<T extends LiveItem> {
  signal: AbortSignal | undefined;
  /** Last id the subscriber has; undefined = from the start of what the store keeps. */
  cursor: string | undefined;
  listen(push: (streamId: string, fields: Record<string, string>) => void): Unlisten;
  /** Store entries strictly after `after`, oldest first; null entries are skipped (expired...). */
  readAfter(after: string | undefined, count: number): Promise<(T | null)[] & { lastId?: string }>;
  decode(streamId: string, fields: Record<string, string>): T | null;
  /**
   * Whether the bus delivers entries in stream order (one process: the embedded store). Otherwise
   * (several hub nodes publish to one Redis) an entry stored earlier on another node can arrive
   * after a later one, so each live event is only a signal to read the store from the cursor.
   * Default false.
   */
  liveInOrder?: boolean;
  /** Reorders a replayed backlog (e.g. highest priority first). Default: stream order. */
  orderBacklog?: (items: T[]) => T[];
  socket: SocketLike | null;
  maxBufferedBytes: number;
  maxQueued: number;
  slowConsumerTimeoutMs?: number;
  pageSize?: number;
  /** Most entries replayed in one backlog pass. Default 10 000. */
  maxBacklog?: number;
}

/** What the generator yields: the item and the id that is safe to resume from after it. */
export interface LiveYield<T> {
  item: T;
  resumeId: string;
  replayed: boolean;
}

const START = '0-0';

export async function* liveStream<T extends LiveItem>(opts: LiveStreamOptions<T>): AsyncGenerator<LiveYield<T>> {
  const pageSize = opts.pageSize ?? 500;
  const maxBacklog = opts.maxBacklog ?? 10_000;
  let queue: { streamId: string; fields: Record<string, string> }[] = [];
  let overflowed = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const unlisten = opts.listen((streamId, fields) => {
    if (overflowed) return;
    if (queue.length >= opts.maxQueued) {
      overflowed = true;
      queue = [];
    } else queue.push({ streamId, fields });
    notify();
  });
  const onAbort = () => notify();
  opts.signal?.addEventListener('abort', onAbort);

  let cursor = opts.cursor;

  async function drained(): Promise<void> {
    if (!opts.socket || opts.socket.bufferedAmount <= opts.maxBufferedBytes) return;
    const deadline = Date.now() + (opts.slowConsumerTimeoutMs ?? 30_000);
    while (opts.socket.bufferedAmount > opts.maxBufferedBytes) {
      if (opts.signal?.aborted) return;
      if (Date.now() > deadline) {
        throw new TRPCError({ code: 'TIMEOUT', message: 'slow consumer: the connection did not drain; resume from your last event id' });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * Reads what the store has after the cursor (at most about `maxBacklog` entries) and yields it.
   * Returns true when it stopped at the bound, so the caller reads again.
   */
  async function* replay(ordered: boolean, live = false): AsyncGenerator<LiveYield<T>, boolean> {
    const items: T[] = [];
    let read = 0;
    let more = false;
    let after = cursor;
    for (;;) {
      if (read >= maxBacklog) {
        more = true;
        break;
      }
      const page = await opts.readAfter(after, pageSize);
      if (page.length === 0) break;
      read += page.length;
      for (const it of page) if (it) items.push(it);
      after = page.lastId ?? after;
      if (page.length < pageSize) break;
    }
    if (after === cursor) return false;
    const replayedUpTo = after!;
    const sorted = ordered && opts.orderBacklog ? opts.orderBacklog(items) : items;
    // Resume ids must never skip an unsent entry: while the backlog is out of stream order, each
    // item carries the highest id below which everything has been sent.
    const ids = items.map((i) => i.streamId);
    const sent = new Set<string>();
    let p = 0;
    for (const item of sorted) {
      if (opts.signal?.aborted) return false;
      sent.add(item.streamId);
      while (p < ids.length && sent.has(ids[p]!)) p++;
      const resumeId = p === ids.length ? replayedUpTo : p > 0 ? ids[p - 1]! : (cursor ?? START);
      await drained();
      yield { item, resumeId, replayed: !live };
    }
    cursor = replayedUpTo;
    return more;
  }

  try {
    // A backlog larger than one pass is delivered pass after pass, each highest priority first.
    while ((yield* replay(true)) && !opts.signal?.aborted);
    while (!opts.signal?.aborted) {
      if (overflowed) {
        overflowed = false;
        while ((yield* replay(false)) && !opts.signal?.aborted);
        continue;
      }
      const next = queue.shift();
      if (!next) {
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      if (cursor && compareStreamIds(next.streamId, cursor) <= 0) continue;
      if (!opts.liveInOrder) {
        // Yielding this entry and moving the cursor past it would skip an earlier entry whose
        // event is still in flight from another node: read everything after the cursor instead.
        while ((yield* replay(false, true)) && !opts.signal?.aborted);
        continue;
      }
      cursor = next.streamId;
      const item = opts.decode(next.streamId, next.fields);
      if (!item) continue;
      await drained();
      yield { item, resumeId: next.streamId, replayed: false };
    }
  } finally {
    unlisten();
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
