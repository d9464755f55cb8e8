/**
 * `anthropic`: Claude through the Messages API (official `@anthropic-ai/sdk`). The SDK retries
 * 429, 5xx (529 overloaded included), timeouts and connection errors itself, honouring
 * Retry-After, `maxRetries` times.
 */
import { buildPrompt } from './prompt.js';
import { loadSdk } from './sdk.js';
import { apiSettings, oneLine, plural, sdkError, withDeadline } from './call.js';
import { ConnectorError, type ConnectorDefinition, type ConnectorReply } from './types.js';

const DEFAULT_MAX_TOKENS = 4096;

export const anthropicConnector: ConnectorDefinition = {
  name: 'anthropic',
  title: 'Claude (Anthropic Messages API)',
  kind: 'api',
  env: { apiKey: 'ANTHROPIC_API_KEY', baseUrl: 'ANTHROPIC_BASE_URL' },
  defaultModel: 'claude-sonnet-4-6',
  async create(options) {
    const s = apiSettings(anthropicConnector, options);
    const baseUrl = s.baseUrl ?? 'https://api.anthropic.com';
    const { default: Anthropic, APIError, APIConnectionError, APIConnectionTimeoutError, APIUserAbortError } = await loadSdk('anthropic', '@anthropic-ai/sdk', () => import('@anthropic-ai/sdk'));
    const client = new Anthropic({ apiKey: s.apiKey, baseURL: baseUrl, maxRetries: s.maxRetries, timeout: s.timeoutMs });
    const classes = { APIError, APIConnectionError, APIConnectionTimeoutError, APIUserAbortError };
    const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
    return {
      name: 'anthropic',
      describe: () => `anthropic (model ${s.model} at ${baseUrl}, timeout ${s.timeoutMs} ms, ${plural(s.maxRetries, 'retry', 'retries')})`,
      async answer(task): Promise<ConnectorReply> {
        const prompt = buildPrompt(task, { system: options.system });
        const started = performance.now();
        let message: unknown;
        try {
          message = await withDeadline('anthropic', s.timeoutMs, task.signal, (signal) =>
            client.messages.create(
              {
                model: s.model,
                max_tokens: maxTokens,
                system: prompt.system,
                messages: [{ role: 'user', content: prompt.user }],
                ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
              },
              { signal },
            ),
          );
        } catch (err) {
          throw sdkError('anthropic', err, classes, { maxRetries: s.maxRetries, timeoutMs: s.timeoutMs, baseUrl });
        }
        const latency_ms = Math.round(performance.now() - started);
        if (typeof message !== 'object' || message === null) {
          throw new ConnectorError(`anthropic: the API answered with a body that is not JSON: ${oneLine(String(message), 200)}`, 'invalid_response');
        }
        const m = message as { model?: unknown; content?: unknown; stop_reason?: unknown; usage?: { input_tokens?: unknown; output_tokens?: unknown } };
        const blocks = Array.isArray(m.content) ? (m.content as { type?: unknown; text?: unknown }[]) : [];
        const texts = blocks.filter((b) => b?.type === 'text' && typeof b.text === 'string').map((b) => b.text as string);
        if (texts.length === 0) {
          throw new ConnectorError(`anthropic: the response has no text (stop_reason ${String(m.stop_reason ?? 'unknown')})`, 'invalid_response');
        }
        return {
          content: texts.join(''),
          usage: {
            model: typeof m.model === 'string' ? m.model : s.model,
            ...(typeof m.usage?.input_tokens === 'number' ? { input_tokens: m.usage.input_tokens } : {}),
            ...(typeof m.usage?.output_tokens === 'number' ? { output_tokens: m.usage.output_tokens } : {}),
            latency_ms,
          },
        };
      },
    };
  },
};
