/**
 * `perplexity`: Perplexity's Sonar models through its OpenAI-compatible chat completions API
 * (`https://api.perplexity.ai/chat/completions`, the `openai` SDK with that base URL). The
 * answer's sources (`citations`, or `search_results` URLs) come back as `citations`.
 */
import { createChatCompletionsConnector } from './openai-compatible.js';
import type { ConnectorDefinition } from './types.js';

function citations(completion: Record<string, unknown>): string[] | undefined {
  const c = completion.citations;
  if (Array.isArray(c) && c.every((x) => typeof x === 'string')) return c as string[];
  const results = completion.search_results;
  if (Array.isArray(results)) {
    return results.map((r) => (r as { url?: unknown } | null)?.url).filter((u): u is string => typeof u === 'string');
  }
  return undefined;
}

export const perplexityConnector: ConnectorDefinition = {
  name: 'perplexity',
  title: 'Perplexity (Sonar chat completions API, with citations)',
  kind: 'api',
  env: { apiKey: 'PERPLEXITY_API_KEY', baseUrl: 'PERPLEXITY_BASE_URL' },
  defaultModel: 'sonar',
  create: (options) =>
    // Sonar's Chat Completions is not documented to take `tools` (not verified): the bus tools are
    // not offered, and a Perplexity agent answers in text.
    createChatCompletionsConnector(perplexityConnector, options, {
      defaultBaseUrl: 'https://api.perplexity.ai',
      maxTokensField: 'max_tokens',
      citations,
      toolCalling: false,
    }),
};
