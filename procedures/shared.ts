/** Small pieces several procedure groups use. */
import { tracked } from '@trpc/server';
import { z } from 'zod';
import type { DeliveredMessage } from '../memory/messages.js';
import { STREAM_ID_PATTERN, type StreamEntry } from '../memory/store.js';
import type { Envelope } from '../protocol/envelope.js';
import { DEFAULT_SLOW_CONSUMER_TIMEOUT_MS, type Context } from '../router/context.js';
import { entryBytes, type LivePage, type LiveYield, type SlowConsumerInfo, type StreamGap } from './live.js';

export type { StreamGap };

const U64_MAX = 18446744073709551615n;
export const StreamIdSchema = z
  .string()
  .regex(STREAM_ID_PATTERN, { error: 'lastEventId must be a stream id like 1732526096000-0' })
  // Both parts are unsigned 64-bit (Redis refuses larger ones; a stored cursor must stay readable).
  // (zod runs this even when the regex failed: only look at ids of the right shape.)
  .refine((id) => !STREAM_ID_PATTERN.test(id) || id.split('-').every((part) => BigInt(part) <= U64_MAX), {
    error: 'stream id parts must be at most 18446744073709551615',
  });

/** Input of resumable subscriptions: tRPC fills lastEventId on reconnect. */
export const ResumeInput = z.strictObject({ lastEventId: StreamIdSchema.nullish() });

export function readEntries(ctx: Context, key: string, decode: (e: StreamEntry) => DeliveredMessage | null) {
  return async (after: string | undefined, count: number): Promise<LivePage<DeliveredMessage>> => {
    const entries = await ctx.hub.memory.store.readStream(key, { after, count });
    const out: LivePage<DeliveredMessage> = entries.map((e) => safeDecode(ctx, e, decode));
    out.firstId = entries[0]?.id;
    out.lastId = entries.at(-1)?.id;
    let bytes = 0;
    for (const e of entries) bytes += entryBytes(e.fields);
    out.bytes = bytes;
    return out;
  };
}

/** Logs (and lets the socket be terminated) when a subscription's connection does not drain. */
export function slowConsumerLog(ctx: Context, path: string) {
  return (info: SlowConsumerInfo) => {
    ctx.hub.logger.warn(
      {
        event: 'slow_consumer_closed',
        path,
        agent_id: ctx.agent?.id,
        connection_id: ctx.connectionId,
        buffered_bytes: info.bufferedAmount,
        waited_ms: info.waitedMs,
        limit_bytes: ctx.hub.settings.maxBufferedBytes,
      },
      'connection did not drain in time: terminated (the client resumes from its last event id)',
    );
  };
}

/** The live-stream settings every resumable subscription shares. */
export function liveLimits(ctx: Context, path: string) {
  const { settings } = ctx.hub;
  return {
    socket: ctx.socket,
    maxBufferedBytes: settings.maxBufferedBytes,
    maxQueued: settings.maxQueuedMessages,
    slowConsumerTimeoutMs: settings.slowConsumerTimeoutMs ?? DEFAULT_SLOW_CONSUMER_TIMEOUT_MS,
    onSlowConsumer: slowConsumerLog(ctx, path),
  };
}

/** A stored entry that cannot be opened is logged and skipped, never delivered half-read. */
export function safeDecode(ctx: Context, entry: StreamEntry, decode: (e: StreamEntry) => DeliveredMessage | null): DeliveredMessage | null {
  try {
    return decode(entry);
  } catch (err) {
    ctx.hub.logger.error({ event: 'undecodable_entry', stream_id: entry.id, err }, 'skipping a stored entry that cannot be opened');
    return null;
  }
}

export function notExpired(m: DeliveredMessage, now = Date.now()): DeliveredMessage | null {
  return m.expiresAt !== null && m.expiresAt <= now ? null : m;
}

/** Highest priority first; stream order among equals. */
export function byPriority(items: DeliveredMessage[]): DeliveredMessage[] {
  return [...items].sort((a, b) => b.priority - a.priority);
}

/**
 * One data event of `messages.inbox` and `channels.subscribe` (the tracked event id, where to
 * resume from, travels beside it). `gap` is present only on the first item after an unrecoverable
 * gap: messages after the subscriber's cursor were trimmed from the capped stream before it read
 * them (Centrifugo's `recovered: false`); what is left follows. When nothing is left to deliver
 * after a gap (what is kept after the cursor has expired), the gap rides on the next message.
 */
export interface StreamItem {
  /** Where the message sits in the stream (ack with it). */
  stream_id: string;
  /** True for backlog read from the store, false for live delivery. */
  replayed: boolean;
  message: Envelope;
  gap?: StreamGap;
}

export function trackedMessage(y: LiveYield<DeliveredMessage>) {
  const data: StreamItem = y.gap
    ? { stream_id: y.item.streamId, replayed: y.replayed, message: y.item.envelope, gap: y.gap }
    : { stream_id: y.item.streamId, replayed: y.replayed, message: y.item.envelope };
  return tracked(y.resumeId, data);
}
