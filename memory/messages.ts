/**
 * Inboxes, channel streams and acks. A routed message is sealed and serialized once, then
 * appended to every recipient's inbox (the seed's `history:<agent>`, capped) and, for a channel,
 * to the channel's own capped stream, in one atomic step. Live delivery and resume read these.
 */
import { EnvelopeSchema, expiresAt, type Envelope } from '../protocol/envelope.js';
import { LinkerError } from '../protocol/errors.js';
import { withRawJson } from '../protocol/json.js';
import { unknownAgentError } from './agents.js';
import { keys } from './keys.js';
import type { ValueSealer } from './sealing.js';
import type { AppendedEntry, Store, StreamAppend, StreamEntry } from './store.js';

export interface StreamLimits {
  /** Entries kept per agent inbox (history). Default 1000, the seed's cap. */
  inboxMaxLen: number;
  /** Entries kept per channel stream. Default 1000. */
  channelMaxLen: number;
  /** Acks kept per sender. Default 1000. */
  acksMaxLen: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { inboxMaxLen: 1000, channelMaxLen: 1000, acksMaxLen: 1000 };

/** A message as stored: the sealed envelope plus the routing metadata kept readable. */
export interface StoredMessage {
  messageId: string;
  /** The envelope itself, validated by this process (never stored as such). */
  envelope: Envelope;
  sealed: string;
  priority: number;
  /** ms since epoch, or null when it never expires. */
  expiresAt: number | null;
}

export interface DeliveredMessage {
  streamId: string;
  envelope: Envelope;
  priority: number;
  expiresAt: number | null;
}

export interface RouteResult {
  /** Recipient agent id -> stream id in its inbox. */
  inboxes: Record<string, string>;
  /** Recipient agent id -> the inbox entry the message follows ('' for an empty inbox). */
  inboxPrev: Record<string, string>;
  /** Stream id in the channel stream, for channel messages. */
  channelStreamId: string | null;
  /** The channel stream entry the message follows, for channel messages. */
  channelPrev: string | null;
  /** The stream fields appended (for the live bus: this node's listeners decode them without opening). */
  fields: Record<string, string>;
}

const ENVELOPE = Symbol('skynet-linker.envelope');

/**
 * Puts the envelope on the fields object this process built for it (a hidden, non-enumerable
 * property: not stored, not copied by spreads, not serialized for other nodes), so this node's
 * live listeners decode the fields without opening the sealed value. Fields read back from a
 * store never carry it.
 */
function withEnvelope(fields: Record<string, string>, envelope: Envelope): Record<string, string> {
  Object.defineProperty(fields, ENVELOPE, { value: envelope, enumerable: false });
  return fields;
}

/** Where a message went: what the reply check needs to know (memory/keys.ts `route`). */
export interface MessageRoute {
  /** Sender. */
  from: string;
  /** Recipient of a direct message, else null. */
  to: string | null;
  /** Channel of a channel message, else null. */
  channel: string | null;
}

/** How long a message can be answered with a reply (its route is kept that long). Default 24 hours. */
export const DEFAULT_REPLY_WINDOW_MS = 24 * 3600 * 1000;

const DAY_MS = 24 * 3600 * 1000;

/** `YYYYMMDD` of a time, in UTC. */
function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');
}

function deferredVoid() {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Awaited by every send of the turn; a failure is theirs to report, never unhandled here.
  promise.catch(() => {});
  return { promise, resolve, reject, flushed: false };
}

export interface AckRecord {
  message_id: string;
  by: string;
  at: string;
}

