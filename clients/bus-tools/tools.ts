/**
 * The bus tools: what an AI can do on the bus by itself, each defined once (name, description
 * written for a model, zod input, handler over the typed client). Two thin adapters serve them:
 * the MCP server (bin/mcp.ts, for coding CLIs) and the connectors' function calling (API models).
 * Loop guards are the hub's, not these tools': every send passes the message being handled on as
 * `caused_by` (or `parent_message_id`), so the hub counts its hops.
 */
import { z } from 'zod';
import type { Envelope, OutgoingMessage } from '../../protocol/envelope.js';
import { AgentIdSchema, ChannelNameSchema, MessageIdSchema, SessionIdSchema } from '../../protocol/ids.js';
import type { JsonValue } from '../../protocol/json.js';
import { ContextScopeSchema } from '../../protocol/records.js';
import type { LinkerClient } from '../client.js';

/** What the tools act through: one agent's typed client, plus how it waits for messages. */
export interface BusToolHost {
  trpc: LinkerClient;
  agentId: string;
  /** Sends as this agent (the runtime's send, so end-to-end options apply). Default: `trpc.messages.send`. */
  send?: (message: Omit<OutgoingMessage, 'from_agent'>) => Promise<{ id: string }>;
  /** Call before sending `messageId`: its reply as the model should see it, or null after `timeoutMs`. */
  expectReply(messageId: string, timeoutMs: number, signal?: AbortSignal): { reply: Promise<DeliveredView | null>; cancel(): void };
  /** The message being handled, passed on as `caused_by` of what the model sends. */
  handling(): string | null;
  /** The session a message belongs to when the model names none (a connector's task session). */
  defaultSessionId?: () => string | null;
  /** Messages for `wait_for_messages` (the MCP server's inbox); absent where tasks arrive otherwise. */
  takeMessages?: (max: number, timeoutMs: number, signal?: AbortSignal) => Promise<DeliveredView[]>;
  /** A message handed to the model earlier, for `reply`. */
  handedMessage?: (messageId: string) => Envelope | undefined;
  signal?: AbortSignal;
}

/** A message as the model receives it. */
export interface DeliveredView {
  [key: string]: JsonValue;
}

export function viewOf(envelope: Envelope, content: JsonValue = envelope.payload.content): DeliveredView {
  const c = envelope.payload.context;
  return {
    message_id: envelope.id,
    from: envelope.from_agent,
    to: envelope.to_agent,
    channel: envelope.channel,
    type: envelope.type,
    session_id: c.session_id,
    parent_message_id: c.parent_message_id,
    priority: c.priority,
    hops: envelope.hops ?? 0,
    timestamp: envelope.timestamp,
    encrypted: envelope.encrypted,
    content,
  };
}

/** A refusal the model should read (bad arguments, unknown message); the adapters make it a tool error. */
export class ToolInputError extends Error {
  override readonly name = 'ToolInputError';
}

export interface BusTool<S extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  description: string;
  /** The input's fields (the MCP SDK takes the shape; function calling takes its JSON Schema). */
  input: S;
  /** Where it makes sense: `mcp` (a coding CLI that waits for its own messages), `api` (a connector answering a task). */
  surfaces: readonly ('mcp' | 'api')[];
  run(host: BusToolHost, input: z.output<z.ZodObject<S>>): Promise<JsonValue>;
}

function tool<S extends z.ZodRawShape>(t: BusTool<S>): BusTool<S> {
  return t;
}

/** Longest wait a tool call may ask for (a client's own tool timeout may be shorter: Codex's is 60 s). */
export const MAX_WAIT_SECONDS = 600;
/** `wait_for_messages` waits this long by default: under Codex's 60 s tool timeout. */
export const DEFAULT_WAIT_SECONDS = 30;
const MAX_TEXT = 256 * 1024;

const Content = z
  .string()
  .min(1, { error: 'content must not be empty' })
  .max(MAX_TEXT, { error: `content is limited to ${MAX_TEXT} characters` });

const whoami = tool({
  name: 'whoami',
  description: 'Who you are on the Skynet Linker bus: your agent id, agent type and the scopes of your token.',
  input: {},
  surfaces: ['mcp', 'api'],
  async run(host) {
    const me = await host.trpc.agents.whoami.query();
    const record = await host.trpc.agents.get.query({ agent_id: me.agent_id }).catch(() => null);
    return { agent_id: me.agent_id, agent_type: record?.agent_type ?? null, scopes: me.scopes };
  },
});

const listAgents = tool({
  name: 'list_agents',
  description: 'The agents registered on the bus, with their type and presence (online, last seen). Use it to find whom to ask.',
  input: {},
  surfaces: ['mcp', 'api'],
  async run(host) {
    const agents = await host.trpc.agents.list.query();
    return agents.map((a) => ({ agent_id: a.agent_id, agent_type: a.agent_type, online: a.online, last_seen: a.last_seen ?? null }));
  },
});

