/**
 * Resumable live streams: listen on the bus first, then replay what the store holds after the
 * cursor, then stream live entries, skipping anything at or before the cursor.
 *
 * Live entries are chained: each carries the id of the entry it follows in its stream (`prev`,
 * set by the store in the same step as the append). An entry whose `prev` is the cursor is the
 * very next one and is delivered as it comes. Anything else (an entry stored earlier by another
 * node whose event is still in flight, a lost event, an event of an older node without `prev`)
 * makes the stream read the store after the cursor instead, so nothing is skipped and the order
 * is the stream's.
 *
 * Memory stays bounded per subscription: live entries held for it are capped by count
 * (`maxQueued`) and bytes (`maxQueuedBytes`), past which they are dropped and the stream is re-read
 * from the store; one backlog pass holds at most `maxBacklog` entries and about `maxBacklogBytes`;
 * and nothing is yielded while the socket holds more than `maxBufferedBytes` unsent (the tRPC WS
 * adapter has no backpressure of its own). A socket that does not drain within
 * `slowConsumerTimeoutMs` is terminated: no error frame is queued behind what the client is not
 * reading; the client reconnects and resumes from its last event id.
 *
 * Gaps are said, not hidden: when the capped stream trimmed entries after the subscriber's cursor
 * before it could read them, the first item yielded after that carries a `gap` (Centrifugo's
 * `recovered: false`), and what is left is delivered. See `StreamGap`.
 */
import { compareStreamIds, gapAfter, type StreamInfo } from '../memory/store.js';
import { DEFAULT_SLOW_CONSUMER_TIMEOUT_MS, type SocketLike, type Unlisten } from '../router/context.js';

export interface LiveItem {
  streamId: string;
}

/**
 * An unrecoverable gap: entries after `requested_after` up to `trimmed_through` were removed from
 * the capped stream before this subscriber read them. Everything still kept after the cursor is
 * delivered; the gap rides on the first item yielded after it. When nothing is left to deliver
 * (whatever is kept after the cursor has expired), it rides on the next item that comes, and a
 * subscriber that leaves before then is told again when it resumes from its older event id. On
 * Redis `trimmed_through` is an upper bound (see `StreamInfo.maxDeletedId`): a gap can be
 * over-reported, never hidden.
 */
export interface StreamGap {
  recovered: false;
  /** The cursor the stream was read after; null when the subscriber asked for everything (no cursor). */
  requested_after: string | null;
  /** Oldest entry still kept after the cursor (first one read), null when nothing is left. */
  oldest_available: string | null;
  /** Highest id removed: what came after `requested_after` up to here is lost. */
  trimmed_through: string;
}

/** One page read from the store, oldest first; null items are entries to skip (expired...). */
export type LivePage<T> = (T | null)[] & {
  /** Id of the last entry read (skipped or not): where the next page starts. */
  lastId?: string;
  /** Id of the first entry read (skipped or not). */
  firstId?: string;
  /** Approximate size of the entries read, to bound a backlog pass. */
  bytes?: number;
};

export interface LiveStreamOptions<T extends LiveItem> {
  signal: AbortSignal | undefined;
  /** Last id the subscriber has; undefined = from the start of what the store keeps. */
  cursor: string | undefined;
  /** Subscribes to live entries; `prev` is the entry each follows, when known. */
  listen(push: (streamId: string, fields: Record<string, string>, prev?: string) => void): Unlisten;
  /** Store entries strictly after `after`, oldest first. */
  readAfter(after: string | undefined, count: number): Promise<LivePage<T>>;
  decode(streamId: string, fields: Record<string, string>): T | null;
  /** Reorders a replayed backlog (e.g. highest priority first). Default: stream order. */
  orderBacklog?: (items: T[]) => T[];
  socket: SocketLike | null;
  maxBufferedBytes: number;
  maxQueued: number;
  /** Bytes of live entries held for this subscription before falling back to the store. Default maxBufferedBytes. */
  maxQueuedBytes?: number;
  /** Default 30 000 ms. */
  slowConsumerTimeoutMs?: number;
  /** Called just before a connection that did not drain is terminated (log it). */
  onSlowConsumer?: (info: SlowConsumerInfo) => void;
  pageSize?: number;
  /** Most entries replayed in one backlog pass. Default 10 000. */
  maxBacklog?: number;
  /** About the most bytes read in one backlog pass (checked per page). Default 16 MiB. */
  maxBacklogBytes?: number;
  /** What the stream removed, for gap detection. Without it gaps are not checked. */
  streamInfo?: () => Promise<Pick<StreamInfo, 'maxDeletedId'>>;
  /**
   * Whether a subscriber without a cursor wants everything ever written (an inbox: entries trimmed
   * before it first read are a gap) rather than what the stream keeps (a channel). Default false.
   */
  gapFromStart?: boolean;
  /**
   * The stream's cap. After the first pass, a gap is only possible when a pass read at least this
   * many entries (a trim past the cursor leaves only entries after it, at least the cap), so
   * the store is asked about trimming only then. Default 0: ask on every pass.
   */
  streamCap?: number;
}

