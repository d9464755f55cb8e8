#!/usr/bin/env node
/** The `skynet-linker` CLI: one clipanion command class per command, one file per group. */
import { Builtins, Cli, UsageError } from 'clipanion';
import { readFileSync } from 'node:fs';
import { AgentsAddCommand, AgentsListCommand, AgentsRemoveCommand } from './agents.js';
import { ConnectCommand } from './connect.js';
import { ContextPullCommand, ContextPushCommand } from './context.js';
import { EXIT_CODES } from './errors.js';
import { KeysGenerateCommand, KeysRotateCommand, KeysShowCommand } from './keys.js';
import { MonitorCommand } from './monitor.js';
import { SendCommand } from './send.js';
import { ServeCommand } from './serve.js';
import { SessionsCloseCommand, SessionsCreateCommand, SessionsListCommand, SessionsShowCommand } from './sessions.js';
import { SnapshotCreateCommand, SnapshotListCommand, SnapshotRestoreCommand } from './snapshot.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildCli(): Cli {
  const cli = new Cli({ binaryLabel: 'Skynet Linker', binaryName: 'skynet-linker', binaryVersion: pkg.version });
  for (const command of [
    ServeCommand,
    ConnectCommand,
    SendCommand,
    ContextPushCommand,
    ContextPullCommand,
    AgentsAddCommand,
    AgentsListCommand,
    AgentsRemoveCommand,
    MonitorCommand,
    SessionsCreateCommand,
    SessionsListCommand,
    SessionsShowCommand,
    SessionsCloseCommand,
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

async function main(argv: string[]): Promise<number> {
  const cli = buildCli();
  let command;
  try {
    command = cli.process(argv);
  } catch (err) {
    // Bad flags or an unknown command: one line on stderr, exit 2, and where to look.
    const message = err instanceof UsageError || err instanceof Error ? err.message.split('\n')[0] : String(err);
    process.stderr.write(`error: ${message}\nrun \`skynet-linker --help\` for the commands and \`skynet-linker <command> --help\` for their flags\n`);
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
