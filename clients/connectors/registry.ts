/**
 * Every connector, one line each. Adding one: write `clients/connectors/<name>.ts` exporting a
 * `ConnectorDefinition` and add its line here; the CLI (`connect --connector <name>`,
 * `connectors list`) and `createConnector` pick it up.
 */
import { anthropicConnector } from './anthropic.js';
import { claudeCliConnector } from './claude-cli.js';
import { codexConnector } from './codex.js';
import { commandConnector } from './command.js';
import { geminiCliConnector } from './gemini-cli.js';
import { geminiConnector } from './gemini.js';
import { openaiConnector } from './openai.js';
import { perplexityConnector } from './perplexity.js';
import { ConnectorConfigError, type Connector, type ConnectorDefinition, type ConnectorOptions } from './types.js';

export const CONNECTORS: readonly ConnectorDefinition[] = [
  anthropicConnector,
  openaiConnector,
  geminiConnector,
  perplexityConnector,
  commandConnector,
  codexConnector,
  claudeCliConnector,
  geminiCliConnector,
];

export function findConnector(name: string): ConnectorDefinition | undefined {
  return CONNECTORS.find((c) => c.name === name);
}

/** Builds a connector by name; rejects with a {@link ConnectorConfigError} for an unknown name or a missing key/program. */
export async function createConnector(name: string, options: ConnectorOptions = {}): Promise<Connector> {
  const def = findConnector(name);
  if (!def) throw new ConnectorConfigError(`unknown connector "${name}"; available: ${CONNECTORS.map((c) => c.name).join(', ')}`);
  return def.create(options);
}
