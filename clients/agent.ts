/**
 * The agent runtime: connects, keeps its inbox subscription alive (resume with the last event
 * id, jittered backoff), drops duplicates, acks, dispatches to handlers, and offers `send`,
 * `reply` and `request` (resolves with the reply whose parent_message_id matches).
 * Optional end to end: NaCl box to agents whose public key is registered, secretbox with a channel
 * key, Ed25519 signatures verified on receipt.
 */
import { TRPCClientError } from '@trpc/client';
import type { inferRouterOutputs } from '@trpc/server';
import type { AppRouter } from '../router/app.js';
import type { StreamGap } from '../procedures/live.js';
import { boxKeyPair, boxOpen, boxSeal, secretboxOpen, secretboxSeal, type BoxKeyPair } from '../crypto/nacl.js';
import { signEnvelope, signingKeyPair, verifyEnvelope, type SigningKeyPair } from '../crypto/sign.js';
import { fromBase64, toBase64, utf8Decode, utf8Encode } from '../crypto/bytes.js';
import { completeEnvelope, OutgoingMessageSchema, type Envelope, type MessageType, type OutgoingMessage } from '../protocol/envelope.js';
import type { JsonValue } from '../protocol/json.js';
import { backoffDelay, createLinkerClient, type LinkerClient, type LinkerClientOptions, type LinkerConnection } from './client.js';

export type SendResult = inferRouterOutputs<AppRouter>['messages']['send'];

export type AgentState = 'connecting' | 'live' | 'reconnecting' | 'closed';

/** The hub's word that inbox messages were trimmed (the inbox is capped) before this agent read them. */
export type InboxGap = StreamGap;

/** What `onError` receives for an inbox gap when no `onGap` handler is given. */
export class InboxGapError extends Error {
  override readonly name = 'InboxGapError';
  constructor(readonly gap: InboxGap) {
    super(
      `inbox gap: messages after ${gap.requested_after ?? 'the start'} up to ${gap.trimmed_through} were trimmed from the capped inbox before they were delivered` +
        ` (oldest still kept: ${gap.oldest_available ?? 'none'}); they cannot be recovered`,
    );
  }
}

export interface IncomingMessage {
  envelope: Envelope;
  /** Content, opened when it was end-to-end encrypted to us. */
  content: JsonValue;
  streamId: string;
  replayed: boolean;
}

export interface AgentOptions extends LinkerClientOptions {
  /** This agent's id; with a token it must be the token's agent. */
  agentId: string;
  /** Channels to join (members get channel messages in their inbox). */
  channels?: string[];
  onMessage?: (message: IncomingMessage) => void | Promise<void>;
  /** Handles `task` messages; a returned value is sent back as a `reply`. */
  onTask?: (message: IncomingMessage) => JsonValue | void | Promise<JsonValue | void>;
  onError?: (error: Error) => void;
  /**
   * Called (in order, before the message it came with is handled) when the hub says messages were
   * trimmed from this agent's capped inbox before it read them: an unrecoverable gap. Without it,
   * the gap is reported to `onError` as an `InboxGapError`.
   */
  onGap?: (gap: InboxGap) => void | Promise<void>;
  onStateChange?: (change: { from: AgentState; to: AgentState }) => void;
  /** End-to-end keys; public halves are published in the registry at start. `true` generates them. */
  e2e?: { box?: BoxKeyPair | true; sign?: SigningKeyPair | true; channelKeys?: Record<string, Uint8Array>; requireSignatures?: boolean };
  /** How often acks and the inbox cursor are flushed. Default 200 ms. */
  ackIntervalMs?: number;
  /** Message ids remembered to drop duplicates. Default 10 000. */
  dedupeWindow?: number;
  /** Start after this inbox stream id instead of the hub's stored cursor (e.g. the newest id: only new messages). */
  resumeFrom?: string;
  /**
   * Move the hub's stored cursor as messages are handled (default true). A short-lived helper
   * connection (e.g. `send --wait-reply`) sets false so it never consumes the agent's backlog.
   */
  trackCursor?: boolean;
}

