/**
 * `skynet-linker mcp`: a stdio MCP server that joins the hub as one agent and serves the bus
 * tools to a coding CLI; `skynet-linker mcp config`: the entry each CLI needs, printed or written,
 * never with a token in it (the server finds the cached credential, or reads an env variable).
 */
import { Command, Option } from 'clipanion';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { AgentIdSchema } from '../protocol/ids.js';
import { CliError } from './errors.js';
import { LinkerCommand } from './base.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class McpCommand extends LinkerCommand {
  static override paths = [['mcp']];
  static override usage = Command.Usage({
    description: 'Serve the bus tools to a coding CLI over MCP (stdio), as one agent',
    details: `
      Joins the hub as \`--agent-id\` and serves whoami, list_agents, send_message, wait_for_messages, reply, context_pull, context_push, session_start and session_show on stdin/stdout. Logs go to stderr. The token is found as for the other commands (--token, SKYNET_LINKER_TOKEN, \`--token-env NAME\`, config.yaml, or the credential cached in the data directory). Messages handed to the model are acknowledged on its next tool call, so a restart loses nothing. See docs/coding-clis.md; \`skynet-linker mcp config\` prints the entry for each CLI.
    `,
    examples: [
      ['Run by a coding CLI', 'skynet-linker mcp --agent-id claude_code --server ws://localhost:8000/ws'],
      ['Token from a variable', 'skynet-linker mcp --agent-id codex --token-env SKYNET_CODEX_TOKEN'],
    ],
  });
  agentId = Option.String('--agent-id', { required: true, description: 'The agent this server acts as' });
  agentType = Option.String('--agent-type', { description: 'Announced agent type (default: as registered)' });
  tokenEnv = Option.String('--token-env', { description: 'Read the token from this environment variable' });
  noChannel = Option.Boolean('--no-channel', false, { description: 'Do not push Claude Code channel notifications' });

  async run() {
    const agentId = AgentIdSchema.safeParse(this.agentId);
    if (!agentId.success) throw new CliError('USAGE', `--agent-id: ${agentId.error.issues[0]?.message ?? 'invalid'}`);
    if (this.tokenEnv !== undefined) {
      if (!ENV_NAME.test(this.tokenEnv)) throw new CliError('USAGE', `--token-env must be an environment variable name (got "${this.tokenEnv}")`);
      const value = process.env[this.tokenEnv];
      if (!value) throw new CliError('AUTH', `--token-env ${this.tokenEnv}: that environment variable is empty or not set`);
      this.token = value;
    }
    const log = (line: string) => void this.context.stderr.write(`${line}\n`);
    const cred = await this.credential(agentId.data, { agentType: this.agentType });
    const trpc = await this.client(cred.token, agentId.data, this.agentType);
    // Fails here, not on the first tool call, when the token is refused.
    const me = await trpc.agents.whoami.query();
    if (me.agent_id !== agentId.data) throw new CliError('AUTH', `the token is ${me.agent_id}'s, not ${agentId.data}'s`);
    // Loaded here, not at the top: every other command would pay for the MCP SDK at start.
    const { serveMcpBus } = await import('./mcp-server.js');
    const served = await serveMcpBus({ trpc, agentId: agentId.data, version: pkg.version, channelNotifications: !this.noChannel, log });
    const stop = () => void served.close();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await served.done;
  }
}

export const MCP_CLIENTS = ['claude-code', 'codex', 'gemini-cli'] as const;
export type McpClientName = (typeof MCP_CLIENTS)[number];

export interface McpEntryOptions {
  client: McpClientName;
  name: string;
  agentId: string;
  server?: string | undefined;
  command: string;
  commandArgs: string[];
  tokenEnv?: string | undefined;
}

/** Where each CLI reads its MCP servers (Codex: the user's config; the others: the project's). */
export function defaultConfigPath(client: McpClientName, cwd: string): string {
  if (client === 'claude-code') return join(cwd, '.mcp.json');
  if (client === 'gemini-cli') return join(cwd, '.gemini', 'settings.json');
  return join(process.env.CODEX_HOME ?? join(homedir(), '.codex'), 'config.toml');
}

