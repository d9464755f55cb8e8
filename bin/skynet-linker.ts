#!/usr/bin/env node
/** The `skynet-linker` CLI: one clipanion command class per command, one file per group. */
import { Builtins, Cli } from 'clipanion';
import { readFileSync } from 'node:fs';
import { AgentsAddCommand, AgentsListCommand, AgentsRemoveCommand } from './agents.js';
import { ConnectCommand } from './connect.js';
import { ConnectorsListCommand } from './connectors.js';
import { ContextPullCommand, ContextPushCommand, ContextResetCommand } from './context.js';
import { EXIT_CODES } from './errors.js';
import { nearestOption, withPlaceholders } from './usage.js';
import { KeysGenerateCommand, KeysRotateCommand, KeysShowCommand } from './keys.js';
import { McpCommand, McpConfigCommand } from './mcp.js';
import { MonitorCommand } from './monitor.js';
import { SendCommand } from './send.js';
import { ServeCommand } from './serve.js';
import { SessionsCloseCommand, SessionsCreateCommand, SessionsListCommand, SessionsResumeCommand, SessionsShowCommand } from './sessions.js';
import { SnapshotCreateCommand, SnapshotListCommand, SnapshotRestoreCommand } from './snapshot.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** clipanion 3 writes every option value as `#0` in help: name them (`--port <port>`). */
class LinkerCli extends Cli {
  protected override getUsageByIndex(
    n: number,
    opts?: { detailed?: boolean; inlineOptions?: boolean },
  ): { usage: string; options: { definition: string; description: string; required: boolean }[] } {
    const { usage, options } = super.getUsageByIndex(n, opts);
    return { usage: withPlaceholders(usage), options: options.map((o) => ({ ...o, definition: withPlaceholders(o.definition) })) };
  }
}

export function buildCli(): Cli {
  // clipanion decides on colours from the terminal type alone: colour only a real TTY.
  const enableColors = Boolean(process.stdout.isTTY) && Cli.defaultContext.colorDepth > 1;
  const cli = new LinkerCli({ binaryLabel: 'Skynet Linker', binaryName: 'skynet-linker', binaryVersion: pkg.version, enableColors });
  for (const command of [
    ServeCommand,
    ConnectCommand,
    ConnectorsListCommand,
    SendCommand,
    ContextPushCommand,
    ContextPullCommand,
    ContextResetCommand,
    AgentsAddCommand,
    AgentsListCommand,
    AgentsRemoveCommand,
    MonitorCommand,
    McpCommand,
    McpConfigCommand,
    SessionsCreateCommand,
    SessionsListCommand,
    SessionsShowCommand,
    SessionsCloseCommand,
    SessionsResumeCommand,
    KeysGenerateCommand,
    KeysRotateCommand,
    KeysShowCommand,
    SnapshotCreateCommand,
    SnapshotListCommand,
    SnapshotRestoreCommand,
    Builtins.HelpCommand,
    Builtins.VersionCommand,
  ]) {
    cli.register(command);
  }
  return cli;
}

/** What the user typed as the command: the words before the first flag. */
function typedCommand(argv: string[]): string {
  const end = argv.findIndex((a) => a.startsWith('-'));
  return ['skynet-linker', ...argv.slice(0, end === -1 ? undefined : end)].join(' ');
}

/** The command path of a clipanion usage line: `skynet-linker agents add [--type #0] <agent-id>` → `skynet-linker agents add`. */
function commandPath(usage: string): string {
  const words = usage.split(' ');
  const end = words.findIndex((w) => /^[[<-]/.test(w));
  return words.slice(0, end === -1 ? undefined : end).join(' ');
}

/**
 * One line for a parse failure. clipanion puts its suggestions on later lines ("did you mean
 * one of:\n\n  0. <usage>..."), so they are folded into the line here.
 */
function usageErrorLine(cli: Cli, err: unknown, argv: string[]): string {
  const message = err instanceof Error ? err.message : String(err);
  const first = message.split('\n')[0] ?? message;
  const unknownOption = /^Unsupported option name \("([^"]+)"\)/.exec(first);
  if (unknownOption) {
    const typed = typedCommand(argv);
    const command = cli.definitions().find((d) => d.path === typed);
    const text = command ? [command.usage, ...command.options.map((o) => o.definition)].join(' ') : '';
    const names = [...text.matchAll(/(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!);
    const near = nearestOption(unknownOption[1]!, names);
    return `unknown option ${unknownOption[1]} for \`${typed}\`${near ? `; did you mean ${near}?` : ''}`;
  }
  const candidates = (err as { candidates?: { usage: string; reason: string | null }[] }).candidates;
  if (!Array.isArray(candidates) || candidates.length === 0 || candidates.some((c) => c.reason !== null)) return first;
  const typed = typedCommand(argv);
  const only = candidates.length === 1 ? candidates[0]! : null;
  if (only && typed.startsWith(commandPath(only.usage))) {
    const required = [...only.usage.matchAll(/<([^>]+)>/g)].map((m) => m[1]!.replace(/ #\d+$/, ''));
    return `\`${commandPath(only.usage)}\` needs ${required.join(', ') || 'other arguments'}`;
  }
  const paths = [...new Set(candidates.map((c) => commandPath(c.usage)))].filter((p) => p !== 'skynet-linker');
  if (paths.length > 0 && paths.every((p) => p.startsWith(`${typed} `))) {
    return `\`${typed}\` needs a subcommand: ${paths.map((p) => p.slice(typed.length + 1)).join(', ')}`;
  }
  if (paths.length === 0 || paths.length > 4) return `unknown command \`${typed}\``;
  return `unknown command \`${typed}\`; did you mean ${paths.length === 1 ? '' : 'one of: '}${paths.join(', ')}?`;
}

/** `skynet-linker agents --help`: the commands of a group (clipanion only knows whole commands). */
function groupHelp(cli: Cli, argv: string[]): string | null {
  if (!argv.includes('--help') && !argv.includes('-h')) return null;
  const prefix = typedCommand(argv);
  const commands = cli.definitions().filter((d) => d.path.startsWith(`${prefix} `));
  if (commands.length === 0) return null;
  const lines = commands.map((d) => `  ${d.usage}\n    ${(d.description ?? '').trim()}\n`);
  return `${prefix} <command>; run \`${prefix} <command> --help\` for its flags and examples\n\n${lines.join('\n')}`;
}

async function main(argv: string[]): Promise<number> {
  // `monitor --format json | head -3`: once the reader is gone there is nobody to tell; end quietly.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(EXIT_CODES.OK);
      throw err;
    });
  }
  const cli = buildCli();
  let command: ReturnType<Cli['process']>;
  try {
    command = cli.process(argv);
  } catch (err) {
    const help = groupHelp(cli, argv);
    if (help) {
      process.stdout.write(help);
      return EXIT_CODES.OK;
    }
    // Bad flags or an unknown command: one line on stderr, exit 2, and where to look.
    process.stderr.write(
      `error: ${usageErrorLine(cli, err, argv)}\nrun \`skynet-linker --help\` for the commands and \`skynet-linker <command> --help\` for their flags\n`,
    );
    return EXIT_CODES.USAGE;
  }
  return cli.run(command, Cli.defaultContext);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Open sockets must not keep a finished command alive.
    if (!['serve', 'connect', 'monitor'].includes(process.argv[2] ?? '')) setTimeout(() => process.exit(code), 50).unref();
  },
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT_CODES.ERROR;
  },
);
