/**
 * `gemini`: Gemini through generateContent (official `@google/genai` SDK, Gemini API with an API
 * key). The SDK's own retry (p-retry) ignores the server's delay and its errors carry no headers,
 * so this connector retries itself: on 408, 429 and 5xx and on connection errors, waiting what the
 * Gemini API asks for in its error body (`google.rpc.RetryInfo.retryDelay`, e.g. "12s"), else the
 * usual backoff.
 */
import { buildPrompt } from './prompt.js';
import { loadSdk } from './sdk.js';
import { apiSettings, httpErrorMessage, plural, retriesNote, invalidJsonError, oneLine, retrying, withDeadline, type RetryDecision } from './call.js';
import { toolRoundsExceeded, UsageTotal } from './tool-loop.js';
import { ConnectorError, type ConnectorDefinition, type ConnectorReply } from './types.js';

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

interface GoogleErrorBody {
  error?: { code?: unknown; message?: unknown; status?: unknown; details?: { '@type'?: unknown; retryDelay?: unknown }[] };
}

/** The JSON body the SDK put in an ApiError's message (it keeps no headers). */
function errorBody(err: { message: string }): GoogleErrorBody | null {
  try {
    const parsed = JSON.parse(err.message) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as GoogleErrorBody) : null;
  } catch {
    return null;
  }
}

/** `google.rpc.RetryInfo.retryDelay` ("37s", "1.5s") in milliseconds. */
export function retryInfoDelayMs(body: GoogleErrorBody | null): number | undefined {
  for (const d of body?.error?.details ?? []) {
    if (typeof d?.['@type'] === 'string' && d['@type'].endsWith('google.rpc.RetryInfo') && typeof d.retryDelay === 'string') {
      const m = /^(\d+(?:\.\d+)?)s$/.exec(d.retryDelay.trim());
      if (m) return Math.round(Number(m[1]) * 1000);
    }
  }
  return undefined;
}

function statusOf(err: unknown): number | undefined {
  return err instanceof Error && err.name === 'ApiError' && typeof (err as Error & { status?: unknown }).status === 'number'
    ? (err as Error & { status: number }).status
    : undefined;
}

function isNetworkError(err: unknown): boolean {
  return (
    err instanceof TypeError &&
    /fetch failed|network|socket|ECONN|terminated/i.test(`${err.message} ${String((err as Error & { cause?: unknown }).cause ?? '')}`)
  );
}