/** What a subscription built on {@link liveStream} adds: what it yields, and its own cleanup. */
export interface LiveSubscription<T extends LiveItem, Y> {
  /** Turns each item into what the subscription yields (tRPC's `tracked(...)`). */
  project: (y: LiveYield<T>) => Y;
  /** Runs once when the stream ends, however it ends (also when it is stopped before its first read). */
  onEnd?: () => Promise<void> | void;
}

export interface SlowConsumerInfo {
  bufferedAmount: number;
  waitedMs: number;
}

/** What the generator yields: the item, the id that is safe to resume from after it, and a gap before it. */
export interface LiveYield<T> {
  item: T;
  resumeId: string;
  replayed: boolean;
  gap?: StreamGap;
}

const START = '0-0';
const DEFAULT_MAX_BACKLOG_BYTES = 16 * 1024 * 1024;

/** Approximate in-memory size of a stream entry's fields (strings are mostly ASCII: base64, JSON). */
export function entryBytes(fields: Record<string, string>): number {
  let n = 64;
  for (const key in fields) n += key.length + (fields[key]?.length ?? 0);
  return n;
}

export interface DrainOptions {
  socket: SocketLike | null;
  maxBufferedBytes: number;
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
  onSlowConsumer?: ((info: SlowConsumerInfo) => void) | undefined;
}

const POLL_MS = 10;

/**
 * Waits until the socket holds at most `maxBufferedBytes` unsent. Resolves true when the caller
 * may send; false when the subscription was aborted meanwhile, or the socket stayed clogged for
 * `timeoutMs` and was terminated (the caller should end quietly: its error frame would only
 * queue behind what the client does not read, and the client resumes from its last event id).
 */
export async function waitForDrain(o: DrainOptions): Promise<boolean> {
  const socket = o.socket;
  if (!socket || socket.bufferedAmount <= o.maxBufferedBytes) return true;
  const timeoutMs = o.timeoutMs ?? DEFAULT_SLOW_CONSUMER_TIMEOUT_MS;
  const started = Date.now();
  while (socket.bufferedAmount > o.maxBufferedBytes) {
    if (o.signal?.aborted) return false;
    const waited = Date.now() - started;
    if (waited >= timeoutMs) {
      o.onSlowConsumer?.({ bufferedAmount: socket.bufferedAmount, waitedMs: waited });
      socket.terminate();
      return false;
    }
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, timeoutMs - waited)));
  }
  return !o.signal?.aborted;
}

/**
 * A resumable live stream, as one async generator a subscription returns as is. It listens on the
 * bus at once (when called, not at the first read), so nothing published after the subscription
 * reports `started` is missed; a stream stopped before its first read still cleans up (unlisten,
 * `onEnd`) on abort.
 */