const sendMessage = tool({
  name: 'send_message',
  description:
    'Send a message on the bus: to one agent (`to`) or to every member of a `channel`. By default a task. ' +
    'With `wait_for_reply_seconds`, waits for the reply and returns it (or `timed_out: true`): use it to ask another agent and use its answer. ' +
    'Put it in a collaboration session with `session_id` so the others see it in the session.',
  input: {
    to: AgentIdSchema.optional().describe('Recipient agent id'),
    channel: ChannelNameSchema.optional().describe('Channel name (every member gets it), instead of `to`'),
    type: z.enum(['task', 'broadcast', 'context_update']).default('task').describe('Message type (default task)'),
    content: Content.describe('The message text'),
    session_id: SessionIdSchema.optional().describe('Session the message belongs to'),
    priority: z.number().int().min(1).max(10).optional().describe('1 (low) to 10 (high), default 5'),
    wait_for_reply_seconds: z
      .number()
      .int()
      .min(1)
      .max(MAX_WAIT_SECONDS)
      .optional()
      .describe(`Wait up to this many seconds for the reply (at most ${MAX_WAIT_SECONDS})`),
  },
  surfaces: ['mcp', 'api'],
  async run(host, input) {
    if (!input.to && !input.channel && input.type !== 'broadcast') throw new ToolInputError('give `to` (an agent id) or `channel`');
    if (input.wait_for_reply_seconds && !input.to) throw new ToolInputError('wait_for_reply_seconds needs `to` (one agent answers)');
    const id = globalThis.crypto.randomUUID();
    const handling = host.handling();
    const message: Omit<OutgoingMessage, 'from_agent'> = {
      id,
      to_agent: input.to ?? null,
      channel: input.channel ?? null,
      type: input.type,
      payload: {
        content: input.content,
        context: {
          session_id: input.session_id ?? host.defaultSessionId?.() ?? null,
          ...(input.priority !== undefined ? { priority: input.priority } : {}),
          ...(handling ? { caused_by: handling } : {}),
        },
        meta: { requires_ack: input.wait_for_reply_seconds !== undefined },
      },
    };
    const waiting = input.wait_for_reply_seconds ? host.expectReply(id, input.wait_for_reply_seconds * 1000, host.signal) : null;
    let sent: { id: string };
    try {
      sent = await (host.send ? host.send(message) : host.trpc.messages.send.mutate(message));
    } catch (err) {
      waiting?.cancel();
      throw err;
    }
    if (!waiting) return { message_id: sent.id } as JsonValue;
    const reply = await waiting.reply;
    if (!reply)
      return {
        message_id: sent.id,
        timed_out: true,
        note: `no reply from ${input.to} within ${input.wait_for_reply_seconds} s; a late reply arrives through wait_for_messages`,
      };
    return { message_id: sent.id, reply };
  },
});

const waitForMessages = tool({
  name: 'wait_for_messages',
  description:
    'Returns the messages that arrived for you since your last call, waiting up to `timeout_seconds` when there are none (empty list on timeout). ' +
    'Call it whenever you are idle; answer tasks with `reply`. Messages are acknowledged on your next call.',
  input: {
    timeout_seconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_WAIT_SECONDS)
      .default(DEFAULT_WAIT_SECONDS)
      .describe(`How long to wait when nothing is there (default ${DEFAULT_WAIT_SECONDS} s)`),
    max: z.number().int().min(1).max(100).default(10).describe('Most messages returned at once (default 10)'),
  },
  surfaces: ['mcp'],
  async run(host, input) {
    if (!host.takeMessages) throw new ToolInputError('wait_for_messages is not available here');
    const messages = await host.takeMessages(input.max, input.timeout_seconds * 1000, host.signal);
    return { messages, ...(messages.length === 0 ? { timed_out: true } : {}) };
  },
});

const reply = tool({
  name: 'reply',
  description: 'Answer a message you received (by its `message_id` from wait_for_messages): the answer goes to its sender, in its session.',
  input: {
    message_id: MessageIdSchema.describe('The message you answer'),
    content: Content.describe('Your answer'),
  },
  surfaces: ['mcp'],
  async run(host, input) {
    const original = host.handedMessage?.(input.message_id);
    if (!original) throw new ToolInputError(`no message ${input.message_id} was delivered to you here (reply answers a message from wait_for_messages)`);
    const message: Omit<OutgoingMessage, 'from_agent'> = {
      to_agent: original.from_agent,
      type: 'reply',
      payload: {
        content: input.content,
        context: { session_id: original.payload.context.session_id, parent_message_id: original.id, priority: original.payload.context.priority },
      },
    };
    const sent = await (host.send ? host.send(message) : host.trpc.messages.send.mutate(message));
    return { message_id: sent.id, to: original.from_agent };
  },
});

const contextPull = tool({
  name: 'context_pull',
  description: 'Read the shared context of a scope: `global`, `session:<id>` or `agent:<your id>`. Returns its version and data.',
  input: { scope: ContextScopeSchema.describe('global, session:<id> or agent:<id>') },
  surfaces: ['mcp', 'api'],
  async run(host, input) {
    const doc = await host.trpc.context.pull.query({ scope: input.scope });
    return { scope: doc.scope, version: doc.version, data: doc.data, updated_by: doc.updated_by ?? null };
  },
});

