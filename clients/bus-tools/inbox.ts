/**
 * The inbox as a model sees it through tools: the hub's at-least-once inbox with its durable
 * cursor, where a message handed to the model (a `wait_for_messages` result, a reply returned by
 * `send_message`) is acknowledged, and the cursor moved past it, only on the next tool call. A
 * tool server that dies before that call gets the message again when it starts; one that lives
 * never repeats it.
 */
import { TRPCClientError } from '@trpc/client';
import type { Envelope } from '../../protocol/envelope.js';
import { backoffDelay, type LinkerClient } from '../client.js';

export interface InboxEntry {
  /** Tracked event id: where the hub's cursor may move once this and everything before it is handed. */
  resumeId: string;
  streamId: string;
  envelope: Envelope;
  handed: boolean;
  /** A second delivery of a message already taken (after a resubscribe): only moves the cursor. */
  duplicate?: boolean;
}

export interface ToolInboxOptions {
  /** Messages held while the model has not taken them; past this the subscription pauses (they stay on the hub). Default 500. */
  maxBuffered?: number;
  /** Every new message (after de-duplication), e.g. to push a channel notification. */
  onMessage?: (envelope: Envelope) => void;
  onError?: (error: Error) => void;
}

const FATAL_CODES = new Set(['UNAUTHORIZED', 'FORBIDDEN', 'BAD_REQUEST']);
const SEEN_WINDOW = 10_000;
/** Messages handed to the model kept by id, so `reply` knows whom and in which session it answers. */
const HANDED_MEMO = 1_000;

export class ToolInbox {
  private entries: InboxEntry[] = [];
  private seen = new Set<string>();
  private seenOrder: string[] = [];
  private handedMemo = new Map<string, Envelope>();
  private replyWaiters = new Map<string, (entry: InboxEntry | null) => void>();
  private wakers = new Set<() => void>();
  private unsubscribe: (() => void) | null = null;
  private lastResumeId: string | undefined;
  private paused = false;
  private closed = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private fatal: Error | null = null;
  private readonly maxBuffered: number;
  private startedResolve!: () => void;
  private startedReject!: (e: Error) => void;
  /** Resolves once the inbox subscription is live; rejects on an auth failure. */
  readonly started: Promise<void>;

  constructor(
    private readonly trpc: LinkerClient,
    private readonly opts: ToolInboxOptions = {},
  ) {
    this.maxBuffered = opts.maxBuffered ?? 500;
    this.started = new Promise<void>((res, rej) => {
      this.startedResolve = res;
      this.startedReject = rej;
    });
    this.started.catch(() => {});
    this.subscribe();
  }

  private subscribe(): void {
    if (this.closed) return;
    // No lastEventId the first time: the hub starts after this agent's stored cursor.
    const sub = this.trpc.messages.inbox.subscribe(this.lastResumeId ? { lastEventId: this.lastResumeId } : undefined, {
      onStarted: () => {
        this.attempt = 0;
        this.startedResolve();
      },
      onData: (event) => {
        const { id, data } = event as unknown as { id: string; data: { stream_id: string; message: Envelope } };
        this.lastResumeId = id;
        this.add({ resumeId: id, streamId: data.stream_id, envelope: data.message, handed: false });
      },
      onError: (err) => {
        const code = err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined;
        this.unsubscribe = null;
        if (code && FATAL_CODES.has(code)) {
          this.fatal = err;
          this.startedReject(err);
          this.opts.onError?.(err);
          this.wake();
          return;
        }
        this.opts.onError?.(err);
        this.retryTimer = setTimeout(() => this.subscribe(), backoffDelay(this.attempt++));
      },
    });
    this.unsubscribe = () => sub.unsubscribe();
  }

