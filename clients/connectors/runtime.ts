/**
 * Puts a connector on the bus: for each incoming task, pull the shared context (global and the
 * task's session scope) and the session's recent messages through the agent's typed client, call
 * the connector, optionally push a summary into the shared context, and reply. A connector error
 * is thrown to the agent runtime, which sends it back as a reply `{ failed: true, error }`: the
 * asking agent is never left waiting and this process never crashes on a vendor error.
 */
import { connectAgent, type AgentOptions, type IncomingMessage, type LinkerAgent } from '../agent.js';
import type { JsonValue } from '../../protocol/json.js';
import { agentToolHost } from '../bus-tools/agent-host.js';
import { busToolsFor, callBusTool, jsonSchemaOf } from '../bus-tools/tools.js';
import { DEFAULT_MAX_TOOL_ROUNDS, type TaskTools } from './tool-loop.js';
import type { Connector, ConnectorReply, ConnectorTask, ContextView, SessionTurn } from './types.js';

export type PushContextTarget = 'session' | 'agent';

export interface ConnectorHandlerOptions {
  connector: Connector;
  /**
   * After each answer, push `{ last_answer: { agent, task_id, from, summary, ... } }` into the
   * shared context: `'session'` (the task's session scope, or `agent:<id>` when the task has no
   * session), `'agent'` (always `agent:<id>`). `true` means `'session'`. Default: off.
   */
  pushContextSummary?: boolean | PushContextTarget;
  /** How many recent session messages go into the prompt. Default 20. */
  historyLimit?: number;
  /** Called after each task: answered or failed. */
  onAnswer?: (event: AnswerEvent) => void;
  /** Non-fatal problems (context that could not be pulled or pushed). */
  onWarning?: (err: Error) => void;
  /**
   * Offer the bus tools (send_message with wait_for_reply_seconds, context_pull/push, sessions,
   * agents) to the model through the vendor's function calling, with at most `maxRounds` rounds
   * of tool calls per task (default 8). Connectors without function calling (command) ignore it.
   * Default: off.
   */
  busTools?: boolean | { maxRounds?: number };
}

export interface AnswerEvent {
  task_id: string;
  from: string;
  session_id: string | null;
  ok: boolean;
  /** The failure's message when `ok` is false. */
  error?: string;
  reply?: ConnectorReply;
  duration_ms: number;
}

/** What the asking agent receives as the reply's content. */
export interface ConnectorReplyContent {
  [key: string]: JsonValue;
}

const SUMMARY_CHARS = 500;
const MEMO_SIZE = 1_000;

export interface ConnectorTaskHandler {
  onTask: (message: IncomingMessage) => Promise<undefined>;
  /** Gives the handler the agent it answers for (its typed client and reply). */
  attach(agent: LinkerAgent): void;
}

function toView(doc: { scope: string; version: number; data: Record<string, JsonValue> }): ContextView {
  return { scope: doc.scope, version: doc.version, data: doc.data };
}

