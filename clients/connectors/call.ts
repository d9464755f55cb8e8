/**
 * What the API connectors share: the key and base URL from the environment (a missing key is an
 * error when the connector is built), a deadline over a whole answer, a retry loop that honours
 * Retry-After for SDKs without one, and error messages that say what went wrong.
 */
import { ConnectorConfigError, ConnectorError, type ConnectorDefinition, type ConnectorOptions } from './types.js';

export const DEFAULT_API_TIMEOUT_MS = 120_000;
export const DEFAULT_MAX_RETRIES = 2;

export interface ApiSettings {
  apiKey: string;
  /** The base URL given by option or `<VENDOR>_BASE_URL`; undefined means the SDK's default. */
  baseUrl: string | undefined;
  model: string;
  timeoutMs: number;
  maxRetries: number;
}

/** Reads key, base URL, model, timeout and retries; throws a {@link ConnectorConfigError} when the key is missing. */
export function apiSettings(def: ConnectorDefinition, options: ConnectorOptions, extraKeyEnv: string[] = []): ApiSettings {
  const env = options.env ?? process.env;
  const names = def.env!;
  const keyEnv = options.apiKeyEnv ?? names.apiKey;
  const candidates = options.apiKeyEnv ? [keyEnv] : [keyEnv, ...extraKeyEnv];
  const apiKey = options.apiKey ?? candidates.map((n) => env[n]).find((v) => v !== undefined && v.trim() !== '');
  if (!apiKey) {
    throw new ConnectorConfigError(
      `${def.name}: no API key: ${keyEnv} is not set (export ${keyEnv}=..., or name another variable with api_key_env under connectors.${def.name} in config.yaml)`,
    );
  }
  const baseUrl = options.baseUrl ?? (env[names.baseUrl] || undefined);
  if (baseUrl !== undefined && !/^https?:\/\//.test(baseUrl)) {
    throw new ConnectorConfigError(`${def.name}: base URL "${baseUrl}" must start with http:// or https://`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_API_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new ConnectorConfigError(`${def.name}: timeout must be a positive number of milliseconds`);
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  if (!Number.isInteger(maxRetries) || maxRetries < 0 || maxRetries > 10)
    throw new ConnectorConfigError(`${def.name}: max retries must be an integer from 0 to 10`);
  const model = options.model ?? def.defaultModel;
  if (!model) throw new ConnectorConfigError(`${def.name}: no model given (--model)`);
  return { apiKey: apiKey.trim(), baseUrl, model, timeoutMs, maxRetries };
}

export function formatMs(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * Runs `run` with an abort signal that fires after `timeoutMs` (or when `outer` aborts), and
 * settles by then whatever `run` does: a call that ignores its signal still ends on time.
 */
export async function withDeadline<T>(
  connector: string,
  timeoutMs: number,
  outer: AbortSignal | undefined,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onOuter: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new ConnectorError(
        `${connector}: timed out: no answer within ${formatMs(timeoutMs)} (the per-call timeout; raise it with --timeout)`,
        'timeout',
      );
      controller.abort(err);
      reject(err);
    }, timeoutMs);
    if (outer) {
      onOuter = () => {
        const err = new ConnectorError(`${connector}: aborted (the agent is closing)`, 'aborted');
        controller.abort(err);
        reject(err);
      };
      if (outer.aborted) onOuter();
      else outer.addEventListener('abort', onOuter, { once: true });
    }
  });
  try {
    return await Promise.race([run(controller.signal), stop]);
  } finally {
    clearTimeout(timer);
    if (outer && onOuter) outer.removeEventListener('abort', onOuter);
  }
}

/** Seconds (`120`) or an HTTP date; returns milliseconds, or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The SDKs' default backoff: 0.5 s doubling up to 8 s, minus up to 25 % jitter. */
export function backoffMs(retry: number, random: () => number = Math.random): number {
  return Math.min(500 * 2 ** retry, 8_000) * (1 - random() * 0.25);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryDecision {
  retry: boolean;
  /** The wait the server asked for (Retry-After or equivalent), in ms. */
  afterMs?: number;
}

/**
 * Retries `attempt` while `decide(err)` says so, up to `maxRetries` times, waiting what the
 * server asked for or the default backoff. For SDKs whose own retry ignores Retry-After.
 */
export async function retrying<T>(
  opts: {
    maxRetries: number;
    signal: AbortSignal;
    decide: (err: unknown) => RetryDecision;
    onRetry?: (info: { retry: number; waitMs: number; error: unknown }) => void;
  },
  attempt: (n: number) => Promise<T>,
): Promise<{ value: T; retries: number }> {
  for (let n = 0; ; n++) {
    try {
      return { value: await attempt(n), retries: n };
    } catch (err) {
      if (opts.signal.aborted) throw opts.signal.reason ?? err;
      const decision = opts.decide(err);
      if (!decision.retry || n >= opts.maxRetries) {
        if (typeof err === 'object' && err !== null) Object.assign(err, { retriesDone: n });
        throw err;
      }
      const waitMs = decision.afterMs ?? backoffMs(n);
      opts.onRetry?.({ retry: n + 1, waitMs, error: err });
      await sleep(waitMs, opts.signal);
    }
  }
}

/** One line, bounded: vendor messages can be HTML pages or long JSON. */
export function oneLine(text: string, max = 500): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}

