/** `skynet-linker send`: one message, direct or to a channel; optionally wait for the reply. */
import { Command, Option } from 'clipanion';
import { readFileSync } from 'node:fs';
import type { JsonValue } from '../protocol/json.js';
import type { MessageType } from '../protocol/envelope.js';
import { MESSAGE_TYPES } from '../protocol/envelope.js';
import { CliError } from './errors.js';
import { LinkerCommand, parseDuration, parseFormat, formatOption, intOption } from './base.js';

interface PayloadFile {
  content: JsonValue;
  context?: { session_id?: string; parent_message_id?: string; priority?: number };
  meta?: { ttl?: number; requires_ack?: boolean };
}

export class SendCommand extends LinkerCommand {
  static override paths = [['send']];
  static override usage = Command.Usage({
    description: 'Send a message (prints its id, or the reply with --wait-reply)',
    details: `
      \`--payload-file\` holds either any JSON value (the content) or an object with \`content\` and optional \`context\` / \`meta\` as in the message format. The acting agent is the token's agent, or \`--agent-id\` on the hub's machine.
    `,
    examples: [
      ['A task to gemini', 'skynet-linker send --agent-id claude_cli --to gemini --type task --content "Recherche sur les LLM quantiques"'],
      ['With a JSON payload', 'skynet-linker send --to gemini --type task --payload-file task.json'],
      [
        'Ask and wait for the answer',
        'skynet-linker send --agent-id claude_cli --to gemini --content "Résume RAG" --session sess_123 --wait-reply --timeout 60s',
      ],
      ['Answer a task by hand', 'skynet-linker send --agent-id gemini --to claude_cli --reply-to 6f1c2d3e-... --content "Voici 10 papiers récents..."'],
      ['Broadcast on a channel', 'skynet-linker send --channel skynet_core --type broadcast --content "Nouveau plan"'],
    ],
  });
  agentId = Option.String('--agent-id', { description: 'Act as this agent (env SKYNET_LINKER_AGENT_ID)' });
  to = Option.String('--to', { description: 'Recipient agent id' });
  channel = Option.String('--channel', { description: 'Channel (every member gets it)' });
  typeFlag = Option.String('--type', { description: `${MESSAGE_TYPES.join(' | ')} (default task, or reply with --reply-to)` });
  replyTo = Option.String('--reply-to', { description: 'Message id this answers (sets parent_message_id)' });
  content = Option.String('--content', { description: 'Text content' });
  payloadFile = Option.String('--payload-file', { description: 'JSON file with the content or the payload' });
  session = Option.String('--session', { description: 'Session id (created on first use)' });
  priority = intOption('--priority', 1, 10, '1-10 (default 5)');
  ttl = Option.String('--ttl', { description: 'Expire after this long (e.g. 30s, 1h)' });
  requiresAck = Option.Boolean('--requires-ack', false, { description: 'Ask the recipient to acknowledge' });
  waitReply = Option.Boolean('--wait-reply', false, { description: 'Wait for the reply and print it' });
  timeout = Option.String('--timeout', '60s', { description: 'With --wait-reply: how long to wait (default 60s)' });
  format = formatOption();