function serverArgs(o: McpEntryOptions): string[] {
  return [...o.commandArgs, 'mcp', '--agent-id', o.agentId, ...(o.server ? ['--server', o.server] : []), ...(o.tokenEnv ? ['--token-env', o.tokenEnv] : [])];
}

/** The JSON entry (Claude Code, Gemini CLI) as an object. */
export function jsonEntry(o: McpEntryOptions): Record<string, unknown> {
  const entry: Record<string, unknown> =
    o.client === 'claude-code' ? { type: 'stdio', command: o.command, args: serverArgs(o) } : { command: o.command, args: serverArgs(o) };
  // The variable is named, never its value: each CLI expands it from its own environment.
  if (o.tokenEnv) entry.env = { [o.tokenEnv]: o.client === 'claude-code' ? `\${${o.tokenEnv}}` : `$${o.tokenEnv}` };
  // Gemini CLI's timeout is in ms (default 10 min); the longest wait a tool may ask for is 10 min.
  if (o.client === 'gemini-cli') entry.timeout = 660_000;
  return entry;
}

const tomlString = (s: string) => JSON.stringify(s);

/** The Codex `[mcp_servers.<name>]` table. */
export function tomlEntry(o: McpEntryOptions): string {
  const lines = [
    `[mcp_servers.${o.name}]`,
    `command = ${tomlString(o.command)}`,
    `args = [${serverArgs(o).map(tomlString).join(', ')}]`,
    // Codex's default tool timeout is 60 s; wait_for_messages and wait_for_reply_seconds may wait up to 600 s.
    'tool_timeout_sec = 660',
  ];
  // Codex starts MCP servers with a short list of variables: forward the token's by name.
  if (o.tokenEnv) lines.push(`env_vars = [${tomlString(o.tokenEnv)}]`);
  return lines.join('\n') + '\n';
}

export class McpConfigCommand extends Command {
  static override paths = [['mcp', 'config']];
  static override usage = Command.Usage({
    description: 'Print (or write) the MCP server entry for Claude Code, Codex CLI or Gemini CLI',
    details: `
      Claude Code: \`mcpServers\` in the project's \`.mcp.json\`. Codex: a \`[mcp_servers.<name>]\` table in \`~/.codex/config.toml\`. Gemini CLI: \`mcpServers\` in \`.gemini/settings.json\`. No token goes into the entry: the server uses the credential cached in the data directory, or with \`--token-env NAME\` the variable of that name. With \`--write\` the file is updated (other entries kept; an existing entry of the same name is refused unless \`--force\`).
    `,
    examples: [
      ['Claude Code', 'skynet-linker mcp config --client claude-code --agent-id claude_code'],
      ['Codex, written', 'skynet-linker mcp config --client codex --agent-id codex --write'],
      ['Gemini CLI with a token variable', 'skynet-linker mcp config --client gemini-cli --agent-id gemini_cli --token-env SKYNET_GEMINI_TOKEN'],
    ],
  });
  client = Option.String('--client', { required: true, description: MCP_CLIENTS.join(' | ') });
  agentId = Option.String('--agent-id', { required: true, description: 'The agent the server acts as' });
  name = Option.String('--name', 'skynet', { description: 'Server name in the CLI (default skynet)' });
  server = Option.String('--server', {
    description: 'Hub URL to put in the entry (default: none, the server uses SKYNET_LINKER_SERVER or ws://localhost:8000/ws)',
  });
  tokenEnv = Option.String('--token-env', { description: 'Environment variable the server reads the token from' });
  commandFlag = Option.String('--command', 'skynet-linker', { description: 'Program the CLI starts, with its arguments (default skynet-linker)' });
  write = Option.Boolean('--write', false, { description: 'Write the entry into the config file instead of printing it' });
  file = Option.String('--file', { description: 'Config file to write (default: the CLI’s usual one)' });
  force = Option.Boolean('--force', false, { description: 'With --write: replace an entry of the same name' });

