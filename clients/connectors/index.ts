/**
 * AI connectors (Node only: vendor SDKs and child processes): `createConnector(name, options)`,
 * `runConnectorAgent({ url, token, agentId, connector })`, the registry and the shared prompt.
 */
export { CONNECTORS, createConnector, findConnector } from './registry.js';
export { runConnectorAgent, createConnectorTaskHandler } from './runtime.js';
export type { AnswerEvent, ConnectorAgentOptions, ConnectorHandlerOptions, ConnectorTaskHandler, PushContextTarget } from './runtime.js';
export { buildPrompt, promptText, simpleTask, defaultSystemPrompt } from './prompt.js';
export type { BuiltPrompt, PromptOptions } from './prompt.js';
export { ConnectorError, ConnectorConfigError } from './types.js';
export { DEFAULT_MAX_TOOL_ROUNDS } from './tool-loop.js';
export type { TaskTools, ToolDefinition } from './tool-loop.js';
export type { Connector, ConnectorDefinition, ConnectorOptions, ConnectorReply, ConnectorTask, ConnectorUsage, ContextView, SessionTurn } from './types.js';
