/**
 * `anthropic`: Claude through the Messages API (official `@anthropic-ai/sdk`). The SDK retries
 * 429, 5xx (529 overloaded included), timeouts and connection errors itself, honouring
 * Retry-After, `maxRetries` times.
 */
import { buildPrompt } from './prompt.js';
import { loadSdk } from './sdk.js';
import { apiSettings, oneLine, plural, sdkError, withDeadline } from './call.js';
import { toolResultText, toolRoundsExceeded, UsageTotal } from './tool-loop.js';
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
    const {
      default: Anthropic,
      APIError,
      APIConnectionError,
      APIConnectionTimeoutError,
      APIUserAbortError,
    } = await loadSdk('anthropic', '@anthropic-ai/sdk', () => import('@anthropic-ai/sdk'));
    const client = new Anthropic({ apiKey: s.apiKey, baseURL: baseUrl, maxRetries: s.maxRetries, timeout: s.timeoutMs });
    const classes = { APIError, APIConnectionError, APIConnectionTimeoutError, APIUserAbortError };
    const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
    return {
      name: 'anthropic',
      describe: () => `anthropic (model ${s.model} at ${baseUrl}, timeout ${s.timeoutMs} ms, ${plural(s.maxRetries, 'retry', 'retries')})`,
      async answer(task): Promise<ConnectorReply> {
        const prompt = buildPrompt(task, { system: options.system });
        const started = performance.now();
        const messages: { role: 'user' | 'assistant'; content: unknown }[] = [{ role: 'user', content: prompt.user }];
        // Tool use: the bus tools as `tools`; each `tool_use` block is run and answered with a
        // `tool_result` block in the next user turn, until the model answers in text (or the bound).
        const tools = task.tools?.definitions.map((d) => ({ name: d.name, description: d.description, input_schema: d.parameters }));
        const usage = new UsageTotal();
        let m: { model?: unknown; content?: unknown; stop_reason?: unknown; usage?: { input_tokens?: unknown; output_tokens?: unknown } };
        for (let round = 0; ; round++) {
          let message: unknown;
          try {
            message = await withDeadline('anthropic', s.timeoutMs, task.signal, (signal) =>
              client.messages.create(
                {
                  model: s.model,
                  max_tokens: maxTokens,
                  system: prompt.system,
                  messages: messages as never,
                  ...(tools && tools.length > 0 ? { tools: tools as never } : {}),
                  ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
                },
                { signal },
              ),
            );
          } catch (err) {
            throw sdkError('anthropic', err, classes, { maxRetries: s.maxRetries, timeoutMs: s.timeoutMs, baseUrl });
          }
          if (typeof message !== 'object' || message === null) {
            throw new ConnectorError(`anthropic: the API answered with a body that is not JSON: ${oneLine(String(message), 200)}`, 'invalid_response');
          }
          m = message as typeof m;
          usage.add(m.usage?.input_tokens, m.usage?.output_tokens);
          const blocks = Array.isArray(m.content) ? (m.content as { type?: unknown; id?: unknown; name?: unknown; input?: unknown }[]) : [];
          const uses = blocks.filter((b) => b?.type === 'tool_use');
          if (!task.tools || uses.length === 0) break;
          if (round >= task.tools.maxRounds) throw toolRoundsExceeded('anthropic', task.tools.maxRounds);
          messages.push({ role: 'assistant', content: blocks });
          const results = [];
          for (const use of uses) {
            const outcome = await task.tools.call(String(use.name ?? ''), use.input ?? {});
            results.push({
              type: 'tool_result',
              tool_use_id: String(use.id ?? ''),
              content: toolResultText(outcome),
              ...(outcome.ok ? {} : { is_error: true }),
            });
          }
          messages.push({ role: 'user', content: results });
        }
        const latency_ms = Math.round(performance.now() - started);
        const blocks = Array.isArray(m.content) ? (m.content as { type?: unknown; text?: unknown }[]) : [];
        const texts = blocks.filter((b) => b?.type === 'text' && typeof b.text === 'string').map((b) => b.text as string);
        if (texts.length === 0) {
          throw new ConnectorError(`anthropic: the response has no text (stop_reason ${String(m.stop_reason ?? 'unknown')})`, 'invalid_response');
        }
        return {
          content: texts.join(''),
          usage: {
            model: typeof m.model === 'string' ? m.model : s.model,
            ...usage.fields(),
            latency_ms,
          },
        };
      },
    };
  },
};
