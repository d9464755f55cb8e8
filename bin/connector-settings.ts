/**
 * How `connect --connector` builds a connector from its flags and the `connectors:` block of
 * config.yaml: flags first, then the vendors' environment variables (key, base URL), then
 * config.yaml, then defaults. No clipanion here, so tests import it directly.
 */
import { z } from 'zod';
import { CONNECTORS, findConnector } from '../clients/connectors/registry.js';
import { createConnectorTaskHandler, type ConnectorTaskHandler, type PushContextTarget } from '../clients/connectors/runtime.js';
import { ConnectorConfigError, type Connector, type ConnectorDefinition, type ConnectorOptions } from '../clients/connectors/types.js';
import { CliError } from './errors.js';
import type { Config } from './config.js';

/** `90s`, `15m`, `1500ms`, `2h` or plain seconds, as every duration flag of the CLI. */
export function parseDurationMs(text: string, where: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new CliError('USAGE', `${where}: "${text}" is not a duration (examples: 500ms, 60s, 5m)`);
  const unit = m[2] ?? 's';
  return Math.round(Number(m[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
}

const Duration = z.union([z.string(), z.number().positive()]);

/** One entry under `connectors:` in config.yaml. `type` makes a named instance of a connector. */
export const ConnectorConfigSchema = z.strictObject({
  type: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  base_url: z
    .string()
    .regex(/^https?:\/\//, { error: 'must start with http:// or https://' })
    .optional(),
  api_key_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be the name of an environment variable' })
    .optional(),
  /** Per-call deadline: `90s`, `15m`, or a number of seconds. */
  timeout: Duration.optional(),
  max_retries: z.number().int().min(0).max(10).optional(),
  max_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  system: z.string().min(1).optional(),
  exec: z.string().min(1).optional(),
  input: z.enum(['stdin', 'arg']).optional(),
  max_output_bytes: z.number().int().positive().optional(),
  kill_grace: Duration.optional(),
  cwd: z.string().min(1).optional(),
  push_context: z.union([z.boolean(), z.enum(['session', 'agent'])]).optional(),
  history: z.number().int().min(0).max(200).optional(),
  /** Offer the bus tools to the model (function calling); a number is the most tool rounds per task (default 8). */
  bus_tools: z.union([z.boolean(), z.number().int().min(1).max(64)]).optional(),
});
export type ConnectorConfig = z.infer<typeof ConnectorConfigSchema>;

function durationMs(value: string | number | undefined, where: string): number | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'number' ? Math.round(value * 1000) : parseDurationMs(value, where);
}

/** The definition and config entry for `--connector <name>` (a built-in, or a named entry with `type`). */
export function resolveConnector(name: string, config: Config): { def: ConnectorDefinition; entry: ConnectorConfig } {
  const raw = config.connectors?.[name];
  let entry: ConnectorConfig = {};
  if (raw) {
    const parsed = ConnectorConfigSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const what = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
      throw new CliError('USAGE', `config.yaml: connectors.${name}${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${what}`);
    }
    entry = parsed.data;
  }
  const def = findConnector(entry.type ?? name);
  if (!def) {
    const known = [...CONNECTORS.map((c) => c.name), ...Object.keys(config.connectors ?? {}).filter((n) => !findConnector(n))];
    throw new CliError(
      'USAGE',
      `unknown connector "${entry.type ?? name}"; available: ${[...new Set(known)].join(', ')} (see \`skynet-linker connectors list\`)`,
    );
  }
  return { def, entry };
}

export interface ConnectorFlags {
  connector?: string;
  model?: string;
  exec?: string;
  timeout?: string;
  pushContext?: boolean;
  busTools?: boolean;
}

/** Connector options from flags and config; vendor environment variables (key, base URL) beat config.yaml. */
export function connectorOptions(
  def: ConnectorDefinition,
  entry: ConnectorConfig,
  flags: ConnectorFlags,
  env: Record<string, string | undefined> = process.env,
): ConnectorOptions {
  const baseUrlFromEnv = def.env ? env[def.env.baseUrl] : undefined;
  return {
    env,
    model: flags.model ?? entry.model,
    exec: flags.exec ?? entry.exec,
    timeoutMs: flags.timeout !== undefined ? parseDurationMs(flags.timeout, '--timeout') : durationMs(entry.timeout, `connectors.${def.name}.timeout`),
    ...(baseUrlFromEnv ? {} : { baseUrl: entry.base_url }),
    apiKeyEnv: entry.api_key_env,
    maxRetries: entry.max_retries,
    maxTokens: entry.max_tokens,
    temperature: entry.temperature,
    system: entry.system,
    input: entry.input,
    maxOutputBytes: entry.max_output_bytes,
    killGraceMs: durationMs(entry.kill_grace, `connectors.${def.name}.kill_grace`),
    cwd: entry.cwd,
  };
}

export interface ConnectorSetup {
  connector: Connector;
  handler: ConnectorTaskHandler;
}

/**
 * For `connect --connector`: builds the connector now (a missing key or program fails here,
 * before connecting, with exit code 2) and the task handler that answers with it.
 */
export async function setUpConnector(flags: ConnectorFlags, config: Config, report: { line: (text: string) => void }): Promise<ConnectorSetup | null> {
  const name = flags.connector ?? (flags.exec !== undefined ? 'command' : undefined);
  if (!name) {
    const stray = (['model', 'timeout', 'pushContext'] as const).filter((k) => flags[k] !== undefined);
    if (stray.length > 0)
      throw new CliError(
        'USAGE',
        `--${stray[0] === 'pushContext' ? 'push-context' : stray[0]} needs --connector <name> (see \`skynet-linker connectors list\`)`,
      );
    return null;
  }
  const { def, entry } = resolveConnector(name, config);
  if (flags.exec !== undefined && def.kind !== 'command')
    throw new CliError('USAGE', `--exec is for command connectors; ${def.name} calls an API (use --model)`);
  let connector: Connector;
  try {
    connector = await def.create(connectorOptions(def, entry, flags));
  } catch (err) {
    if (err instanceof ConnectorConfigError) throw new CliError('USAGE', err.message);
    throw err;
  }
  const push: boolean | PushContextTarget = flags.pushContext ?? entry.push_context ?? false;
  const handler = createConnectorTaskHandler({
    connector,
    pushContextSummary: push,
    historyLimit: entry.history,
    busTools: busToolsOption(flags.busTools ?? entry.bus_tools),
    onAnswer: (e) => {
      const seconds = (e.duration_ms / 1000).toFixed(1);
      if (!e.ok) return report.line(`task ${e.task_id} from ${e.from} failed after ${seconds} s: ${e.error}`);
      const u = e.reply!.usage;
      const tokens =
        u.input_tokens !== undefined || u.output_tokens !== undefined ? `, ${u.input_tokens ?? '?'} in / ${u.output_tokens ?? '?'} out tokens` : '';
      report.line(`answered task ${e.task_id} from ${e.from} in ${seconds} s (${u.model ?? connector.name}${tokens})`);
    },
    onWarning: (err) => report.line(`warning: ${err.message}`),
  });
  return { connector, handler };
}

function busToolsOption(value: boolean | number | undefined): boolean | { maxRounds: number } {
  return typeof value === 'number' ? { maxRounds: value } : (value ?? false);
}
