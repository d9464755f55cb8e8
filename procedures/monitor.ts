/**
 * monitor.stream: every routed message, live, for humans and dashboards (monitor scope).
 * Content sealed at rest is shown; end-to-end encrypted content (encrypted: true) stays opaque.
 */
import { z } from 'zod';
import { AgentIdSchema, ChannelNameSchema } from '../protocol/ids.js';
import { MessageTypeSchema, type Envelope } from '../protocol/envelope.js';
import { monitorProcedure, router } from '../router/trpc.js';

export interface MonitorEvent {
  at: string;
  node: string;
  message: Envelope;
  delivered_to: string[];
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
      const queue: MonitorEvent[] = [];
      let dropped = 0;
      let wake: (() => void) | null = null;
      const off = hub.bus.onRouted((e) => {
        if (input?.channel && e.channel !== input.channel) return;
        if (input?.agent && e.from !== input.agent && e.to !== input.agent) return;
        if (input?.type && e.type !== input.type) return;
        if (queue.length >= hub.settings.maxQueuedMessages) {
          dropped++;
          return;
        }
        try {
          const { envelope } = hub.memory.messages.decodeFields('0-0', e.fields, {});
          queue.push({ at: new Date(e.sentAt).toISOString(), node: e.node, message: envelope, delivered_to: Object.keys(e.inboxes) });
        } catch (err) {
          hub.logger.error({ event: 'monitor_decode_failed', err }, 'monitor could not open a routed message');
        }
        wake?.();
      });
      const onAbort = () => wake?.();
      signal?.addEventListener('abort', onAbort);
      try {
        while (!signal?.aborted) {
          const next = queue.shift();
          if (!next) {
            if (dropped > 0) {
              hub.logger.warn({ event: 'monitor_dropped', dropped, agent_id: ctx.agent.id }, 'monitor too slow; events dropped');
              dropped = 0;
            }
            await new Promise<void>((r) => (wake = r));
            wake = null;
            continue;
          }
          yield next;
        }
      } finally {
        off();
        signal?.removeEventListener('abort', onAbort);
      }
    }),
});