export const geminiConnector: ConnectorDefinition = {
  name: 'gemini',
  title: 'Gemini (Google Gemini API generateContent)',
  kind: 'api',
  env: { apiKey: 'GEMINI_API_KEY', baseUrl: 'GEMINI_BASE_URL' },
  defaultModel: 'gemini-2.5-flash',
  async create(options) {
    // GOOGLE_API_KEY is the other name the Gemini SDK and docs use.
    const s = apiSettings(geminiConnector, options, ['GOOGLE_API_KEY']);
    const baseUrl = s.baseUrl ?? 'https://generativelanguage.googleapis.com';
    const { GoogleGenAI } = await loadSdk('gemini', '@google/genai', () => import('@google/genai'));
    // No httpOptions.timeout and no retryOptions: the deadline and the retries are ours (see above).
    const ai = new GoogleGenAI({ vertexai: false, apiKey: s.apiKey, httpOptions: { baseUrl } });
    return {
      name: 'gemini',
      describe: () => `gemini (model ${s.model} at ${baseUrl}, timeout ${s.timeoutMs} ms, ${plural(s.maxRetries, 'retry', 'retries')})`,
      async answer(task): Promise<ConnectorReply> {
        const prompt = buildPrompt(task, { system: options.system });
        const started = performance.now();
        const decide = (err: unknown): RetryDecision => {
          const status = statusOf(err);
          if (status !== undefined) return { retry: RETRYABLE.has(status), afterMs: retryInfoDelayMs(errorBody(err as Error)) };
          return { retry: isNetworkError(err) };
        };
        type Contents = { role: string; parts: Record<string, unknown>[] }[];
        // Function calling: the bus tools as `functionDeclarations`; each `functionCall` part is
        // run and answered with a `functionResponse` part, until the model answers in text (or the bound).
        const tools = task.tools
          ? [{ functionDeclarations: task.tools.definitions.map((d) => ({ name: d.name, description: d.description, parametersJsonSchema: d.parameters })) }]
          : undefined;
        const generate = async (contents: Contents) => {
          try {
            const done = await withDeadline('gemini', s.timeoutMs, task.signal, (signal) =>
              retrying({ maxRetries: s.maxRetries, signal, decide }, () =>
                ai.models.generateContent({
                  model: s.model,
                  contents: contents as never,
                  config: {
                    systemInstruction: prompt.system,
                    abortSignal: signal,
                    ...(tools ? { tools } : {}),
                    ...(options.maxTokens !== undefined ? { maxOutputTokens: options.maxTokens } : {}),
                    ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
                  },
                }),
              ),
            );
            return done.value;
          } catch (err) {
            if (err instanceof ConnectorError) throw err;
            const done = (err as { retriesDone?: number }).retriesDone ?? s.maxRetries;
            const status = statusOf(err);
            if (status !== undefined) {
              const body = errorBody(err as Error);
              const message = typeof body?.error?.message === 'string' ? body.error.message : (err as Error).message;
              const code = typeof body?.error?.status === 'string' ? body.error.status : undefined;
              throw new ConnectorError(httpErrorMessage('gemini', status, code, message, { retries: done }), 'http', status);
            }
            if (err instanceof SyntaxError) throw invalidJsonError('gemini', err);
            if (isNetworkError(err)) {
              const cause = (err as Error & { cause?: Error }).cause;
              throw new ConnectorError(
                `gemini: cannot reach ${baseUrl}: ${oneLine(cause?.message ?? (err as Error).message, 300)}${retriesNote(done)}`,
                'network',
              );
            }
            throw new ConnectorError(`gemini: ${oneLine(err instanceof Error ? err.message : String(err))}`, 'invalid_response');
          }
        };
        const contents: Contents = [{ role: 'user', parts: [{ text: prompt.user }] }];
        const usage = new UsageTotal();
        let response: Awaited<ReturnType<typeof ai.models.generateContent>>;
        for (let round = 0; ; round++) {
          response = await generate(contents);
          usage.add(response.usageMetadata?.promptTokenCount, response.usageMetadata?.candidatesTokenCount);
          const parts = response.candidates?.[0]?.content?.parts ?? [];
          const calls = parts.filter((p) => p.functionCall).map((p) => p.functionCall!);
          if (!task.tools || calls.length === 0) break;
          if (round >= task.tools.maxRounds) throw toolRoundsExceeded('gemini', task.tools.maxRounds);
          contents.push({ role: 'model', parts: parts as Record<string, unknown>[] });
          const answers: Record<string, unknown>[] = [];
          for (const call of calls) {
            const outcome = await task.tools.call(call.name ?? '', call.args ?? {});
            answers.push({
              functionResponse: {
                ...(call.id ? { id: call.id } : {}),
                name: call.name ?? '',
                response: outcome.ok ? { output: outcome.result } : { error: outcome.error },
              },
            });
          }
          contents.push({ role: 'user', parts: answers });
        }
        const latency_ms = Math.round(performance.now() - started);
        const candidate = response.candidates?.[0];
        const text = (candidate?.content?.parts ?? [])
          .filter((p) => typeof p.text === 'string' && !p.thought)
          .map((p) => p.text)
          .join('');
        if (!text) {
          const why = response.promptFeedback?.blockReason
            ? `the prompt was blocked (${response.promptFeedback.blockReason})`
            : candidate
              ? `finishReason ${candidate.finishReason ?? 'unknown'}`
              : 'no candidates';
          throw new ConnectorError(`gemini: the response has no text (${why})`, 'invalid_response');
        }
        return {
          content: text,
          usage: {
            model: response.modelVersion ?? s.model,
            ...usage.fields(),
            latency_ms,
          },
        };
      },
    };
  },
};
