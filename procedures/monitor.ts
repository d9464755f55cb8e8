/**
 * monitor.stream: every routed message, live, for humans and dashboards (monitor scope).
 * Content sealed at rest is shown; end-to-end encrypted content (encrypted: true) stays opaque.
 */
import { z } from 'zod';
import { AgentIdSchema, ChannelNameSchema } from '../protocol/ids.js';
import { MessageTypeSchema, type Envelope } from '../protocol/envelope.js';
import { monitorProcedure, router } from '../router/trpc.js';
import { entryBytes, waitForDrain } from './live.js';
import { liveLimits } from './shared.js';

export interface MonitorEvent {
  at: string;
  node: string;
  message: Envelope;
  delivered_to: string[];
  /** Present when the hub refused this message (a loop guard): it was neither stored nor delivered. */
  refused?: { guard: string; reason: string };
}

export const monitorRouter = router({
  stream: monitorProcedure
    .input(
      z
        .strictObject({
          channel: ChannelNameSchema.optional(),
          /** Messages from or to this agent. */
          agent: AgentIdSchema.optional(),
          type: MessageTypeSchema.optional(),
        })
        .optional(),
    )
    .subscription(async function* ({ ctx, input, signal }) {
      const { hub } = ctx;
      // Bounded by count and bytes (an event holds its whole envelope); past that, events are
      // dropped and counted. Nothing is yielded while the socket holds more than maxBufferedBytes,
      // and a socket that does not drain within slowConsumerTimeoutMs is terminated.
      const queue: { event: MonitorEvent; bytes: number }[] = [];
      let queuedBytes = 0;
      let dropped = 0;
      let wake: (() => void) | null = null;
      const reportDropped = () => {
        if (dropped === 0) return;
        hub.logger.warn({ event: 'monitor_dropped', dropped, agent_id: ctx.agent.id }, 'monitor too slow; events dropped');
        dropped = 0;
      };
      const wanted = (channel: string | null, from: string, to: string | null, type: string) =>
        (!input?.channel || channel === input.channel) &&
        (!input?.agent || from === input.agent || to === input.agent) &&
        (!input?.type || type === input.type);
      /** Queues the event `make` builds, unless the queue is full (then it is dropped and counted). */
      const enqueue = (bytes: number, make: () => MonitorEvent | null) => {
        if (queue.length >= hub.settings.maxQueuedMessages || queuedBytes + bytes > hub.settings.maxBufferedBytes) {
          dropped++;
          return;
        }
        const event = make();
        if (!event) return;
        queue.push({ event, bytes });
        queuedBytes += bytes;
        wake?.();
      };
      const off = hub.bus.onRouted((e) => {
        if (!wanted(e.channel, e.from, e.to, e.type)) return;
        enqueue(entryBytes(e.fields), () => {
          try {
            const { envelope } = hub.memory.messages.decodeFields('0-0', e.fields, {});
            return { at: new Date(e.sentAt).toISOString(), node: e.node, message: envelope, delivered_to: Object.keys(e.inboxes) };
          } catch (err) {
            hub.logger.error({ event: 'monitor_decode_failed', err }, 'monitor could not open a routed message');
            return null;
          }
        });
      });
      const offRefused = hub.bus.onRefused((e) => {
        const m = e.message;
        if (!wanted(m.channel, m.from_agent, m.to_agent, m.type)) return;
        enqueue(JSON.stringify(m).length, () => ({ at: e.at, node: e.node, message: m, delivered_to: [], refused: e.refused }));
      });
      const onAbort = () => wake?.();
      signal?.addEventListener('abort', onAbort);
      const limits = liveLimits(ctx, 'monitor.stream');
      try {
        while (!signal?.aborted) {
          const next = queue.shift();
          if (!next) {
            reportDropped();
            await new Promise<void>((r) => (wake = r));
            wake = null;
            continue;
          }
          queuedBytes -= next.bytes;
          if (!(await waitForDrain({ ...limits, timeoutMs: limits.slowConsumerTimeoutMs, signal }))) break;
          yield next.event;
        }
      } finally {
        reportDropped();
        off();
        offRefused();
        signal?.removeEventListener('abort', onAbort);
      }
    }),
});
