/**
 * config.yaml (the seed's config file: server, redis, auth tokens, agents, connectors), validated
 * with messages that name the bad field. Precedence everywhere: flags, then SKYNET_LINKER_*
 * environment variables, then config.yaml, then defaults.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AgentIdSchema, ChannelNameSchema } from '../protocol/ids.js';
import { AgentTypeSchema } from '../protocol/records.js';
import { CliError } from './errors.js';

const Scope = z.enum(['agent', 'monitor', 'admin']);

export const ConfigSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().min(1).optional(),
      port: z.number().int().min(0).max(65535).optional(),
      /** URL client commands connect to. */
      url: z
        .string()
        .regex(/^(wss?|https?):\/\//, { error: 'must start with ws://, wss://, http:// or https://' })
        .optional(),
      cors_origins: z.array(z.string()).optional(),
      tls: z.strictObject({ cert: z.string(), key: z.string() }).optional(),
      max_payload_bytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .optional(),
      rate_limit: z.strictObject({ per_second: z.number().min(0), burst: z.number().min(1).optional() }).optional(),
      /** Bytes a WebSocket may hold unsent before its subscriptions pause. */
      max_buffered_bytes: z
        .number()
        .int()
        .min(64 * 1024)
        .max(1024 * 1024 * 1024)
        .optional(),
      /** How long a connection may drain nothing while over its bound before it is closed. */
      slow_consumer_timeout_ms: z.number().int().min(100).max(3_600_000).optional(),
      /** Bytes a WebSocket may hold unsent before it is closed at once. */
      max_connection_buffer_bytes: z
        .number()
        .int()
        .min(1024 * 1024)
        .max(16 * 1024 * 1024 * 1024)
        .optional(),
    })
    .optional(),
  redis: z
    .strictObject({
      url: z
        .string()
        .regex(/^rediss?:\/\//, { error: 'must be a redis:// or rediss:// URL' })
        .optional(),
      prefix: z.string().min(1).optional(),
    })
    .optional(),
  auth: z
    .strictObject({
      insecure_no_auth: z.boolean().optional(),
      tokens: z
        .array(
          z
            .strictObject({
              agent_id: AgentIdSchema,
              token: z.string().min(16, { error: 'tokens must be at least 16 characters' }).optional(),
              /** Name of an environment variable holding the token (keeps secrets out of the file). */
              token_env: z.string().optional(),
              scopes: z.array(Scope).min(1).default(['agent']),
              agent_type: AgentTypeSchema.optional(),
            })
            .refine((t) => t.token || t.token_env, { error: 'each token needs `token` or `token_env`' }),
        )
        .optional(),
    })
    .optional(),
  agents: z.array(z.strictObject({ id: AgentIdSchema, type: AgentTypeSchema.optional(), channels: z.array(ChannelNameSchema).optional() })).optional(),
  connectors: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  /** Loop guards (docs/loop-guards.md); each field defaults as written there. */
  guards: z
    .strictObject({
      max_hops: z.number().int().min(1).max(10_000).optional(),
      session_max_agent_messages: z.number().int().min(1).max(10_000_000).optional(),
      /** 0 turns the token budget off. */
      session_max_tokens: z.number().int().min(0).optional(),
      pair_max_messages: z.number().int().min(1).max(1_000_000).optional(),
      pair_window_seconds: z
        .number()
        .int()
        .min(1)
        .max(30 * 24 * 3600)
        .optional(),
      cycle_max_messages: z.number().int().min(2).max(1000).optional(),
    })
    .optional(),
  sealing: z.strictObject({ enabled: z.boolean().optional(), in_memory: z.boolean().optional() }).optional(),
  /** Bounds on what one caller can grow (docs/security.md, "Limits"). */
  limits: z
    .strictObject({
      max_context_bytes: z
        .number()
        .int()
        .min(1024)
        .max(256 * 1024 * 1024)
        .optional(),
      max_metadata_bytes: z
        .number()
        .int()
        .min(256)
        .max(16 * 1024 * 1024)
        .optional(),
      max_subscriptions_per_connection: z.number().int().min(1).max(100_000).optional(),
      max_concurrent_calls: z.number().int().min(1).max(10_000).optional(),
      max_queued_calls: z.number().int().min(0).max(1_000_000).optional(),
      reads_per_second: z.number().min(0).optional(),
      writes_per_second: z.number().min(0).optional(),
      auth_timeout_s: z.number().min(0.1).max(3600).optional(),
      max_unauthenticated_per_address: z.number().int().min(1).max(1_000_000).optional(),
      reply_window_s: z
        .number()
        .int()
        .min(1)
        .max(366 * 24 * 3600)
        .optional(),
      token_recheck_s: z.number().min(0).max(3600).optional(),
      overload_delay_ms: z.number().int().min(10).max(600_000).optional(),
    })
    .optional(),
  /** The embedded (SQLite) store: `process` survives a killed hub, `power` also a power loss (synchronous=FULL). */
  store: z.strictObject({ durability: z.enum(['process', 'power']).optional() }).optional(),
  data_dir: z.string().optional(),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
});
export type Config = z.infer<typeof ConfigSchema>;

/** The config file in use: --config, SKYNET_LINKER_CONFIG, ./config.yaml, <home>/config.yaml. */
export function findConfigPath(explicit: string | undefined, home: string): string | null {
  const given = explicit ?? process.env.SKYNET_LINKER_CONFIG;
  if (given) {
    if (!existsSync(given)) throw new CliError('USAGE', `config file not found: ${given}`);
    return given;
  }
  for (const candidate of ['config.yaml', join(home, 'config.yaml')]) if (existsSync(candidate)) return candidate;
  return null;
}

export function loadConfig(path: string | null): Config {
  if (!path) return {};
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
  } catch (err) {
    throw new CliError('USAGE', `${path}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    const message = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
    throw new CliError('USAGE', `${path}: ${where}: ${message}`);
  }
  return result.data;
}
