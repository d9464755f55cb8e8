/**
 * Chat Completions through the official `openai` SDK, shared by the `openai` connector and the
 * OpenAI-compatible ones (`perplexity`). The SDK retries 429, 5xx, timeouts and connection
 * errors itself, honouring Retry-After and retry-after-ms, `maxRetries` times.
 */
import { buildPrompt } from './prompt.js';
import { loadSdk } from './sdk.js';
import { apiSettings, oneLine, plural, sdkError, withDeadline } from './call.js';
import { parseToolArguments, toolResultText, toolRoundsExceeded, UsageTotal } from './tool-loop.js';
import { ConnectorError, type Connector, type ConnectorDefinition, type ConnectorOptions, type ConnectorReply, type ConnectorTask } from './types.js';

export interface CompatibleOptions {
  /** The vendor's base URL when neither the option nor `<VENDOR>_BASE_URL` gives one. */
  defaultBaseUrl: string;
  /** Which field caps the answer's length: OpenAI's current `max_completion_tokens` or the older `max_tokens`. */
  maxTokensField: 'max_completion_tokens' | 'max_tokens';
  /** Reads sources from a response (Perplexity's `citations` / `search_results`). */
  citations?: (completion: Record<string, unknown>) => string[] | undefined;
  /** Whether the API takes `tools` (function calling). Default true. */
  toolCalling?: boolean;
}

export async function createChatCompletionsConnector(def: ConnectorDefinition, options: ConnectorOptions, compat: CompatibleOptions): Promise<Connector> {
  const s = apiSettings(def, options);
  const baseUrl = s.baseUrl ?? compat.defaultBaseUrl;
  const {
    default: OpenAI,
    APIError,
    APIConnectionError,
    APIConnectionTimeoutError,
    APIUserAbortError,
  } = await loadSdk(def.name, 'openai', () => import('openai'));
  const client = new OpenAI({
    apiKey: s.apiKey,
    baseURL: baseUrl,
    // Never pick up OpenAI organisation/project/admin settings from the environment for another vendor.
    organization: null,
    project: null,
    adminAPIKey: null,
    webhookSecret: null,
    maxRetries: s.maxRetries,
    timeout: s.timeoutMs,
  });
  const classes = { APIError, APIConnectionError, APIConnectionTimeoutError, APIUserAbortError };

  return {
    name: def.name,
    describe: () => `${def.name} (model ${s.model} at ${baseUrl}, timeout ${s.timeoutMs} ms, ${plural(s.maxRetries, 'retry', 'retries')})`,
    async answer(task: ConnectorTask): Promise<ConnectorReply> {
      const prompt = buildPrompt(task, { system: options.system });
      const started = performance.now();
      const messages: Record<string, unknown>[] = [
        { role: 'system', content: prompt.system },
        { role: 'user', content: prompt.user },
      ];
      // Function calling: the bus tools as `tools`; each round's `tool_calls` are run and their
      // results sent back as `tool` messages, until the model answers in text (or the bound).
      const offered = compat.toolCalling === false ? undefined : task.tools;
      const tools = offered?.definitions.map((d) => ({
        type: 'function' as const,
        function: { name: d.name, description: d.description, parameters: d.parameters },
      }));
      const usage = new UsageTotal();
      let completion: unknown;
      let choice: { message?: { content?: unknown; refusal?: unknown; tool_calls?: unknown }; finish_reason?: unknown } | undefined;
      for (let round = 0; ; round++) {
        try {
          completion = await withDeadline(def.name, s.timeoutMs, task.signal, (signal) =>
            client.chat.completions.create(
              {
                model: s.model,
                messages: messages as never,
                ...(tools && tools.length > 0 ? { tools } : {}),
                ...(options.maxTokens !== undefined ? { [compat.maxTokensField]: options.maxTokens } : {}),
                ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
              },
              { signal },
            ),
          );
        } catch (err) {
          throw sdkError(def.name, err, classes, { maxRetries: s.maxRetries, timeoutMs: s.timeoutMs, baseUrl });
        }
        // The SDK hands back the raw text when the body is not labelled JSON.
        if (typeof completion !== 'object' || completion === null) {
          throw new ConnectorError(`${def.name}: the API answered with a body that is not JSON: ${oneLine(String(completion), 200)}`, 'invalid_response');
        }
        const c = completion as {
          choices?: { message?: { content?: unknown; refusal?: unknown; tool_calls?: unknown }; finish_reason?: unknown }[];
          usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
        };
        usage.add(c.usage?.prompt_tokens, c.usage?.completion_tokens);
        choice = Array.isArray(c.choices) ? c.choices[0] : undefined;
        if (!choice) throw new ConnectorError(`${def.name}: the response has no choices`, 'invalid_response');
        const calls = Array.isArray(choice.message?.tool_calls)
          ? (choice.message.tool_calls as { id?: unknown; function?: { name?: unknown; arguments?: unknown } }[])
          : [];
        if (!offered || calls.length === 0) break;
        if (round >= offered.maxRounds) throw toolRoundsExceeded(def.name, offered.maxRounds);
        messages.push({ role: 'assistant', content: typeof choice.message?.content === 'string' ? choice.message.content : null, tool_calls: calls });
        for (const call of calls) {
          const args = parseToolArguments(call.function?.arguments);
          const outcome = args.ok ? await offered.call(String(call.function?.name ?? ''), args.value) : { ok: false as const, error: args.error };
          messages.push({ role: 'tool', tool_call_id: String(call.id ?? ''), content: toolResultText(outcome) });
        }
      }
      const latency_ms = Math.round(performance.now() - started);
      const c = completion as { model?: unknown };
      const content = choice.message?.content;
      if (typeof content !== 'string') {
        const refusal = choice.message?.refusal;
        throw new ConnectorError(
          typeof refusal === 'string'
            ? `${def.name}: the model refused: ${oneLine(refusal)}`
            : `${def.name}: the response has no text (finish_reason ${String(choice.finish_reason ?? 'unknown')})`,
          'invalid_response',
        );
      }
      const citations = compat.citations?.(completion as Record<string, unknown>);
      return {
        content,
        usage: {
          model: typeof c.model === 'string' ? c.model : s.model,
          ...usage.fields(),
          latency_ms,
        },
        ...(citations && citations.length > 0 ? { citations } : {}),
      };
    },
  };
}