/** ` (gave up after 2 retries)`, or nothing when no retry was allowed. */
export function retriesNote(retries: number | undefined): string {
  if (!retries) return '';
  return ` (gave up after ${retries} ${retries === 1 ? 'retry' : 'retries'})`;
}

export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** Builds the message of a failed HTTP call: `openai: HTTP 429 rate_limit_exceeded: <vendor message> (gave up after 2 retries)`. */
export function httpErrorMessage(
  connector: string,
  status: number,
  code: string | undefined,
  vendorMessage: string,
  extra: { retries?: number; requestId?: string } = {},
): string {
  const retried = isRetryableStatus(status) ? retriesNote(extra.retries) : '';
  const hint = status === 401 || status === 403 ? ' (check the API key)' : status === 404 ? ' (check the model name and the base URL)' : '';
  const rid = extra.requestId ? ` [request id ${extra.requestId}]` : '';
  return `${connector}: HTTP ${status}${code ? ` ${code}` : ''}: ${oneLine(vendorMessage) || '(no message)'}${hint}${retried}${rid}`;
}

export function invalidJsonError(connector: string, err: Error): ConnectorError {
  return new ConnectorError(`${connector}: the API answered with a body that is not valid JSON (${oneLine(err.message, 200)})`, 'invalid_response');
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** The error classes of the Stainless-generated SDKs (openai, @anthropic-ai/sdk): same shapes. */
export interface SdkErrorClasses {
  APIError: ErrorClass;
  APIConnectionError: ErrorClass;
  APIConnectionTimeoutError: ErrorClass;
  APIUserAbortError: ErrorClass;
}

/**
 * Turns what the openai or anthropic SDK threw into a {@link ConnectorError} that says what
 * happened. The SDK has already retried 429/5xx/timeouts (honouring Retry-After) when it throws.
 */
export function sdkError(
  connector: string,
  err: unknown,
  classes: SdkErrorClasses,
  ctx: { maxRetries: number; timeoutMs: number; baseUrl: string },
): ConnectorError {
  if (err instanceof ConnectorError) return err;
  if (err instanceof classes.APIUserAbortError) return new ConnectorError(`${connector}: the call was aborted`, 'aborted');
  if (err instanceof classes.APIConnectionTimeoutError) {
    return new ConnectorError(
      `${connector}: timed out: ${ctx.baseUrl} did not answer within ${formatMs(ctx.timeoutMs)}${retriesNote(ctx.maxRetries)}`,
      'timeout',
    );
  }
  if (err instanceof classes.APIConnectionError) {
    const cause = (err as Error & { cause?: unknown }).cause;
    const why =
      cause instanceof Error
        ? `${cause.message}${(cause as Error & { cause?: Error }).cause?.message ? ` (${(cause as Error & { cause?: Error }).cause!.message})` : ''}`
        : err.message;
    return new ConnectorError(`${connector}: cannot reach ${ctx.baseUrl}: ${oneLine(why, 300)}${retriesNote(ctx.maxRetries)}`, 'network');
  }
  if (err instanceof classes.APIError) {
    const e = err as Error & { status?: number; error?: unknown; requestID?: string | null };
    if (typeof e.status === 'number') {
      const body = e.error as { error?: unknown; message?: unknown; type?: unknown; code?: unknown } | string | undefined | null;
      const inner = (typeof body === 'object' && body !== null && typeof body.error === 'object' && body.error !== null ? body.error : body) as
        | { message?: unknown; type?: unknown; code?: unknown }
        | string
        | undefined
        | null;
      const fromBody = typeof inner === 'object' && inner !== null ? inner.message : undefined;
      const message = typeof fromBody === 'string' ? fromBody : e.message.replace(new RegExp(`^${e.status} `), '');
      const code =
        typeof inner === 'object' && inner !== null
          ? typeof inner.code === 'string'
            ? inner.code
            : typeof inner.type === 'string'
              ? inner.type
              : undefined
          : undefined;
      return new ConnectorError(
        httpErrorMessage(connector, e.status, code, message, { retries: ctx.maxRetries, requestId: e.requestID ?? undefined }),
        'http',
        e.status,
      );
    }
  }
  if (err instanceof SyntaxError) return invalidJsonError(connector, err);
  return new ConnectorError(`${connector}: ${oneLine(err instanceof Error ? err.message : String(err))}`, 'invalid_response');
}
