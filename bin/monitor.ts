/** `skynet-linker monitor`: every routed message, live. */
import { Command, Option } from 'clipanion';
import { MESSAGE_TYPES, type MessageType } from '../protocol/envelope.js';
import { CliError } from './errors.js';
import { LinkerCommand, parseFormat, formatOption } from './base.js';
import { messageLine } from './format.js';

export class MonitorCommand extends LinkerCommand {
  static override paths = [['monitor']];
  static override usage = Command.Usage({
    description: 'Stream every routed message in real time',
    details:
      'Needs the monitor (or admin) scope. End-to-end encrypted content stays opaque. `--format json` prints one JSON object per line: `{ at, node, message, delivered_to }`, plus `refused: { guard, reason }` for a send a loop guard refused (shown as `REFUSED (guard) …` in text).',
    examples: [
      ['The seed monitor', 'skynet-linker monitor --channel skynet_core'],
      ['Into jq', 'skynet-linker monitor --format json | jq .message.type'],
    ],
  });
  channel = Option.String('--channel', { description: 'Only this channel' });
  agent = Option.String('--agent', { description: 'Only messages from or to this agent' });
  type = Option.String('--type', { description: MESSAGE_TYPES.join(' | ') });
  format = formatOption();

  async run() {
    const format = parseFormat(this.format);
    if (this.type && !(MESSAGE_TYPES as readonly string[]).includes(this.type))
      throw new CliError('USAGE', `--type must be one of ${MESSAGE_TYPES.join(', ')}`);
    const trpc = await this.clientAs(null);
    await new Promise<void>((resolve, reject) => {
      const sub = trpc.monitor.stream.subscribe(
        { channel: this.channel, agent: this.agent, type: this.type as MessageType | undefined },
        {
          onStarted: () => this.context.stderr.write(`monitoring ${this.serverUrl()} (Ctrl-C to quit)\n`),
          onData: (e) =>
            format === 'json'
              ? this.printJson(e)
              : this.print(e.refused ? `REFUSED (${e.refused.guard}) ${messageLine(e.message)}: ${e.refused.reason}` : messageLine(e.message)),
          onError: (err) => {
            sub.unsubscribe();
            reject(err);
          },
        },
      );
      const stop = () => {
        sub.unsubscribe();
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  }
}
