/**
 * The one tRPC instance: superjson on the wire, LinkerError mapped to TRPCError in one place,
 * and procedures that narrow the context to an authenticated agent with a given scope.
 */
import { initTRPC, TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import superjson, { type SuperJSONResult } from 'superjson';
import { LinkerError } from '../protocol/errors.js';
import type { Scope } from '../memory/tokens.js';
import type { AuthedAgent, Context } from './context.js';

/**
 * superjson, except that a request with no `input` at all means "no input" on WebSocket too (as it
 * already does over HTTP): plain WebSocket clients may leave `input` out for procedures without one.
 */
const transformer = {
  input: {
    serialize: (value: unknown) => superjson.serialize(value),
    // Without `meta` nothing is to be revived: the JSON just parsed from the frame is used as is
    // (superjson would copy all of it first; no one else holds that object).
    deserialize: (payload: unknown) => {
      if (payload === undefined) return undefined;
      if (typeof payload === 'object' && payload !== null && !Array.isArray(payload) && (payload as { meta?: unknown }).meta === undefined) {
        return (payload as { json?: unknown }).json;
      }
      return superjson.deserialize(payload as SuperJSONResult);
    },
  },
  output: {
    // Outputs are plain JSON almost always (envelopes, records): `{ json }` without `meta` is
    // exactly what superjson produces for them, minus its path-building walk (about a tenth of
    // the hub's CPU per delivered message, measured). Anything else takes the full superjson path.
    serialize: (value: unknown) => (isPlainJson(value, 0) ? { json: value } : serializeOther(value)),
    deserialize: (payload: unknown) => superjson.deserialize(payload as SuperJSONResult),
  },
};

/**
 * superjson for values that need it; stored JSON it cannot handle (keys like `constructor` beside
 * a -0, very deep nesting) goes out as plain JSON rather than poisoning every later read of it.
 */
function serializeOther(value: unknown): SuperJSONResult {
  try {
    return superjson.serialize(value);
  } catch {
    return { json: JSON.parse(JSON.stringify(value) ?? 'null') as SuperJSONResult['json'] };
  }
}

/** True for values JSON round-trips unchanged (-0 becomes 0): no undefined, Dates, Maps, class instances, NaN. */
function isPlainJson(value: unknown, depth: number): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || depth > 64) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!isPlainJson(item, depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/** Deepest nesting accepted in any input: zod 4.6's recursive JSON schema leaks memory when it overflows. */
export const MAX_INPUT_DEPTH = 64;

/** Iterative (no recursion to overflow) depth check of a raw input. */
function assertInputDepth(input: unknown): void {
  const stack: [unknown, number][] = [[input, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_INPUT_DEPTH) {
      throw new TRPCError({ code: 'BAD_REQUEST', message: `input is nested deeper than ${MAX_INPUT_DEPTH} levels` });
    }
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push([child, depth + 1]);
  }
}

const t = initTRPC.context<Context>().create({
  // Production error handling everywhere (no per-error source-mapped stack: costly, never sent).
  isDev: false,
  transformer,
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    // Stack traces never leave the hub (the key is dropped, not sent as undefined).
    const { stack: _stack, ...data } = shape.data;
    // Neither do the messages of unexpected failures (tRPC wraps a thrown Error keeping its message):
    // only our typed errors and tRPC's own say what went wrong.
    const unexpected = error.code === 'INTERNAL_SERVER_ERROR' && cause !== undefined && !(cause instanceof LinkerError);
    // A LinkerError thrown inside a running subscription reaches here wrapped as an internal
    // error (no middleware sees it): answer with its own code, as calls do.
    const linker = cause instanceof LinkerError && error.code === 'INTERNAL_SERVER_ERROR' ? cause : null;
    return {
      ...shape,
      code: linker ? TRPC_ERROR_CODES_BY_KEY[linker.code] : shape.code,
      message: unexpected ? 'internal error' : shape.message,
      data: {
        ...data,
        ...(linker ? { code: linker.code, httpStatus: getHTTPStatusCodeFromError(new TRPCError({ code: linker.code })) } : {}),
        details: cause instanceof LinkerError ? (cause.details ?? null) : null,
      },
    };
  },
});

/** Converts our typed errors (and store outages) into TRPCErrors with the same code. */
export function toTRPCError(err: unknown): TRPCError {
  if (err instanceof TRPCError) {
    if (err.cause instanceof LinkerError) return toTRPCError(err.cause);
    return err;
  }
  if (err instanceof LinkerError) return new TRPCError({ code: err.code, message: err.message, cause: err });
  return new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'internal error', cause: err instanceof Error ? err : undefined });
}

type NextResult = { ok: boolean; error?: { cause?: unknown } };

/** Maps a failed result to a TRPCError with our code, counts and logs it. */
function mapFailure(ctx: Context, path: string, result: NextResult): void {
  if (result.ok) return;
  const mapped = toTRPCError(result.error);
  ctx.hub.metrics.errors.inc({ code: mapped.code });
  if (mapped.code === 'INTERNAL_SERVER_ERROR') {
    ctx.hub.logger.error({ event: 'procedure_failed', path, agent_id: ctx.agent?.id, err: result.error?.cause ?? result.error }, 'procedure failed');
  }
  throw mapped;
}

