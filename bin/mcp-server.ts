/**
 * The bus tools as a stdio MCP server (for Claude Code, Codex CLI, Gemini CLI): one agent's typed
 * client, its tool inbox, and for Claude Code a `notifications/claude/channel` push per incoming
 * message so a running session is woken. stdout is the protocol: everything else goes to `log`.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { LinkerClient } from '../clients/client.js';
import { ToolInbox } from '../clients/bus-tools/inbox.js';
import { busToolsFor, callBusTool, inputSchemaOf, viewOf, type BusToolHost } from '../clients/bus-tools/tools.js';
import type { Envelope } from '../protocol/envelope.js';

export const MCP_INSTRUCTIONS = `You are an agent on the Skynet Linker bus, where several AIs and programs coordinate.
- When you have nothing to do, call wait_for_messages (it waits up to timeout_seconds and returns what arrived); call it again after each batch.
- Answer a task with reply (its message_id); ask another agent with send_message, with wait_for_reply_seconds when you need the answer to go on.
- Share findings with the others through context_push (scope session:<id> for a session's work), and read theirs with context_pull.
- Use list_agents to see who is online, session_start / session_show for collaboration sessions.
- The hub refuses runaway loops (LOOP_DETECTED, SESSION_PAUSED): when a send is refused, stop and say why instead of retrying.`;

export interface McpBusServerOptions {
  trpc: LinkerClient;
  agentId: string;
  version: string;
  /** Push a Claude Code channel notification for each incoming message. Default true. */
  channelNotifications?: boolean;
  /** One line on stderr. */
  log: (line: string) => void;
}

/** Longest text of a message put into a channel notification (the model reads the rest with wait_for_messages). */
const CHANNEL_TEXT_LIMIT = 8_000;

function channelPayload(env: Envelope): { content: string; meta: Record<string, string> } {
  const text = typeof env.payload.content === 'string' ? env.payload.content : JSON.stringify(env.payload.content);
  const meta: Record<string, string> = { from: env.from_agent, message_id: env.id, type: env.type };
  if (env.payload.context.session_id) meta.session_id = env.payload.context.session_id;
  if (env.payload.context.parent_message_id) meta.parent_message_id = env.payload.context.parent_message_id;
  return { content: text.length > CHANNEL_TEXT_LIMIT ? `${text.slice(0, CHANNEL_TEXT_LIMIT)}… (truncated: read it whole with wait_for_messages)` : text, meta };
}

/**
 * Serves the bus tools on stdin/stdout until the client goes away (stdin ends) or `close()`.
 * Resolves `done` then. What the model was handed is acknowledged on its next call or when the
 * client leaves in good order; a server killed before that leaves it to the next one.
 */
export async function serveMcpBus(opts: McpBusServerOptions): Promise<{ done: Promise<void>; close(): Promise<void> }> {
  let server: McpServer | null = null;
  const inbox = new ToolInbox(opts.trpc, {
    onMessage: (env) => {
      if (opts.channelNotifications === false || !server?.isConnected()) return;
      server.server
        .notification({ method: 'notifications/claude/channel', params: channelPayload(env) } as never)
        .catch((err: unknown) => opts.log(`channel notification failed: ${err instanceof Error ? err.message : String(err)}`));
    },
    onError: (err) => opts.log(`inbox: ${err.message.split('\n')[0]}`),
  });
  await inbox.started;

  // The task the model was last handed: what it sends next is passed on as caused_by (hop count).
  let handling: string | null = null;
  const tools = busToolsFor('mcp');
  const host = (signal: AbortSignal): BusToolHost => ({
    trpc: opts.trpc,
    agentId: opts.agentId,
    signal,
    handling: () => handling,
    expectReply(messageId, timeoutMs, s) {
      const w = inbox.expectReply(messageId, timeoutMs, s);
      return { reply: w.reply.then((env) => (env ? viewOf(env) : null)), cancel: w.cancel };
    },
    async takeMessages(max, timeoutMs, s) {
      const envs = await inbox.take(max, timeoutMs, s);
      const lastTask = envs.filter((e) => e.type === 'task').at(-1);
      if (lastTask) handling = lastTask.id;
      return envs.map((e) => viewOf(e));
    },
    handedMessage(messageId) {
      const env = inbox.claim(messageId);
      if (env?.type === 'task') handling = env.id;
      return env;
    },
  });

  server = new McpServer(
    { name: 'skynet-linker', version: opts.version },
    { capabilities: { tools: {}, experimental: { 'claude/channel': {} } }, instructions: MCP_INSTRUCTIONS },
  );
  for (const t of tools) {
    server.registerTool(t.name, { description: t.description, inputSchema: inputSchemaOf(t) }, async (args: unknown, extra: { signal: AbortSignal }) => {
      // This call shows the model received what it was handed before: acknowledge it now.
      await inbox
        .commit()
        .catch((err: unknown) =>
          opts.log(`could not acknowledge delivered messages (kept for the next call): ${err instanceof Error ? err.message : String(err)}`),
        );
      const outcome = await callBusTool(host(extra.signal), tools, t.name, args);
      if (!outcome.ok) return { content: [{ type: 'text' as const, text: outcome.error }], isError: true };
      return { content: [{ type: 'text' as const, text: JSON.stringify(outcome.result) }] };
    });
  }

  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      // A client that leaves in good order has read every result it was sent: acknowledge them
      // (a killed server cannot, and its successor delivers them again).
      await inbox.commit().catch((err: unknown) => opts.log(`could not acknowledge delivered messages: ${err instanceof Error ? err.message : String(err)}`));
      await inbox.close();
      await server.close().catch(() => {});
      finish();
    })());
  const transport = new StdioServerTransport();
  transport.onclose = () => void close();
  process.stdin.once('end', () => void close());
  await server.connect(transport);
  opts.log(`skynet-linker mcp: serving the bus tools as ${opts.agentId} (${tools.map((t) => t.name).join(', ')})`);
  return { done, close };
}