export class MessageStore {
  constructor(
    private readonly store: Store,
    private readonly sealer: ValueSealer,
    /** The caps of inboxes, channel streams and ack streams (read by subscriptions to bound gap checks). */
    readonly limits: StreamLimits = DEFAULT_STREAM_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  private open(sealed: string, messageId: string): Envelope {
    const text = this.sealer.open(sealed, keys.messageSeal(messageId));
    const json: unknown = JSON.parse(text);
    // With sealing on, values are trusted: sealed ones are authenticated (AEAD), and on the
    // embedded store the values kept as they are come from this hub's own memory or from a
    // snapshot authenticated whole (memory/sealing.ts, inProcessValues); their text is the
    // envelope's JSON (sent as is). With sealing off, values could have been written by anyone
    // with access to the store (Redis), so they are validated again.
    return this.sealer.enabled ? withRawJson(json as Envelope, text) : EnvelopeSchema.parse(json);
  }

  /**
   * Seals and serializes a message once, whatever the number of recipients (off the event loop
   * when the sealer can: calls resolve in call order, so a sender's messages keep their order).
   * `text` is the envelope's `JSON.stringify`, when the caller has it already.
   */
  async prepare(envelope: Envelope, text = JSON.stringify(envelope)): Promise<StoredMessage> {
    // Delivered to every recipient as this very text (transport/ws-adapter.ts): serialized once.
    withRawJson(envelope, text);
    const ad = keys.messageSeal(envelope.id);
    const sealed = this.sealer.sealAsync ? await this.sealer.sealAsync(text, ad) : this.sealer.seal(text, ad);
    return {
      messageId: envelope.id,
      envelope,
      sealed,
      priority: envelope.payload.context.priority,
      expiresAt: expiresAt(envelope),
    };
  }

  private fields(m: StoredMessage): Record<string, string> {
    return withEnvelope({ mid: m.messageId, p: String(m.priority), x: m.expiresAt === null ? '' : String(m.expiresAt), m: m.sealed }, m.envelope);
  }

  /**
   * Appends to each recipient's inbox and (optionally) the channel stream, atomically. With
   * `registered`, only if that agent is in the registry (checked in the same step): NOT_FOUND otherwise.
   */
  async route(message: StoredMessage, recipients: string[], channel: string | null, registered?: string): Promise<RouteResult> {
    const fields = this.fields(message);
    const items: StreamAppend[] = recipients.map((agent) => ({ key: keys.history(agent), fields, maxLen: this.limits.inboxMaxLen }));
    if (channel) items.push({ key: keys.channel(channel), fields, maxLen: this.limits.channelMaxLen });
    const appended = await this.store.appendEntries(items, registered === undefined ? undefined : { key: keys.agents(), field: registered });
    if (!appended) throw unknownAgentError(registered!);
    const inboxes: Record<string, string> = {};
    const inboxPrev: Record<string, string> = {};
    recipients.forEach((agent, i) => {
      inboxes[agent] = appended[i]!.id;
      inboxPrev[agent] = appended[i]!.prev;
    });
    const onChannel = channel ? appended[recipients.length]! : null;
    return { inboxes, inboxPrev, channelStreamId: onChannel?.id ?? null, channelPrev: onChannel?.prev ?? null, fields };
  }

  /**
   * Remembers where a message went, for `replyWindowMs`. The routes of one event-loop turn are
   * written together, in one hash write to the day's bucket (one store call per turn, not one per
   * message: a SET per send was about a fifth of the hub's CPU per message on Redis); the promise
   * resolves once that write is done.
   */
  recordRoute(messageId: string, route: MessageRoute, replyWindowMs = DEFAULT_REPLY_WINDOW_MS): Promise<void> {
    let batch = this.routeBatch;
    if (!batch || batch.windowMs !== replyWindowMs) {
      if (batch) this.flushRoutes(batch);
      batch = { windowMs: replyWindowMs, day: utcDay(this.now()), fields: {}, done: deferredVoid() };
      this.routeBatch = batch;
      const b = batch;
      // With the turn's appends (the Redis store sends those on process.nextTick too): one round trip.
      process.nextTick(() => this.flushRoutes(b));
    }
    batch.fields[messageId] = `${route.from}\n${route.to ?? ''}\n${route.channel ?? ''}`;
    return batch.done.promise;
  }

  private routeBatch: { windowMs: number; day: string; fields: Record<string, string>; done: ReturnType<typeof deferredVoid> } | null = null;

  private flushRoutes(batch: NonNullable<MessageStore['routeBatch']>): void {
    if (this.routeBatch === batch) this.routeBatch = null;
    if (batch.done.flushed) return;
    batch.done.flushed = true;
    this.store.hashSet(keys.routes(batch.day), batch.fields).then(batch.done.resolve, batch.done.reject);
    if (batch.day !== this.routesCleanedFor) {
      // A new day's bucket: the week of buckets that just left the window goes (every store
      // the same way, TTLs or not; deleting a bucket twice is harmless, so every node may).
      this.routesCleanedFor = batch.day;
      const oldest = Date.parse(`${batch.day.slice(0, 4)}-${batch.day.slice(4, 6)}-${batch.day.slice(6)}T00:00:00Z`) - batch.windowMs - DAY_MS;
      const doomed = Array.from({ length: 7 }, (_, i) => keys.routes(utcDay(oldest - i * DAY_MS)));
      this.store.deleteKeys(doomed).catch(() => {});
    }
  }

  private routesCleanedFor: string | null = null;

  /** Where a message went, while it can still be answered; null for an unknown or older message. */
  async routeOf(messageId: string, replyWindowMs = DEFAULT_REPLY_WINDOW_MS): Promise<MessageRoute | null> {
    const now = this.now();
    // Newest day first: a reply usually answers a recent message.
    for (let back = 0; back * DAY_MS <= replyWindowMs + DAY_MS; back++) {
      const raw = await this.store.hashGet(keys.routes(utcDay(now - back * DAY_MS)), messageId);
      if (raw === null) continue;
      const [from = '', to = '', channel = ''] = raw.split('\n');
      return { from, to: to || null, channel: channel || null };
    }
    return null;
  }

  /** Opens a stored entry; checks the envelope really belongs where it was read from. */
  decode(entry: StreamEntry, owner: { agent?: string; channel?: string }): DeliveredMessage {
    const { mid, m, p, x } = entry.fields;
    if (!mid || !m) throw new LinkerError('INTERNAL_SERVER_ERROR', `malformed stream entry ${entry.id}`);
    const envelope = (entry.fields as { [ENVELOPE]?: Envelope })[ENVELOPE] ?? this.open(m, mid);
    const belongs =
      envelope.id === mid &&
      (owner.agent ? envelope.to_agent === owner.agent || (envelope.to_agent === null && envelope.channel !== null) : true) &&
      (owner.channel ? envelope.channel === owner.channel : true);
    if (!belongs) throw new LinkerError('INTERNAL_SERVER_ERROR', `stream entry ${entry.id} does not belong to this stream`);
    return { streamId: entry.id, envelope, priority: Number(p ?? 5), expiresAt: x ? Number(x) : null };
  }

  /** Decodes a message published on the bus (same fields as a stream entry). */
  decodeFields(streamId: string, fields: Record<string, string>, owner: { agent?: string; channel?: string }): DeliveredMessage {
    return this.decode({ id: streamId, fields }, owner);
  }

  storedFields(message: StoredMessage): Record<string, string> {
    return this.fields(message);
  }

  async readInbox(agentId: string, after: string | undefined, count: number): Promise<DeliveredMessage[]> {
    const entries = await this.store.readStream(keys.history(agentId), { after, count });
    return entries.map((e) => this.decode(e, { agent: agentId }));
  }

  /** Newest first, strictly before `before`. */
  async history(agentId: string, before: string | undefined, limit: number): Promise<DeliveredMessage[]> {
    const entries = await this.store.readStreamReverse(keys.history(agentId), { before, count: limit });
    return entries.map((e) => this.decode(e, { agent: agentId }));
  }

  async readChannel(channel: string, after: string | undefined, count: number): Promise<DeliveredMessage[]> {
    const entries = await this.store.readStream(keys.channel(channel), { after, count });
    return entries.map((e) => this.decode(e, { channel }));
  }

  inboxInfo(agentId: string) {
    return this.store.streamInfo(keys.history(agentId));
  }

  channelInfo(channel: string) {
    return this.store.streamInfo(keys.channel(channel));
  }

  /** The last stream id the agent acknowledged (where a fresh subscription resumes). */
  cursor(agentId: string): Promise<string | null> {
    return this.store.getValue(keys.cursor(agentId));
  }

  advanceCursor(agentId: string, streamId: string): Promise<string> {
    return this.store.setMaxStreamId(keys.cursor(agentId), streamId);
  }

  /** Records that `by` acked `messageId` sent by `sender`; returns the ack's stream entry. */
  async recordAck(sender: string, ack: AckRecord): Promise<AppendedEntry> {
    const appended = await this.store.appendEntries([
      { key: keys.acks(sender), fields: { mid: ack.message_id, by: ack.by, at: ack.at }, maxLen: this.limits.acksMaxLen },
    ]);
    return appended![0]!;
  }

  async readAcks(sender: string, after: string | undefined, count: number): Promise<{ streamId: string; ack: AckRecord }[]> {
    const entries = await this.store.readStream(keys.acks(sender), { after, count });
    return entries.map((e) => ({ streamId: e.id, ack: { message_id: e.fields.mid ?? '', by: e.fields.by ?? '', at: e.fields.at ?? '' } }));
  }
}