const contextPush = tool({
  name: 'context_push',
  description:
    'Add to the shared context of a scope (share findings with the others): `patch` is merged into the document (objects merge key by key, a null value deletes a key). ' +
    'With `expected_version` the push fails with CONFLICT if someone else wrote first: pull again and retry.',
  input: {
    scope: ContextScopeSchema.describe('global, session:<id> or agent:<id>'),
    patch: z.record(z.string(), z.json()).describe('Keys to set (JSON values)'),
    expected_version: z.number().int().min(0).optional().describe('Only if the document is still at this version'),
  },
  surfaces: ['mcp', 'api'],
  async run(host, input) {
    const doc = await host.trpc.context.push.mutate({
      scope: input.scope,
      patch: input.patch as Record<string, JsonValue>,
      expected_version: input.expected_version,
    });
    return { scope: doc.scope, version: doc.version };
  },
});

const sessionStart = tool({
  name: 'session_start',
  description: 'Start a collaboration session with other agents and a goal; returns its id. Send its messages with that `session_id`.',
  input: {
    participants: z.array(AgentIdSchema).min(1).max(100).describe('Agent ids taking part (you are added)'),
    goal: z.string().min(1).max(2000).describe('What the session is for'),
    session_id: SessionIdSchema.optional().describe('Id to use (default: generated)'),
  },
  surfaces: ['mcp', 'api'],
  async run(host, input) {
    const s = await host.trpc.sessions.create.mutate({ session_id: input.session_id, participants: input.participants, metadata: { goal: input.goal } });
    return { session_id: s.session_id, participants: s.participants, status: s.status };
  },
});

const sessionShow = tool({
  name: 'session_show',
  description: 'Show a session: status, participants, goal, its recent messages (who sent what to whom) and its shared context.',
  input: {
    session_id: SessionIdSchema.describe('The session'),
    message_limit: z.number().int().min(0).max(200).default(50).describe('How many recent messages (default 50)'),
  },
  surfaces: ['mcp', 'api'],
  async run(host, input) {
    const s = await host.trpc.sessions.get.query({ session_id: input.session_id, message_limit: input.message_limit });
    const context = await host.trpc.context.pull.query({ scope: `session:${input.session_id}` }).catch(() => null);
    return {
      session_id: s.session_id,
      status: s.status,
      participants: s.participants,
      metadata: s.metadata as Record<string, JsonValue>,
      messages: s.messages.map((m) => ({ message_id: m.message_id, from: m.from, to: m.to, type: m.type, timestamp: m.timestamp })),
      context: context ? { version: context.version, data: context.data } : null,
    };
  },
});

/** Every bus tool, in the order they are listed to a model. */
export const BUS_TOOLS: readonly BusTool[] = [
  whoami,
  listAgents,
  sendMessage,
  waitForMessages,
  reply,
  contextPull,
  contextPush,
  sessionStart,
  sessionShow,
] as unknown as BusTool[];

export function busToolsFor(surface: 'mcp' | 'api'): readonly BusTool[] {
  return BUS_TOOLS.filter((t) => t.surfaces.includes(surface));
}

/** The tool's input as one strict zod object (unknown fields refused). */
export function inputSchemaOf(t: BusTool): z.ZodObject {
  return z.strictObject(t.input);
}

/** The input's JSON Schema (draft 2020-12), for vendors' function declarations. */
export function jsonSchemaOf(t: BusTool): Record<string, unknown> {
  const schema = z.toJSONSchema(inputSchemaOf(t), { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete schema.$schema;
  return schema;
}

export type ToolOutcome = { ok: true; result: JsonValue } | { ok: false; error: string };

/**
 * Runs one tool call from a model: parses the arguments (a clear message for bad ones), runs the
 * handler, and turns any failure (a hub error included) into `{ ok: false, error }`, never a throw.
 */
export async function callBusTool(host: BusToolHost, tools: readonly BusTool[], name: string, args: unknown): Promise<ToolOutcome> {
  const t = tools.find((x) => x.name === name);
  if (!t) return { ok: false, error: `unknown tool ${JSON.stringify(name).slice(0, 80)}; the tools are ${tools.map((x) => x.name).join(', ')}` };
  const parsed = inputSchemaOf(t).safeParse(args ?? {});
  if (!parsed.success) return { ok: false, error: `bad arguments for ${name}: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}` };
  try {
    return { ok: true, result: await t.run(host, parsed.data as never) };
  } catch (err) {
    return { ok: false, error: errorText(err) };
  }
}

/** The hub's message (with its code) or the error's, on one line. */
export function errorText(err: unknown): string {
  const e = err as { message?: unknown; data?: { code?: unknown } };
  const message = typeof e?.message === 'string' ? e.message.split('\n')[0]! : String(err);
  const code = typeof e?.data?.code === 'string' ? e.data.code : null;
  return code && !message.startsWith(code) ? `${code}: ${message}` : message;
}