/** The `onTask` handler of a connector agent. Use {@link runConnectorAgent} unless you build the agent yourself. */
export function createConnectorTaskHandler(opts: ConnectorHandlerOptions): ConnectorTaskHandler {
  let agentResolve!: (a: LinkerAgent) => void;
  const agentReady = new Promise<LinkerAgent>((r) => (agentResolve = r));
  const historyLimit = opts.historyLimit ?? 20;
  const pushTarget: PushContextTarget | null = opts.pushContextSummary === true ? 'session' : opts.pushContextSummary || null;
  const closing = new AbortController();
  // Contents this agent has seen (tasks it received, replies it sent), by message id: the session
  // only keeps references, and the hub only lets an agent read its own inbox.
  const memo = new Map<string, JsonValue>();
  const remember = (id: string, content: JsonValue) => {
    memo.set(id, content);
    if (memo.size > MEMO_SIZE) memo.delete(memo.keys().next().value!);
  };
  const toolSet = busToolsFor('api');
  const toolDefinitions = opts.busTools ? toolSet.map((t) => ({ name: t.name, description: t.description, parameters: jsonSchemaOf(t) })) : [];
  const maxRounds = typeof opts.busTools === 'object' ? (opts.busTools.maxRounds ?? DEFAULT_MAX_TOOL_ROUNDS) : DEFAULT_MAX_TOOL_ROUNDS;
  /** The tools for one task: what the model sends is caused by this task and stays in its session. */
  const toolsFor = (agent: LinkerAgent, env: IncomingMessage['envelope']): TaskTools | undefined => {
    if (!opts.busTools) return undefined;
    const host = agentToolHost(agent, { handling: () => env.id, defaultSessionId: () => env.payload.context.session_id, signal: closing.signal });
    return { definitions: toolDefinitions, maxRounds, call: (name, args) => callBusTool(host, toolSet, name, args) };
  };
  const warn = (what: string, err: unknown) => opts.onWarning?.(new Error(`${what}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`));

  async function gather(agent: LinkerAgent, message: IncomingMessage): Promise<ConnectorTask> {
    const env = message.envelope;
    const sessionId = env.payload.context.session_id;
    const trpc = agent.trpc;
    const [global, session, refs] = await Promise.allSettled([
      trpc.context.pull.query({ scope: 'global' }),
      sessionId ? trpc.context.pull.query({ scope: `session:${sessionId}` }) : Promise.resolve(null),
      sessionId && historyLimit > 0 ? trpc.sessions.get.query({ session_id: sessionId, message_limit: historyLimit + 1 }) : Promise.resolve(null),
    ]);
    if (global.status === 'rejected') warn('could not pull the global context', global.reason);
    if (session.status === 'rejected') warn(`could not pull the context of session ${sessionId}`, session.reason);
    if (refs.status === 'rejected') warn(`could not read session ${sessionId}`, refs.reason);
    let history: SessionTurn[] = [];
    if (refs.status === 'fulfilled' && refs.value) {
      history = refs.value.messages
        .filter((r) => r.message_id !== env.id)
        .slice(-historyLimit)
        .map((r) => ({ message_id: r.message_id, from: r.from, to: r.to, type: r.type, timestamp: r.timestamp }));
      // Messages addressed to this agent that it has not seen in this process (it restarted): its inbox has them.
      if (history.some((t) => t.to === agent.id && !memo.has(t.message_id))) {
        try {
          const inbox = await trpc.messages.history.query({ limit: 200 });
          for (const item of inbox.items) if (!item.message.encrypted) remember(item.message.id, item.message.payload.content);
        } catch (err) {
          warn('could not read this agent’s inbox history', err);
        }
      }
      for (const t of history) {
        const content = memo.get(t.message_id);
        if (content !== undefined) t.content = content;
      }
    }
    return {
      id: env.id,
      from: env.from_agent,
      agentId: agent.id,
      content: message.content,
      sessionId,
      context: {
        global: global.status === 'fulfilled' ? toView(global.value) : null,
        session: session.status === 'fulfilled' && session.value ? toView(session.value) : null,
      },
      history,
      signal: closing.signal,
      ...(opts.busTools ? { tools: toolsFor(agent, env) } : {}),
    };
  }

  async function pushSummary(agent: LinkerAgent, task: ConnectorTask, reply: ConnectorReply): Promise<void> {
    if (!pushTarget) return;
    const scope = pushTarget === 'session' && task.sessionId ? `session:${task.sessionId}` : `agent:${agent.id}`;
    const summary = reply.content.length > SUMMARY_CHARS ? `${reply.content.slice(0, SUMMARY_CHARS)}...` : reply.content;
    try {
      await agent.trpc.context.push.mutate({
        scope,
        patch: {
          last_answer: {
            agent: agent.id,
            connector: opts.connector.name,
            task_id: task.id,
            from: task.from,
            ...(reply.usage.model ? { model: reply.usage.model } : {}),
            summary,
            at: new Date().toISOString(),
          },
        },
      });
    } catch (err) {
      warn(`could not push the answer summary to ${scope}`, err);
    }
  }

  const onTask = async (message: IncomingMessage): Promise<undefined> => {
    const agent = await agentReady;
    const started = performance.now();
    const env = message.envelope;
    remember(env.id, message.content);
    const base = { task_id: env.id, from: env.from_agent, session_id: env.payload.context.session_id };
    let reply: ConnectorReply;
    let task: ConnectorTask;
    try {
      task = await gather(agent, message);
      reply = await opts.connector.answer(task);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      opts.onAnswer?.({ ...base, ok: false, error, duration_ms: Math.round(performance.now() - started) });
      // The agent runtime turns this into a reply { failed: true, error }.
      throw err instanceof Error ? err : new Error(error);
    }
    await pushSummary(agent, task, reply);
    const content: ConnectorReplyContent = {
      content: reply.content,
      connector: opts.connector.name,
      usage: { ...reply.usage },
      ...(reply.citations ? { citations: reply.citations } : {}),
    };
    // Replying here (not by returning) gives the reply's id, so later prompts can quote this answer.
    let sent: { id: string };
    try {
      sent = await agent.reply(env, content);
    } catch (err) {
      // E.g. an answer over the hub's payload limit: the runtime sends the failure instead.
      const error = `could not send the answer: ${err instanceof Error ? err.message : String(err)}`;
      opts.onAnswer?.({ ...base, ok: false, error, duration_ms: Math.round(performance.now() - started) });
      throw new Error(error);
    }
    remember(sent.id, content);
    opts.onAnswer?.({ ...base, ok: true, reply, duration_ms: Math.round(performance.now() - started) });
    return undefined;
  };

  return {
    onTask,
    attach(agent) {
      agentResolve(agent);
      const close = agent.close.bind(agent);
      // Closing the agent stops a call in flight (a running program is killed).
      agent.close = async () => {
        closing.abort();
        await opts.connector.close?.();
        await close();
      };
    },
  };
}

export type ConnectorAgentOptions = Omit<AgentOptions, 'onTask'> & ConnectorHandlerOptions;

/** Connects an agent whose tasks are answered by `connector`. Resolves once it is connected (not yet live: await `agent.ready`). */
export async function runConnectorAgent(opts: ConnectorAgentOptions): Promise<LinkerAgent> {
  const { connector, pushContextSummary, historyLimit, onAnswer, onWarning, busTools, ...agentOptions } = opts;
  const handler = createConnectorTaskHandler({ connector, pushContextSummary, historyLimit, onAnswer, onWarning, busTools });
  const agent = await connectAgent({ ...agentOptions, onTask: handler.onTask });
  handler.attach(agent);
  return agent;
}
