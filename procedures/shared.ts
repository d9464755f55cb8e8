/** Small pieces several procedure groups use. */
import { tracked } from '@trpc/server';
import { z } from 'zod';
import { keys } from '../memory/keys.js';
import type { DeliveredMessage } from '../memory/messages.js';
import { STREAM_ID_PATTERN, type StreamEntry } from '../memory/store.js';
import type { Context } from '../router/context.js';
import type { LiveYield } from './live.js';

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
  return async (after: string | undefined, count: number) => {
    const entries = await ctx.hub.memory.store.readStream(key, { after, count });
    const out = entries.map((e) => safeDecode(ctx, e, decode)) as (DeliveredMessage | null)[] & { lastId?: string };
    out.lastId = entries.at(-1)?.id;
    return out;
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

export function trackedMessage(y: LiveYield<DeliveredMessage>) {
  return tracked(y.resumeId, { stream_id: y.item.streamId, replayed: y.replayed, message: y.item.envelope });
}

export { keys };