  private add(entry: InboxEntry): void {
    const id = entry.envelope.id;
    if (this.seen.has(id)) {
      // A duplicate still moves the resume point: it sits after what was already taken.
      this.entries.push({ ...entry, handed: true, duplicate: true });
      return;
    }
    this.seen.add(id);
    this.seenOrder.push(id);
    if (this.seenOrder.length > SEEN_WINDOW) this.seen.delete(this.seenOrder.shift()!);
    const parent = entry.envelope.payload.context.parent_message_id;
    const waiter = entry.envelope.type === 'reply' && parent ? this.replyWaiters.get(parent) : undefined;
    this.entries.push(entry);
    if (waiter) {
      this.replyWaiters.delete(parent!);
      this.hand(entry);
      waiter(entry);
    } else this.opts.onMessage?.(entry.envelope);
    if (this.pending() >= this.maxBuffered && this.unsubscribe) {
      // Bounded: stop reading; the rest stays in the hub's inbox and is read again from lastResumeId.
      this.paused = true;
      this.unsubscribe();
      this.unsubscribe = null;
    }
    this.wake();
  }

  private hand(entry: InboxEntry): void {
    entry.handed = true;
    this.handedMemo.set(entry.envelope.id, entry.envelope);
    if (this.handedMemo.size > HANDED_MEMO) this.handedMemo.delete(this.handedMemo.keys().next().value!);
  }

  private wake(): void {
    for (const w of this.wakers) w();
    this.wakers.clear();
  }

  private pending(): number {
    let n = 0;
    for (const e of this.entries) if (!e.handed) n++;
    return n;
  }

  private check(): void {
    if (this.fatal) throw this.fatal;
    if (this.closed) throw new Error('the inbox is closed');
  }

  /**
   * A message the model knows of (for `reply`): one handed earlier, or one still waiting that it
   * learned of from a channel notification (it counts as handed from now on).
   */
  claim(messageId: string): Envelope | undefined {
    const known = this.handedMemo.get(messageId);
    if (known) return known;
    const waiting = this.entries.find((e) => !e.handed && e.envelope.id === messageId);
    if (!waiting) return undefined;
    this.hand(waiting);
    return waiting.envelope;
  }

  /**
   * Hands over up to `max` messages not yet handed, oldest first, waiting up to `timeoutMs` for
   * the first when there are none. Resolves with [] on timeout or abort.
   */
  async take(max: number, timeoutMs: number, signal?: AbortSignal): Promise<Envelope[]> {
    this.check();
    const deadline = Date.now() + timeoutMs;
    while (this.pending() === 0 && !signal?.aborted && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          this.wakers.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        signal?.addEventListener('abort', done);
        this.wakers.add(done);
      });
      this.check();
    }
    const out: Envelope[] = [];
    for (const e of this.entries) {
      if (out.length >= max) break;
      if (e.handed) continue;
      this.hand(e);
      out.push(e.envelope);
    }
    return out;
  }

  /** Call before sending `messageId`: resolves with its reply (handed to the model), or null after `timeoutMs`. */
  expectReply(messageId: string, timeoutMs: number, signal?: AbortSignal): { reply: Promise<Envelope | null>; cancel(): void } {
    this.check();
    let cancel = () => {};
    const reply = new Promise<Envelope | null>((resolve) => {
      const finish = (v: Envelope | null) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.replyWaiters.delete(messageId);
        resolve(v);
      };
      const onAbort = () => finish(null);
      const timer = setTimeout(() => finish(null), timeoutMs);
      signal?.addEventListener('abort', onAbort);
      this.replyWaiters.set(messageId, (entry) => finish(entry ? entry.envelope : null));
      cancel = () => finish(null);
    });
    return { reply, cancel };
  }

  /**
   * Acknowledges what was handed: moves the hub's cursor past the longest run of handed messages
   * at the front (a message not yet handed keeps the cursor before it) and acks the `requires_ack`
   * ones to their senders. Kept for the next call when the hub cannot be reached.
   */
  async commit(): Promise<void> {
    let n = 0;
    while (n < this.entries.length && n < 1000 && this.entries[n]!.handed) n++;
    if (n === 0) return;
    const done = this.entries.slice(0, n);
    const acks = done.filter((e) => e.envelope.payload.meta.requires_ack && !e.duplicate).map((e) => ({ message_id: e.envelope.id, stream_id: e.streamId }));
    await this.trpc.messages.ack.mutate({ acks, cursor: done.at(-1)!.resumeId });
    this.entries.splice(0, n);
    if (this.paused && this.pending() < this.maxBuffered / 2 && !this.closed) {
      this.paused = false;
      this.subscribe();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const w of [...this.replyWaiters.values()]) w(null);
    this.wake();
  }
}