export const router = t.router;
export const publicProcedure = t.procedure.use(async ({ ctx, next, path, getRawInput }) => {
  assertInputDepth(await getRawInput());
  const result = await next();
  mapFailure(ctx, path, result);
  return result;
});

function unauthorized(ctx: Context): TRPCError {
  return new TRPCError({
    code: 'UNAUTHORIZED',
    message: ctx.authProblem ?? 'authentication required: pass a token (connectionParams { token } on WebSocket, Authorization: Bearer <token> on HTTP)',
  });
}

/** An authenticated caller holding at least one of `scopes`. */
export function scopedProcedure(...scopes: Scope[]) {
  // One middleware for auth and error mapping: each tRPC middleware level costs object spreads on
  // every call (measured on the send hot path).
  return t.procedure.use(async ({ ctx, next, path, type, getRawInput }) => {
    let agent: AuthedAgent;
    try {
      assertInputDepth(await getRawInput());
      agent = await authorize(ctx, scopes);
      if (path !== 'messages.send') takeCall(ctx, agent, type === 'query' ? 'reads' : 'writes');
    } catch (err) {
      ctx.hub.metrics.errors.inc({ code: toTRPCError(err).code });
      throw toTRPCError(err);
    }
    const result = await next({ ctx: { agent } });
    mapFailure(ctx, path, result);
    // An SSE stream (no socket to watch) ends by itself once its token is revoked.
    if (type === 'subscription' && !ctx.socket && ctx.credential && result.ok) {
      const ok = result as { data: unknown };
      if (isAsyncIterable(ok.data)) ok.data = revocable(ok.data, ctx, ctx.credential.tokenHash, agent.id);
    }
    return result;
  });
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/**
 * The subscription's events until its token is revoked: checked every tokenRecheckMs, the stream
 * then fails with UNAUTHORIZED (what the WebSocket side does through transport/revocation.ts).
 */
async function* revocable(source: AsyncIterable<unknown>, ctx: Context, tokenHash: string, agentId: string): AsyncGenerator<unknown> {
  const iterator = source[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const revoked = new Promise<never>((_, reject) => {
    timer = setInterval(
      () => {
        ctx.hub.memory.tokens.verifyHash(tokenHash).then(
          (record) => {
            if (record && record.agent_id === agentId) return;
            reject(new TRPCError({ code: 'UNAUTHORIZED', message: revokedMessage(agentId) }));
          },
          () => {}, // store unreachable: nothing concluded, checked again next time
        );
      },
      Math.max(250, ctx.hub.settings.tokenRecheckMs),
    );
    timer.unref();
  });
  revoked.catch(() => {}); // raced below; never an unhandled rejection between two events
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), revoked]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    clearInterval(timer);
    // Not awaited: a generator suspended inside its own next() (waiting for entries) takes the
    // return only once that settles; it stops on the request's abort signal when the stream closes.
    void Promise.resolve(iterator.return?.()).catch(() => {});
  }
}

export function revokedMessage(agentId: string | undefined): string {
  return `the token of ${agentId ?? 'this connection'} was revoked; get a new one from an admin`;
}

/**
 * A connection (or stream) whose token was revoked: its context belongs to it and stays
 * unauthenticated from then on. Returns the reason, as calls will be told.
 */
export function markRevoked(ctx: Context): string {
  const message = revokedMessage(ctx.agent?.id);
  Object.assign(ctx, { agent: null, credential: null, authProblem: message });
  return message;
}

/** Every procedure but messages.send (which has its own bucket) takes from the caller's read or write bucket. */
function takeCall(ctx: Context, agent: AuthedAgent, bucket: 'reads' | 'writes'): void {
  const limiter = ctx.hub.callLimits[bucket];
  if (limiter.take(agent.id)) return;
  throw new TRPCError({
    code: 'TOO_MANY_REQUESTS',
    message: `rate limit: ${agent.id} may make ${limiter.perSecond} ${bucket === 'reads' ? 'queries' : 'calls that change state or subscribe'} per second (limits.${bucket}_per_second)`,
  });
}

/** The caller's identity if it holds one of `scopes` (re-checking a long-lived token); throws otherwise. */
async function authorize(ctx: Context, scopes: Scope[]): Promise<AuthedAgent> {
  if (!ctx.agent) throw unauthorized(ctx);
  const credential = ctx.credential;
  if (credential && Date.now() - credential.verifiedAt >= ctx.hub.settings.tokenRecheckMs) {
    // A long-lived connection: make sure its token was not revoked since it connected.
    const record = await ctx.hub.memory.tokens.verifyHash(credential.tokenHash);
    if (!record || record.agent_id !== ctx.agent.id) {
      markRevoked(ctx);
      throw unauthorized(ctx);
    }
    credential.verifiedAt = Date.now();
    ctx.agent = { id: record.agent_id, scopes: record.scopes };
  }
  const agent: AuthedAgent = ctx.agent;
  if (!scopes.some((s) => agent.scopes.includes(s))) {
    throw new TRPCError({
      code: 'FORBIDDEN',
      message: `this call needs the ${scopes.join(' or ')} scope; token of ${agent.id} has ${agent.scopes.join(', ') || 'none'}`,
    });
  }
  return agent;
}

export const agentProcedure = scopedProcedure('agent', 'admin');
export const monitorProcedure = scopedProcedure('monitor', 'admin');
export const adminProcedure = scopedProcedure('admin');

export { isAdmin } from '../procedures/policy.js';