export interface SendOptions {
  /** Seal the content end to end: `box` to the recipient agent, `secretbox` with the channel key. */
  seal?: 'box' | 'secretbox';
}

export interface LinkerAgent {
  readonly id: string;
  readonly trpc: LinkerClient;
  readonly state: AgentState;
  /** Resolves once the inbox subscription is live; rejects on an auth failure. */
  readonly ready: Promise<void>;
  send(message: Omit<OutgoingMessage, 'from_agent'>, opts?: SendOptions): Promise<SendResult>;
  reply(to: Envelope, content: JsonValue, extra?: { type?: MessageType; failed?: boolean }): Promise<SendResult>;
  /** `onSent` is called with the task's id once the hub has stored it (the wait starts then). */
  request(
    to: string,
    content: JsonValue,
    opts?: { timeoutMs?: number; sessionId?: string; priority?: number; seal?: 'box'; onSent?: (id: string) => void },
  ): Promise<IncomingMessage>;
  /**
   * Waits for the reply to the message `messageId` (call it before sending that message). The
   * reply is handed over as soon as it arrives, even while a task is being handled (a connector
   * that delegates waits inside its task). Rejects after `timeoutMs`, or when the agent closes.
   */
  expectReply(messageId: string, timeoutMs: number): { reply: Promise<IncomingMessage>; cancel(): void };
  close(): Promise<void>;
}

interface SealedContent {
  alg: 'nacl-box' | 'nacl-secretbox';
  ciphertext: string;
}

function isSealed(c: JsonValue): c is JsonValue & SealedContent {
  return typeof c === 'object' && c !== null && !Array.isArray(c) && (c.alg === 'nacl-box' || c.alg === 'nacl-secretbox') && typeof c.ciphertext === 'string';
}

const FATAL_CODES = new Set(['UNAUTHORIZED', 'FORBIDDEN', 'BAD_REQUEST']);

/**
 * Without a token only a hub started with --insecure-no-auth accepts the agent. Ask it now, so a
 * token that is missing (`token: process.env.X` with X unset) fails here, with a message saying
 * so, rather than later in a subscription.
 */
async function checkTokenless(conn: LinkerConnection, agentId: string, token: string | undefined): Promise<void> {
  try {
    await conn.trpc.agents.whoami.query();
  } catch (err) {
    await conn.close();
    const code = err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined;
    if (code !== 'UNAUTHORIZED') throw err;
    throw new Error(
      `connectAgent(${agentId}): no token (token is ${token === '' ? 'an empty string' : 'undefined'}: is its environment variable set?) and the hub requires one; ` +
        `issue one with \`skynet-linker agents add ${agentId}\` (hub: ${(err as Error).message})`,
      { cause: err },
    );
  }
}

