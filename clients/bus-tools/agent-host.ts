/**
 * The bus tools over the agent runtime (a connector answering a task): sends go through the
 * runtime (end-to-end options apply), replies are awaited with its `expectReply`, and what the
 * model sends is passed on as caused by the task in hand.
 */
import type { LinkerAgent } from '../agent.js';
import { viewOf, type BusToolHost } from './tools.js';

export interface AgentToolHostOptions {
  /** The message being handled (the task), passed on as `caused_by`. */
  handling?: () => string | null;
  /** The session of what the model sends when it names none (the task's). */
  defaultSessionId?: () => string | null;
  signal?: AbortSignal;
}

export function agentToolHost(agent: LinkerAgent, opts: AgentToolHostOptions = {}): BusToolHost {
  return {
    trpc: agent.trpc,
    agentId: agent.id,
    send: (message) => agent.send(message),
    expectReply(messageId, timeoutMs) {
      const w = agent.expectReply(messageId, timeoutMs);
      // A timeout (or the agent closing) is a "no reply" result for the model, not a failure.
      return {
        reply: w.reply.then(
          (m) => viewOf(m.envelope, m.content),
          () => null,
        ),
        cancel: w.cancel,
      };
    },
    handling: opts.handling ?? (() => null),
    defaultSessionId: opts.defaultSessionId,
    signal: opts.signal,
  };
}
