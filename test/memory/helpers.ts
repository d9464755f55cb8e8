/** Builders shared by the memory tests: complete envelopes, and sending as the hub does. */
import { completeEnvelope, OutgoingMessageSchema, type Envelope } from '../../protocol/envelope.js';
import type { JsonValue } from '../../protocol/json.js';
import type { SharedMemory } from '../../memory/index.js';

export interface MessageSpec {
  from: string;
  to?: string | null;
  channel?: string | null;
  content?: JsonValue;
  type?: Envelope['type'];
  priority?: number;
  ttl?: number | null;
  sessionId?: string | null;
  now?: Date;
}

/** A complete envelope, as the hub builds it from what a sender submits. */
export function envelope(spec: MessageSpec): Envelope {
  const outgoing = OutgoingMessageSchema.parse({
    type: spec.type ?? 'task',
    to_agent: spec.to ?? null,
    channel: spec.channel ?? null,
    payload: {
      content: spec.content ?? 'hello',
      context: { priority: spec.priority ?? 5, session_id: spec.sessionId ?? null },
      meta: { ttl: spec.ttl ?? null },
    },
  });
  return completeEnvelope(outgoing, { fromAgent: spec.from, ...(spec.now ? { now: spec.now } : {}) });
}

/** Sends like the hub does: a direct message to its inbox, a channel message to members and the channel. */
export async function send(memory: SharedMemory, spec: MessageSpec) {
  const env = envelope(spec);
  const stored = await memory.messages.prepare(env);
  if (env.to_agent) return { envelope: env, ...(await memory.messages.route(stored, [env.to_agent], null)) };
  const members = (await memory.channels.members(env.channel!)).filter((a) => a !== env.from_agent);
  return { envelope: env, ...(await memory.messages.route(stored, members, env.channel)) };
}
