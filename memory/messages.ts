/**
 * Inboxes, channel streams and acks. A routed message is sealed and serialized once, then
 * appended to every recipient's inbox (the seed's `history:<agent>`, capped) and, for a channel,
 * to the channel's own capped stream, in one atomic step. Live delivery and resume read these.
 */
import { EnvelopeSchema, expiresAt, type Envelope } from '../protocol/envelope.js';
import { LinkerError } from '../protocol/errors.js';
import { withRawJson } from '../protocol/json.js';
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
  ) {}

  /**
   * Envelopes this process sealed lately, by message id: live delivery on the sending node needs
   * no decryption. Bounded by count and by bytes (a parsed envelope takes several times its JSON
   * size on the heap); a large envelope is not kept at all. Small on purpose: live deliveries
   * follow their send within milliseconds, and a larger cache outlived young-generation GCs,
   * was promoted and fed a major GC every second under load (the cause of the latency tail).
   * A delivery that misses it (a lagging reader) opens the stored value instead.
   * Only ever filled with what this process validated itself.
   */
  private readonly recent = new Map<string, { envelope: Envelope; bytes: number; seq: number }>();
  private recentBytes = 0;
  private static readonly RECENT_MAX = 256;
  /** Ids in the order they were remembered (a ring of RECENT_MAX; `recentSeq` counts every insert). */
  private readonly recentOrder: (string | undefined)[] = new Array<string | undefined>(MessageStore.RECENT_MAX);
  private recentOldest = 0;
  private recentSeq = 0;
  /** Sealed bytes kept at most (a typical 1 KiB message: the count bound applies first). */
  private static readonly RECENT_MAX_BYTES = 4 * 1024 * 1024;
  /** Envelopes larger than this (sealed) are decoded from the store instead. */
  private static readonly RECENT_MAX_ENTRY_BYTES = 32 * 1024;

  private open(sealed: string, messageId: string): Envelope {
    const text = this.sealer.open(sealed, keys.messageSeal(messageId));
    const json: unknown = JSON.parse(text);
    // Sealed values are authenticated (AEAD): only this hub could have written them, and their
    // text is the envelope's JSON (sent as is). Plain values could have been written by anyone
    // with access to the store, so they are validated again.
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
    this.remember(envelope, sealed.length);
    return {
      messageId: envelope.id,
      sealed,
      priority: envelope.payload.context.priority,
      expiresAt: expiresAt(envelope),
    };
  }

  private remember(envelope: Envelope, bytes: number): void {
    const previous = this.recent.get(envelope.id);
    if (previous) {
      this.recent.delete(envelope.id);
      this.recentBytes -= previous.bytes;
    }
    if (bytes > MessageStore.RECENT_MAX_ENTRY_BYTES) return;
    const max = MessageStore.RECENT_MAX;
    while (this.recentSeq - this.recentOldest >= max || (this.recentBytes + bytes > MessageStore.RECENT_MAX_BYTES && this.recentOldest < this.recentSeq)) {
      this.forgetOldest();
    }
    const seq = this.recentSeq++;
    this.recentOrder[seq % max] = envelope.id;
    this.recent.set(envelope.id, { envelope, bytes, seq });
    this.recentBytes += bytes;
  }

  /** Drops the oldest slot of the ring (and its envelope, unless that id was remembered again since). */
  private forgetOldest(): void {
    const seq = this.recentOldest++;
    const slot = seq % MessageStore.RECENT_MAX;
    const id = this.recentOrder[slot];
    this.recentOrder[slot] = undefined;
    if (id === undefined) return;
    const entry = this.recent.get(id);
    if (entry?.seq === seq) {
      this.recent.delete(id);
      this.recentBytes -= entry.bytes;
    }
  }

  private fields(m: StoredMessage, extra: Record<string, string> = {}): Record<string, string> {
    return { mid: m.messageId, p: String(m.priority), x: m.expiresAt === null ? '' : String(m.expiresAt), m: m.sealed, ...extra };
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
    if (!appended) throw new LinkerError('NOT_FOUND', `unknown agent ${registered}: no such agent is registered (skynet-linker agents add ${registered})`);
    const inboxes: Record<string, string> = {};
    const inboxPrev: Record<string, string> = {};
    recipients.forEach((agent, i) => {
      inboxes[agent] = appended[i]!.id;
      inboxPrev[agent] = appended[i]!.prev;
    });
    const onChannel = channel ? appended[recipients.length]! : null;
    return { inboxes, inboxPrev, channelStreamId: onChannel?.id ?? null, channelPrev: onChannel?.prev ?? null };
  }

  /** Opens a stored entry; checks the envelope really belongs where it was read from. */
  decode(entry: StreamEntry, owner: { agent?: string; channel?: string }): DeliveredMessage {
    const { mid, m, p, x } = entry.fields;
    if (!mid || !m) throw new LinkerError('INTERNAL_SERVER_ERROR', `malformed stream entry ${entry.id}`);
    const envelope = this.recent.get(mid)?.envelope ?? this.open(m, mid);
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