  async execute(): Promise<number> {
    try {
      this.print(this.render());
      return 0;
    } catch (err) {
      this.context.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      return err instanceof CliError && err.kind === 'USAGE' ? 2 : 1;
    }
  }

  private print(text: string): void {
    this.context.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  private render(): string {
    if (!(MCP_CLIENTS as readonly string[]).includes(this.client))
      throw new CliError('USAGE', `--client must be one of ${MCP_CLIENTS.join(', ')} (got "${this.client}")`);
    if (!AgentIdSchema.safeParse(this.agentId).success)
      throw new CliError('USAGE', `--agent-id must be 1-128 characters of A-Z a-z 0-9 _ . : - (got "${this.agentId}")`);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(this.name)) throw new CliError('USAGE', `--name must be 1-64 characters of A-Z a-z 0-9 _ - (got "${this.name}")`);
    if (this.tokenEnv !== undefined && !ENV_NAME.test(this.tokenEnv))
      throw new CliError('USAGE', `--token-env must be an environment variable name (got "${this.tokenEnv}")`);
    const [command, ...commandArgs] = this.commandFlag.split(' ').filter(Boolean);
    if (!command) throw new CliError('USAGE', '--command is empty');
    const o: McpEntryOptions = {
      client: this.client as McpClientName,
      name: this.name,
      agentId: this.agentId,
      server: this.server,
      command,
      commandArgs,
      tokenEnv: this.tokenEnv,
    };
    const path = this.file ?? defaultConfigPath(o.client, process.cwd());
    if (o.client === 'codex') {
      const table = tomlEntry(o);
      if (!this.write) return table;
      const current = existsSync(path) ? readFileSync(path, 'utf8') : '';
      const header = `[mcp_servers.${o.name}]`;
      let next: string;
      if (current.split('\n').some((l) => l.trim() === header)) {
        if (!this.force) throw new CliError('USAGE', `${path} already has ${header}; pass --force to replace it`);
        next = replaceTomlTable(current, header, table);
      } else next = `${current}${current && !current.endsWith('\n') ? '\n' : ''}${current ? '\n' : ''}${table}`;
      writeConfig(path, next);
      return `wrote ${header} to ${path}`;
    }
    const entry = jsonEntry(o);
    if (!this.write) return JSON.stringify({ mcpServers: { [o.name]: entry } }, null, 2);
    let doc: Record<string, unknown> = {};
    if (existsSync(path)) {
      try {
        doc = JSON.parse(readFileSync(path, 'utf8') || '{}') as Record<string, unknown>;
      } catch (err) {
        throw new CliError('USAGE', `${path} is not valid JSON (${(err as Error).message}); fix it or print the entry without --write`);
      }
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new CliError('USAGE', `${path} does not hold a JSON object`);
    }
    const servers = (typeof doc.mcpServers === 'object' && doc.mcpServers !== null ? doc.mcpServers : {}) as Record<string, unknown>;
    if (servers[o.name] && !this.force) throw new CliError('USAGE', `${path} already has mcpServers.${o.name}; pass --force to replace it`);
    doc.mcpServers = { ...servers, [o.name]: entry };
    writeConfig(path, JSON.stringify(doc, null, 2) + '\n');
    return `wrote mcpServers.${o.name} to ${path}`;
  }
}

/** Replaces one `[table]` (up to the next table header) in a TOML file. */
function replaceTomlTable(text: string, header: string, table: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === header);
  let end = start + 1;
  while (end < lines.length && !/^\s*\[/.test(lines[end]!)) end++;
  return [...lines.slice(0, start), ...table.trimEnd().split('\n'), ...(end < lines.length ? ['', ...lines.slice(end)] : [''])].join('\n');
}

function writeConfig(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}