export async function connectAgent(opts: AgentOptions): Promise<LinkerAgent> {
  const conn: LinkerConnection = createLinkerClient(opts);
  const trpc = conn.trpc;
  if (!opts.token) await checkTokenless(conn, opts.agentId, opts.token);
  const box = opts.e2e?.box === true ? boxKeyPair() : opts.e2e?.box;
  const signer = opts.e2e?.sign === true ? signingKeyPair() : opts.e2e?.sign;
  const ackIntervalMs = opts.ackIntervalMs ?? 200;
  const dedupeWindow = opts.dedupeWindow ?? 10_000;

  let state: AgentState = 'connecting';
  const setState = (to: AgentState) => {
    if (state === to) return;
    const from = state;
    state = to;
    opts.onStateChange?.({ from, to });
  };
  const reportError = (e: unknown) => opts.onError?.(e instanceof Error ? e : new Error(String(e)));

  const seen = new Set<string>();
  const seenOrder: string[] = [];
  /** Requests waiting for their reply, by message id; with `to` (the agent asked), only a reply from it answers one. */
  const pendingRequests = new Map<
    string,
    { to?: string; resolve: (m: IncomingMessage) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }
  >();
  let pendingAcks: { message_id: string; stream_id: string }[] = [];
  let cursor: string | undefined = opts.resumeFrom;
  let cursorFlushed: string | undefined = opts.resumeFrom;
  const trackCursor = opts.trackCursor ?? true;
  const keyCache = new Map<string, Promise<{ box?: string; sign?: string }>>();

  const publicKeysOf = (agentId: string) => {
    let p = keyCache.get(agentId);
    if (!p) {
      p = trpc.agents.get.query({ agent_id: agentId }).then((a) => a.public_keys);
      p.catch(() => keyCache.delete(agentId));
      keyCache.set(agentId, p);
    }
    return p;
  };

  async function openContent(env: Envelope): Promise<JsonValue> {
    if (!env.encrypted || !isSealed(env.payload.content)) return env.payload.content;
    const sealed = fromBase64(env.payload.content.ciphertext);
    if (env.payload.content.alg === 'nacl-box') {
      if (!box) throw new Error(`message ${env.id} is sealed to us with box, but this agent has no box key`);
      const theirs = (await publicKeysOf(env.from_agent)).box;
      if (!theirs) throw new Error(`cannot open message ${env.id}: ${env.from_agent} has no registered box key`);
      return JSON.parse(utf8Decode(boxOpen(fromBase64(theirs), box.secretKey, sealed))) as JsonValue;
    }
    const key = env.channel ? opts.e2e?.channelKeys?.[env.channel] : undefined;
    if (!key) throw new Error(`cannot open message ${env.id}: no key for channel ${env.channel}`);
    return JSON.parse(utf8Decode(secretboxOpen(key, sealed))) as JsonValue;
  }

  async function checkSignature(env: Envelope): Promise<void> {
    if (!env.signature) {
      if (opts.e2e?.requireSignatures) throw new Error(`message ${env.id} from ${env.from_agent} is not signed`);
      return;
    }
    const theirs = (await publicKeysOf(env.from_agent)).sign;
    if (!theirs) {
      if (opts.e2e?.requireSignatures) throw new Error(`message ${env.id}: ${env.from_agent} has no registered signing key`);
      return;
    }
    if (!verifyEnvelope(env, fromBase64(theirs))) throw new Error(`message ${env.id} from ${env.from_agent} has an invalid signature`);
  }

  function remember(id: string): boolean {
    if (seen.has(id)) return false;
    seen.add(id);
    seenOrder.push(id);
    if (seenOrder.length > dedupeWindow) seen.delete(seenOrder.shift()!);
    return true;
  }

  async function handle(streamId: string, replayed: boolean, env: Envelope, resumeId: string): Promise<void> {
    if (remember(env.id)) {
      try {
        await checkSignature(env);
        const message: IncomingMessage = { envelope: env, content: await openContent(env), streamId, replayed };
        const parent = env.payload.context.parent_message_id;
        const pending = parent && env.type === 'reply' ? pendingRequests.get(parent) : undefined;
        // A reply from anyone but the agent asked does not answer the request (the hub refuses
        // such replies too; this holds whatever the hub).
        const waiter = pending && (pending.to === undefined || pending.to === env.from_agent) ? pending : undefined;
        if (waiter) {
          pendingRequests.delete(parent!);
          clearTimeout(waiter.timer);
          waiter.resolve(message);
        } else if (env.type === 'task' && opts.onTask) {
          try {
            const result = await opts.onTask(message);
            if (result !== undefined) await agent.reply(env, result);
          } catch (err) {
            await agent.reply(env, { error: err instanceof Error ? err.message : String(err) }, { failed: true }).catch(reportError);
          }
        } else await opts.onMessage?.(message);
      } catch (err) {
        reportError(err);
      }
      if (env.payload.meta.requires_ack) pendingAcks.push({ message_id: env.id, stream_id: streamId });
    }
    cursor = resumeId;
  }

  async function deliverReply(streamId: string, replayed: boolean, env: Envelope, parent: string): Promise<void> {
    try {
      await checkSignature(env);
      const message: IncomingMessage = { envelope: env, content: await openContent(env), streamId, replayed };
      const waiter = pendingRequests.get(parent);
      // A reply from anyone but the agent asked does not answer a request().
      if (!waiter || (waiter.to !== undefined && waiter.to !== env.from_agent)) return void (await opts.onMessage?.(message));
      pendingRequests.delete(parent);
      clearTimeout(waiter.timer);
      waiter.resolve(message);
    } catch (err) {
      reportError(err);
    }
    if (env.payload.meta.requires_ack) pendingAcks.push({ message_id: env.id, stream_id: streamId });
  }

  async function reportGap(gap: InboxGap): Promise<void> {
    try {
      if (opts.onGap) await opts.onGap(gap);
      else reportError(new InboxGapError(gap));
    } catch (err) {
      reportError(err);
    }
  }

  async function flushAcks(): Promise<void> {
    if (pendingAcks.length === 0 && (!trackCursor || cursor === cursorFlushed)) return;
    const acks = pendingAcks;
    pendingAcks = [];
    const at = trackCursor ? cursor : undefined;
    try {
      await trpc.messages.ack.mutate({ acks, cursor: at });
      cursorFlushed = at;
    } catch (err) {
      pendingAcks = acks.concat(pendingAcks);
      reportError(err);
    }
  }
  const ackTimer = setInterval(() => void flushAcks(), ackIntervalMs);

  let readyResolve!: () => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  ready.catch(() => {});

  let unsubscribe: (() => void) | null = null;
  let attempt = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  // Messages are handled one at a time, in the order the hub yields them.
  let chain: Promise<void> = Promise.resolve();

  function subscribe(): void {
    if (state === 'closed') return;
    const sub = trpc.messages.inbox.subscribe(cursor ? { lastEventId: cursor } : undefined, {
      onStarted: () => {
        attempt = 0;
        setState('live');
        readyResolve();
      },
      onData: (event) => {
        const { id, data } = event as unknown as { id: string; data: { stream_id: string; replayed: boolean; message: Envelope; gap?: InboxGap } };
        const env = data.message;
        const parent = env.payload.context.parent_message_id;
        // A reply someone waits for is handed over at once, not after the message in hand: a task
        // handler that waits for a reply (delegation) would otherwise wait for itself. The cursor
        // still moves in order, when the chain reaches this entry (handle skips the duplicate).
        if (env.type === 'reply' && parent && pendingRequests.has(parent) && remember(env.id)) void deliverReply(data.stream_id, data.replayed, env, parent);
        const gap = data.gap;
        if (gap) chain = chain.then(() => reportGap(gap));
        chain = chain.then(() => handle(data.stream_id, data.replayed, data.message, id));
      },
      onError: (err) => {
        const code = err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : undefined;
        if (code && FATAL_CODES.has(code)) {
          readyReject(err);
          reportError(err);
          void agent.close();
          return;
        }
        reportError(err);
        setState('reconnecting');
        unsubscribe = null;
        retryTimer = setTimeout(subscribe, backoffDelay(attempt++));
      },
    });
    unsubscribe = () => sub.unsubscribe();
  }

  const agent: LinkerAgent = {
    id: opts.agentId,
    trpc,
    get state() {
      return state;
    },
    ready,
    async send(message, sendOpts = {}): Promise<SendResult> {
      let content = message.payload.content as JsonValue;
      let encrypted = message.encrypted ?? false;
      if (sendOpts.seal === 'box') {
        if (!box) throw new Error('seal: "box" needs an e2e box key pair');
        if (!message.to_agent) throw new Error('seal: "box" needs a to_agent');
        const theirs = (await publicKeysOf(message.to_agent)).box;
        if (!theirs) throw new Error(`${message.to_agent} has no registered box key`);
        content = { alg: 'nacl-box', ciphertext: toBase64(boxSeal(fromBase64(theirs), box.secretKey, utf8Encode(JSON.stringify(content)))) };
        encrypted = true;
      } else if (sendOpts.seal === 'secretbox') {
        const key = message.channel ? opts.e2e?.channelKeys?.[message.channel] : undefined;
        if (!key) throw new Error(`seal: "secretbox" needs a key for channel ${message.channel ?? '(none)'}`);
        content = { alg: 'nacl-secretbox', ciphertext: toBase64(secretboxSeal(key, utf8Encode(JSON.stringify(content)))) };
        encrypted = true;
      }
      const outgoing = { ...message, encrypted, payload: { ...message.payload, content } };
      if (!signer) return trpc.messages.send.mutate(outgoing);
      // A signed message is complete before signing: the hub then changes nothing in it.
      const full = completeEnvelope(OutgoingMessageSchema.parse(outgoing), { fromAgent: opts.agentId });
      return trpc.messages.send.mutate({ ...full, signature: signEnvelope({ ...full, signature: null }, signer.secretKey) });
    },
    reply(to, content, extra = {}) {
      // The answer to a box-sealed message is sealed back to its sender, never left readable on the hub.
      const sealBack = box !== undefined && to.encrypted && isSealed(to.payload.content) && to.payload.content.alg === 'nacl-box';
      return agent.send(
        {
          to_agent: to.from_agent,
          type: extra.type ?? 'reply',
          payload: {
            content: extra.failed
              ? { failed: true, ...(typeof content === 'object' && content !== null && !Array.isArray(content) ? content : { error: content }) }
              : content,
            context: { session_id: to.payload.context.session_id, parent_message_id: to.id, priority: to.payload.context.priority },
          },
        },
        sealBack ? { seal: 'box' } : {},
      );
    },
    expectReply(messageId, timeoutMs) {
      const reply = new Promise<IncomingMessage>((resolve, reject) => {
        const timer = setTimeout(() => {
          pendingRequests.delete(messageId);
          reject(new Error(`message ${messageId}: no reply within ${timeoutMs} ms`));
        }, timeoutMs);
        pendingRequests.set(messageId, { resolve, reject, timer });
      });
      const cancel = () => {
        const w = pendingRequests.get(messageId);
        if (!w) return;
        clearTimeout(w.timer);
        pendingRequests.delete(messageId);
      };
      return { reply, cancel };
    },
    async request(to, content, reqOpts = {}) {
      const id = globalThis.crypto.randomUUID();
      const timeoutMs = reqOpts.timeoutMs ?? 60_000;
      const answer = new Promise<IncomingMessage>((resolve, reject) => {
        const timer = setTimeout(() => {
          pendingRequests.delete(id);
          reject(new Error(`request ${id} to ${to}: no reply within ${timeoutMs} ms`));
        }, timeoutMs);
        pendingRequests.set(id, { to, resolve, reject, timer });
      });
      try {
        await agent.send(
          {
            id,
            to_agent: to,
            type: 'task',
            payload: { content, context: { session_id: reqOpts.sessionId ?? null, priority: reqOpts.priority }, meta: { requires_ack: true } },
          },
          reqOpts.seal ? { seal: reqOpts.seal } : {},
        );
        reqOpts.onSent?.(id);
      } catch (err) {
        const w = pendingRequests.get(id);
        if (w) {
          clearTimeout(w.timer);
          pendingRequests.delete(id);
        }
        throw err;
      }
      return answer;
    },
    async close() {
      if (state === 'closed') return;
      setState('closed');
      clearTimeout(retryTimer);
      clearInterval(ackTimer);
      // Stop receiving, finish the messages being handled, then store the cursor: the next
      // connection (on any node) resumes right after the last message this one handled.
      unsubscribe?.();
      unsubscribe = null;
      let waited: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([chain.catch(() => {}), new Promise<void>((r) => (waited = setTimeout(r, 5_000)))]);
      clearTimeout(waited);
      await flushAcks().catch(() => {});
      for (const [, w] of pendingRequests) {
        clearTimeout(w.timer);
        w.reject(new Error('agent closed'));
      }
      pendingRequests.clear();
      await conn.close();
    },
  };

  try {
    if (box || signer) {
      await trpc.agents.update.mutate({
        public_keys: { ...(box ? { box: toBase64(box.publicKey) } : {}), ...(signer ? { sign: toBase64(signer.publicKey) } : {}) },
      });
    }
    for (const channel of opts.channels ?? []) await trpc.channels.join.mutate({ channel });
  } catch (err) {
    await agent.close();
    throw err;
  }
  subscribe();
  return agent;
}
