/**
 * The connector layer (the seed's `BaseConnector.send(message)` -> normalized reply): a connector
 * turns one incoming task, with the shared context and the session's recent messages, into an
 * answer from an AI (a vendor API or a program). One file per connector; `registry.ts` lists them.
 */
import type { MessageType } from '../../protocol/envelope.js';
import type { JsonValue } from '../../protocol/json.js';
import type { TaskTools } from './tool-loop.js';

/** A shared context document as the connector sees it. */
export interface ContextView {
  scope: string;
  version: number;
  data: Record<string, JsonValue>;
}

/** One message of the task's session, oldest first. `content` is there when this agent could read it. */
export interface SessionTurn {
  message_id: string;
  from: string;
  to: string | null;
  type: MessageType;
  timestamp: string;
  content?: JsonValue;
}

/** What a connector answers: the incoming task plus what the agents share. */
export interface ConnectorTask {
  /** The task message's id (the reply's parent_message_id). */
  id: string;
  /** The agent that asked. */
  from: string;
  /** The agent answering (this connector's agent). */
  agentId: string;
  /** The task's content, as sent (a string or any JSON value). */
  content: JsonValue;
  sessionId: string | null;
  /** The pulled shared context: `global` and the task's `session:<id>` scope (null when absent or unreadable). */
  context: { global: ContextView | null; session: ContextView | null };
  /** The session's recent messages before this task, oldest first (empty without a session). */
  history: SessionTurn[];
  /** Aborts the call (the agent is closing). */
  signal?: AbortSignal;
  /** The bus tools, when the connector may offer them to the model (function calling). */
  tools?: TaskTools;
}

export interface ConnectorUsage {
  /** The model that answered, as the API reports it. */
  model?: string;
  input_tokens?: number;
  output_tokens?: number;
  /** Wall time of the whole answer, retries included. */
  latency_ms: number;
}

export interface ConnectorReply {
  content: string;
  usage: ConnectorUsage;
  /** Sources, when the API gives them (Perplexity). */
  citations?: string[];
}

export interface Connector {
  /** The registry name (`openai`, `command`, ...). */
  readonly name: string;
  /** One line for logs: what it calls, with which model or program. Never includes a key. */
  describe(): string;
  /** Answers one task. Rejects with a {@link ConnectorError} whose message says what went wrong. */
  answer(task: ConnectorTask): Promise<ConnectorReply>;
  /** Stops what is still running (child processes). */
  close?(): Promise<void>;
}

/** Options shared by every connector; each reads the ones it understands. */
export interface ConnectorOptions {
  model?: string;
  /** The API key itself (default: the vendor's `<VENDOR>_API_KEY` environment variable). */
  apiKey?: string;
  /** Name of the environment variable holding the key, instead of `<VENDOR>_API_KEY`. */
  apiKeyEnv?: string;
  /** API base URL (default: `<VENDOR>_BASE_URL`, then the vendor's). */
  baseUrl?: string;
  /** Deadline of one answer, retries and waits included. */
  timeoutMs?: number;
  /** Retries on 429, 5xx, timeouts of one attempt and connection errors. Default 2. */
  maxRetries?: number;
  maxTokens?: number;
  temperature?: number;
  /** Replaces the default system prompt. */
  system?: string;
  /** `command`: the program and its arguments, e.g. `codex exec {prompt}` (no shell). */
  exec?: string;
  /** `command`: where the prompt goes. Default: `arg` when the template has `{prompt}`, else `stdin`. */
  input?: 'stdin' | 'arg';
  /** `command`: the most stdout kept; more is an error. Default 1 MiB. */
  maxOutputBytes?: number;
  /** `command`: time between SIGTERM and SIGKILL on timeout. Default 2 s. */
  killGraceMs?: number;
  /** `command`: working directory. */
  cwd?: string;
  /** Where environment variables are read (default `process.env`). */
  env?: Record<string, string | undefined>;
}

/** What the registry knows of a connector, and how to build one. */
export interface ConnectorDefinition {
  name: string;
  /** Short description for `connectors list`. */
  title: string;
  kind: 'api' | 'command';
  /** API connectors: the environment variables read. */
  env?: { apiKey: string; baseUrl: string };
  defaultModel?: string;
  /** Command connectors: the argv template. */
  defaultExec?: string;
  /** Builds a ready connector; rejects with a {@link ConnectorConfigError} (missing key, program not found). */
  create(options: ConnectorOptions): Promise<Connector>;
}

export type ConnectorErrorKind = 'config' | 'http' | 'timeout' | 'network' | 'invalid_response' | 'exit' | 'output_limit' | 'aborted';

/** A failed answer. The message names the connector and says what happened (HTTP status, vendor message, exit code, stderr). */
export class ConnectorError extends Error {
  constructor(
    message: string,
    readonly kind: ConnectorErrorKind,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ConnectorError';
  }
}

/** A connector that cannot start: a missing key, a bad option, a program not on PATH. */
export class ConnectorConfigError extends ConnectorError {
  constructor(message: string) {
    super(message, 'config');
    this.name = 'ConnectorConfigError';
  }
}
