/** `skynet-linker connect`: a persistent agent connection that prints (and acks) what arrives. */
import { Command, Option } from 'clipanion';
import { CliError } from './errors.js';
import { LinkerCommand, parseFormat, formatOption } from './base.js';
import { messageLine } from './format.js';
import { setUpConnector } from './connector-settings.js';

export class ConnectCommand extends LinkerCommand {
  static override paths = [['connect']];
  static override usage = Command.Usage({
    description: 'Connect as an agent and print incoming messages',
    details: `
      Keeps a WebSocket open, prints each message as it arrives (text, or one JSON object per line with --format json), acknowledges it, and reconnects and resumes by itself without losing or repeating messages. Messages sent while the agent was offline arrive when it connects. Ctrl-C exits cleanly.

      On the hub's machine no token is needed: the CLI issues one for the agent with the local admin credential and keeps it in the data directory.
    `,
    examples: [
      ['The seed planner', 'skynet-linker connect --agent-id claude_cli --agent-type planner --server ws://localhost:8000/ws --channel skynet_core'],
      ['JSON lines into jq', 'skynet-linker connect --agent-id gemini --agent-type researcher --format json | jq .message.payload.content'],
      [
        'Gemini answers tasks by itself',
        'GEMINI_API_KEY=... skynet-linker connect --agent-id gemini --agent-type researcher --connector gemini --model gemini-2.5-flash',
      ],
      [
        'Codex answers tasks by itself',
        "skynet-linker connect --agent-id codex --agent-type coder --connector command --exec 'codex exec {prompt}' --timeout 15m --push-context",
      ],
    ],
  });
  agentId = Option.String('--agent-id', { description: 'Agent id (env SKYNET_LINKER_AGENT_ID)' });
  agentType = Option.String('--agent-type', { description: 'Agent type announced to the hub' });
  channel = Option.Array('--channel', { description: 'Channel to join (repeatable; default skynet_core)' });
  format = formatOption();
  connector = Option.String('--connector', { description: 'Answer tasks with this AI connector (see `skynet-linker connectors list`)' });
  model = Option.String('--model', { description: "Model for an API connector (default: the connector's)" });
  exec = Option.String('--exec', {
    description: "Program for the command connector, e.g. 'codex exec {prompt}' (no shell; without {prompt} the prompt goes to stdin)",
  });
  timeout = Option.String('--timeout', { description: 'Deadline of one connector call, e.g. 90s or 15m (default 120s for APIs, 10m for programs)' });
  pushContext = Option.Boolean('--push-context', {
    description: 'After each answer, push a summary (last_answer) into the session context (agent:<id> without a session)',
  });
  busTools = Option.Boolean('--bus-tools', { description: 'Let an API model use the bus tools (ask other agents, share context) through function calling' });

  async run() {
    const format = parseFormat(this.format);
    const agentId = this.actingAgentId(this.agentId);
    if (!agentId) throw new CliError('USAGE', '--agent-id is required (or set SKYNET_LINKER_AGENT_ID)');
    const channels = (this.channel ?? ['skynet_core']).flatMap((c) => c.split(',')).filter(Boolean);
    let fatal: Error | null = null;
    let connected = false;
    let everConnected = false;
    let closing = false;
    let announced = false;
    // Built before connecting: a missing API key or program is said at start, not at the first task.
    const ai = await setUpConnector(
      { connector: this.connector, model: this.model, exec: this.exec, timeout: this.timeout, pushContext: this.pushContext, busTools: this.busTools },
      this.config,
      { line: (text) => this.context.stderr.write(`${text}\n`) },
    );
    const agent = await this.agentRuntime(agentId, {
      agentType: this.agentType,
      channels,
      onTask: ai?.handler.onTask,
      onMessage: (m) => {
        if (format === 'json')
          this.printJson({ stream_id: m.streamId, replayed: m.replayed, message: { ...m.envelope, payload: { ...m.envelope.payload, content: m.content } } });
        else this.print(messageLine({ ...m.envelope, encrypted: false, payload: { ...m.envelope.payload, content: m.content } }, { withId: true }));
      },
      // One line when the hub goes away and one when it is back (the runtime resumes by itself).
      onClose: () => {
        if (!connected || closing || !announced) return;
        connected = false;
        this.context.stderr.write(`connection to ${this.serverUrl()} lost; reconnecting...\n`);
      },
      onOpen: () => {
        if (connected) return;
        connected = true;
        if (everConnected) this.context.stderr.write(`reconnected to ${this.serverUrl()}; resuming from the last message received\n`);
        everConnected = true;
      },
      onError: (err) => this.context.stderr.write(`warning: ${err.message.split('\n')[0]}\n`),
      onStateChange: ({ to }) => {
        // The socket is up but the inbox subscription failed (e.g. the hub's store is down).
        if (to === 'reconnecting' && connected) this.context.stderr.write('subscription lost; resubscribing...\n');
      },
    });
    try {
      await agent.ready;
    } catch (err) {
      fatal = err as Error;
    }
    if (fatal) throw fatal;
    ai?.handler.attach(agent);
    announced = true;
    this.context.stderr.write(
      `connected as ${agentId}${this.agentType ? ` (${this.agentType})` : ''} to ${this.serverUrl()}; channels: ${channels.join(', ')}. Ctrl-C to quit.\n`,
    );
    if (ai) this.context.stderr.write(`answering tasks with ${ai.connector.describe()}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    closing = true;
    await agent.close();
    this.context.stderr.write('disconnected\n');
  }
}