  private payload(): PayloadFile {
    if ((this.content === undefined) === (this.payloadFile === undefined)) throw new CliError('USAGE', 'give exactly one of --content or --payload-file');
    if (this.content !== undefined) return { content: this.content };
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.payloadFile!, 'utf8'));
    } catch (err) {
      throw new CliError(
        'USAGE',
        `--payload-file ${this.payloadFile}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON (${(err as Error).message})`}`,
      );
    }
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && 'content' in parsed) return parsed as PayloadFile;
    return { content: parsed as JsonValue };
  }

  get type(): string {
    return this.typeFlag ?? (this.replyTo ? 'reply' : 'task');
  }

  async run() {
    const format = parseFormat(this.format);
    if (!this.to && !this.channel && this.type !== 'broadcast') throw new CliError('USAGE', 'give --to <agent> or --channel <name> (or --type broadcast)');
    if (!(MESSAGE_TYPES as readonly string[]).includes(this.type)) throw new CliError('USAGE', `--type must be one of ${MESSAGE_TYPES.join(', ')}`);
    const payload = this.payload();
    const priority = this.priority ?? payload.context?.priority;
    const ttl = this.ttl ? Math.max(1, Math.round(parseDuration(this.ttl, '--ttl') / 1000)) : payload.meta?.ttl;
    const timeoutMs = parseDuration(this.timeout, '--timeout');
    const agentId = this.actingAgentId(this.agentId);
    const message = {
      to_agent: this.to ?? null,
      channel: this.channel ?? null,
      type: this.type as MessageType,
      payload: {
        content: payload.content,
        context: {
          session_id: this.session ?? payload.context?.session_id ?? null,
          parent_message_id: this.replyTo ?? payload.context?.parent_message_id ?? null,
          priority,
        },
        meta: { ttl: ttl ?? null, requires_ack: this.requiresAck || payload.meta?.requires_ack || this.waitReply },
      },
    };

    if (!this.waitReply) {
      const trpc = await this.clientAs(agentId);
      const result = await trpc.messages.send.mutate(message);
      if (format === 'json') this.printJson(result);
      else this.print(result.id);
      return;
    }
    if (!this.to) throw new CliError('USAGE', '--wait-reply needs --to');
    const cred = await this.credential(agentId);
    const trpc = await this.client(cred.token, cred.agentId);
    const me = (await trpc.agents.whoami.query()).agent_id;
    // Listen from the newest inbox entry on, and leave the agent's cursor alone: a `connect`
    // of the same agent still gets its backlog.
    const newest = (await trpc.messages.history.query({ limit: 1 })).items[0]?.stream_id ?? '0-0';
    const agent = await this.agentRuntime(me, { channels: [], resumeFrom: newest, trackCursor: false });
    let sentId: string | null = null;
    let onSignal: (() => void) | undefined;
    // Ctrl-C while waiting: say what was sent and what stops, then exit 130 like any interrupted command.
    const interrupted = new Promise<never>((_, reject) => {
      onSignal = () =>
        reject(
          new CliError(
            'INTERRUPTED',
            sentId
              ? `interrupted: stopped waiting for the reply to ${sentId} from ${this.to} (the task was sent; the reply will still reach ${me}'s inbox)`
              : `interrupted before the task was sent to ${this.to}`,
          ),
        );
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    });
    try {
      await Promise.race([agent.ready, interrupted]);
      const request = agent.request(this.to, payload.content, {
        timeoutMs,
        sessionId: message.payload.context.session_id ?? undefined,
        priority,
        onSent: (id) => {
          sentId = id;
          this.context.stderr.write(`sent ${id} to ${this.to}; waiting up to ${this.timeout} for the reply (Ctrl-C to stop)\n`);
        },
      });
      const reply = await Promise.race([request, interrupted]).catch((err: Error) => {
        if (/no reply within/.test(err.message)) throw new CliError('TIMEOUT', `no reply from ${this.to} within ${this.timeout} (task ${sentId})`);
        throw err;
      });
      if (format === 'json') this.printJson({ ...reply.envelope, payload: { ...reply.envelope.payload, content: reply.content } });
      else this.print(typeof reply.content === 'string' ? reply.content : JSON.stringify(reply.content, null, 2));
      // A connector that could not answer replies { failed: true, error }: printed, and its own exit code.
      const c = reply.content;
      if (typeof c === 'object' && c !== null && !Array.isArray(c) && c.failed === true) {
        throw new CliError(
          'REPLY_FAILED',
          `${this.to} answered that the task failed: ${typeof c.error === 'string' ? c.error : JSON.stringify(c.error ?? null)}`,
        );
      }
    } finally {
      process.off('SIGINT', onSignal!);
      process.off('SIGTERM', onSignal!);
      await agent.close();
    }
  }
}