export function liveStream<T extends LiveItem, Y>(opts: LiveStreamOptions<T> & LiveSubscription<T, Y>): AsyncGenerator<Y> {
  const pageSize = opts.pageSize ?? 500;
  const maxBacklog = opts.maxBacklog ?? 10_000;
  const maxBacklogBytes = opts.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES;
  const maxQueuedBytes = opts.maxQueuedBytes ?? opts.maxBufferedBytes;
  const gapCheckAfter = Math.min(opts.streamCap ?? 0, maxBacklog);

  // Live entries not yielded yet, bounded by count and bytes.
  let queue: { streamId: string; fields: Record<string, string>; prev: string | undefined }[] = [];
  let queuedBytes = 0;
  let overflowed = false;
  let stopped = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const unlisten = opts.listen((streamId, fields, prev) => {
    if (overflowed) return;
    const size = entryBytes(fields);
    if (queue.length >= opts.maxQueued || queuedBytes + size > maxQueuedBytes) {
      overflowed = true;
      queue = [];
      queuedBytes = 0;
    } else {
      queue.push({ streamId, fields, prev });
      queuedBytes += size;
    }
    notify();
  });
  let started = false;
  let ended: Promise<void> | null = null;
  const end = (): Promise<void> =>
    (ended ??= (async () => {
      unlisten();
      opts.signal?.removeEventListener('abort', onAbort);
      await opts.onEnd?.();
    })());
  const onAbort = () => {
    notify();
    // Stopped before the consumer's first read: the generator body (and its finally) never runs.
    if (!started) void end().catch(() => {});
  };
  opts.signal?.addEventListener('abort', onAbort);
  // Already stopped while the caller was setting up (awaiting the store): end at once.
  if (opts.signal?.aborted) onAbort();
  const done = () => stopped || opts.signal?.aborted === true;
  const project = opts.project;

  let cursor = opts.cursor;
  // Where a gap is measured from while the cursor is still unset: an inbox wants everything.
  let gapBase: string | undefined = opts.gapFromStart ? START : undefined;
  let firstPass = true;
  // A gap found with nothing left to deliver after it waits for the next item.
  let pendingGap: StreamGap | undefined;
  function withGap(y: LiveYield<T>): LiveYield<T> {
    if (pendingGap) {
      y.gap = pendingGap;
      pendingGap = undefined;
    }
    return y;
  }

  /** Whether the socket may take more now; waits (see waitForDrain) only when it holds too much. */
  function drained(): boolean | Promise<boolean> {
    const socket = opts.socket;
    return !socket || socket.bufferedAmount <= opts.maxBufferedBytes || waitDrain();
  }
  async function waitDrain(): Promise<boolean> {
    const ok = await waitForDrain({
      socket: opts.socket,
      maxBufferedBytes: opts.maxBufferedBytes,
      timeoutMs: opts.slowConsumerTimeoutMs,
      signal: opts.signal,
      onSlowConsumer: opts.onSlowConsumer,
    });
    if (!ok) stopped = true;
    return ok;
  }

  /**
   * Reads what the store has after the cursor (at most about `maxBacklog` entries or
   * `maxBacklogBytes`) and yields it, with a gap notice when entries after the cursor were trimmed.
   * Returns true when it stopped at a bound, so the caller reads again.
   */
  async function* replay(kind: 'backlog' | 'overflow' | 'live'): AsyncGenerator<Y, boolean> {
    const replayed = kind !== 'live';
    const gapFrom = cursor ?? gapBase;
    const items: T[] = [];
    let read = 0;
    let bytes = 0;
    let more = false;
    let after = cursor;
    let firstRead: string | undefined;
    for (;;) {
      if (read >= maxBacklog || bytes >= maxBacklogBytes) {
        more = true;
        break;
      }
      const page = await opts.readAfter(after, pageSize);
      if (page.length === 0) break;
      read += page.length;
      bytes += page.bytes ?? 0;
      firstRead ??= page.firstId ?? page.find((it) => it !== null)?.streamId;
      for (const it of page) if (it) items.push(it);
      after = page.lastId ?? after;
      if (page.length < pageSize) break;
    }

    // Asked after reading: a trim that raced the read is reported too (never hidden).
    const mayHaveGap = gapFrom !== undefined && opts.streamInfo && (firstPass || more || read >= gapCheckAfter);
    if (mayHaveGap && !done()) {
      const info = await opts.streamInfo!();
      // An older gap still waiting for an item keeps its start.
      if (gapAfter(gapFrom, info)) {
        pendingGap = {
          recovered: false,
          requested_after: pendingGap ? pendingGap.requested_after : (cursor ?? null),
          oldest_available: firstRead ?? null,
          trimmed_through: info.maxDeletedId!,
        };
      }
    }
    firstPass = false;
    // A subscriber that started on an empty stream wants everything written after that.
    gapBase ??= START;

    if (after === cursor) {
      // Nothing at all after the cursor (only when everything after it was removed): nothing
      // below the trimmed id can come any more.
      if (pendingGap && (cursor === undefined || compareStreamIds(pendingGap.trimmed_through, cursor) > 0)) cursor = pendingGap.trimmed_through;
      return false;
    }
    const replayedUpTo = after!;
    const sorted = kind === 'backlog' && opts.orderBacklog ? opts.orderBacklog(items) : items;
    // Resume ids must never skip an unsent entry: while the backlog is out of stream order, each
    // item carries the highest id below which everything has been sent.
    const ids = items.map((i) => i.streamId);
    const sent = new Set<string>();
    let p = 0;
    for (const item of sorted) {
      if (done()) return false;
      sent.add(item.streamId);
      while (p < ids.length && sent.has(ids[p]!)) p++;
      const resumeId = p === ids.length ? replayedUpTo : p > 0 ? ids[p - 1]! : (cursor ?? START);
      const ok = drained();
      if (ok !== true && !(await ok)) return false;
      yield project(withGap({ item, resumeId, replayed }));
    }
    cursor = replayedUpTo;
    return more;
  }

  return (async function* (): AsyncGenerator<Y> {
    started = true;
    try {
      // A backlog larger than one pass is delivered pass after pass, each highest priority first.
      while ((yield* replay('backlog')) && !done());
      while (!done()) {
        if (overflowed) {
          overflowed = false;
          while ((yield* replay('overflow')) && !done());
          continue;
        }
        const next = queue.shift();
        if (!next) {
          await new Promise<void>((r) => (wake = r));
          continue;
        }
        queuedBytes -= entryBytes(next.fields);
        if (cursor !== undefined && compareStreamIds(next.streamId, cursor) <= 0) continue;
        // The entry right after the cursor (or the first of a stream that had none): nothing
        // undelivered sits in between. Otherwise an earlier entry may still be on its way from
        // another node (or its event was lost): read everything after the cursor from the store.
        if (next.prev === undefined || (next.prev !== '' && next.prev !== cursor)) {
          while ((yield* replay('live')) && !done());
          continue;
        }
        cursor = next.streamId;
        const item = opts.decode(next.streamId, next.fields);
        if (!item) continue;
        const ok = drained();
        if (ok !== true && !(await ok)) break;
        yield project(withGap({ item, resumeId: next.streamId, replayed: false }));
      }
    } finally {
      await end();
    }
  })();
}
