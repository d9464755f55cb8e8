/** `openai`: ChatGPT through the Chat Completions API (official `openai` SDK). */
import { createChatCompletionsConnector } from './openai-compatible.js';
import type { ConnectorDefinition } from './types.js';

export const openaiConnector: ConnectorDefinition = {
  name: 'openai',
  title: 'ChatGPT (OpenAI Chat Completions API)',
  kind: 'api',
  env: { apiKey: 'OPENAI_API_KEY', baseUrl: 'OPENAI_BASE_URL' },
  defaultModel: 'gpt-5-mini',
  create: (options) =>
    createChatCompletionsConnector(openaiConnector, options, { defaultBaseUrl: 'https://api.openai.com/v1', maxTokensField: 'max_completion_tokens' }),
};
