/**
 * Frames for fuzzing the hub over raw WebSockets: valid requests for every procedure an agent
 * uses, the same mutated (fields set to wrong types, huge numbers, deep nesting, removed, added,
 * unknown methods and paths, bad superjson meta), envelopes of `messages.send` mutated field by
 * field, text-level damage, random JSON, random text, binary frames and batches. `expectReplies`
 * says what the hub owes each frame, using tRPC's own request parser with the hub's transformer.
 */
import fc from 'fast-check';
import { parseTRPCMessage } from '@trpc/server/unstable-core-do-not-import';
import superjson, { type SuperJSONResult } from 'superjson';

export type FuzzFrame = { kind: string; text: string; binary?: undefined } | { kind: 'binary'; binary: Uint8Array; text?: undefined };

/** What the hub owes a frame: replies with `id: null`, one final reply per request id, PONGs. */
export interface Expectation {
  nullReplies: number;
  /** Request ids (JSON text) that must get a final reply, with whether each is a subscription. */
  requests: { key: string; id: string | number; subscription: boolean }[];
  pongs: number;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * Predicts the hub's input transformer (router/trpc.ts: `undefined` stays undefined, anything else
 * goes through `superjson.deserialize`) without superjson's deep copy of inputs that have no
 * `meta` (which cannot fail: only a null payload does, on destructuring). The fuzz test checks at
 * start that it agrees with the hub's own transformer on probe payloads; any later disagreement
 * shows up as a reply count that does not match, so the shortcut cannot hide anything.
 */
export const predictorTransformer = {
  input: {
    serialize: (value: unknown) => superjson.serialize(value),
    deserialize: (payload: unknown): unknown => {
      if (payload === undefined) return undefined;
      if (payload === null) throw new TypeError('null payload');
      if (typeof payload !== 'object' || (payload as { meta?: unknown }).meta === undefined) return (payload as { json?: unknown }).json;
      return superjson.deserialize(payload as SuperJSONResult);
    },
  },
  output: {
    serialize: (value: unknown) => superjson.serialize(value),
    deserialize: (payload: unknown) => superjson.deserialize(payload as SuperJSONResult),
  },
};

/** Payloads on which the predictor and the hub's transformer must agree (checked by the test). */
export const TRANSFORMER_PROBES: unknown[] = [
  undefined,
  null,
  0,
  'x',
  true,
  [],
  {},
  { json: 1 },
  { json: null },
  { meta: null },
  { json: { a: 1 }, meta: { values: { a: ['undefined'] } } },
  { json: {}, meta: { values: { '__proto__.x': ['custom', 'y'] } } },
  { json: 1, meta: 5 },
];

export function expectReplies(frame: FuzzFrame): Expectation {
  const none: Expectation = { nullReplies: 0, requests: [], pongs: 0 };
  if (frame.binary) return { ...none, nullReplies: 1 };
  const text = frame.text!;
  if (text === 'PING') return { ...none, pongs: 1 };
  if (text === 'PONG') return none;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ...none, nullReplies: 1 };
  }
  const msgs = Array.isArray(json) ? json : [json];
  let parsed: ReturnType<typeof parseTRPCMessage>[];
  try {
    parsed = msgs.map((m) => parseTRPCMessage(m, predictorTransformer));
  } catch {
    return { ...none, nullReplies: 1 };
  }
  const out: Expectation = { nullReplies: 0, requests: [], pongs: 0 };
  for (const m of parsed) {
    // (The adapter refuses a null id before it looks at the method, even for subscription.stop.)
    if (m.id === null) out.nullReplies++;
    else if (m.method === 'subscription.stop') continue;
    else out.requests.push({ key: JSON.stringify(m.id), id: m.id, subscription: m.method === 'subscription' });
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Values

const idChars = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-'.split(''));
const anId = fc.string({ unit: idChars, minLength: 1, maxLength: 24 });
const streamId = fc.tuple(fc.nat(), fc.nat(50)).map(([ms, seq]) => `${ms}-${seq}`);

/** Values a field should never hold. */
const weird: fc.Arbitrary<Json> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom<Json>(
      null,
      true,
      false,
      0,
      -1,
      -0,
      0.5,
      1e308,
      -1e308,
      9007199254740993,
      18446744073709551616,
      1e21,
      '',
      ' ',
      '\u0000',
      'null',
      'undefined',
      '__proto__',
      'constructor',
      'prototype',
      '0-0',
      '18446744073709551615-18446744073709551615',
      '18446744073709551616-0',
      '99999999999999999999-1',
      '-1-1',
      '1-',
      'NaN',
      'Infinity',
      [],
      {},
      [[]],
      JSON.parse('{"__proto__":{"polluted":1}}') as Json,
      JSON.parse('{"constructor":{"prototype":{"polluted":1}}}') as Json,
    ),
  },
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 2, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json> },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 400 }).map((n) => nested(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 20_000 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.array(fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json>, { minLength: 50, maxLength: 500 }) },
);

function nested(depth: number): Json {
  let v: Json = 'bottom';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { d: v };
  return v;
}

// ------------------------------------------------------------------------------------------------
// Valid requests

interface Request {
  id: number | string;
  method: string;
  params: { path: string; input?: { json: Json; meta?: Json }; lastEventId?: string };
  jsonrpc?: string;
}

export interface FuzzContext {
  /** The fuzzing agent (the socket's identity). */
  self: string;
  /** Registered agents that may receive fuzzed messages. */
  recipients: string[];
  /** Channels fuzzed messages may go to. */
  channels: string[];
  /** Request ids come from here (unique per socket). */
  nextId: () => number;
}

function envelope(c: FuzzContext): fc.Arbitrary<Record<string, Json>> {
  return fc
    .record(
      {
        type: fc.constantFrom('task', 'reply', 'context_update', 'broadcast', 'heartbeat'),
        to_agent: fc.oneof(fc.constantFrom(...c.recipients), fc.constant(null), anId),
        channel: fc.oneof(fc.constantFrom(...c.channels), fc.constant(null)),
        id: anId,
        trace_id: anId,
        encrypted: fc.boolean(),
        payload: fc.record(
          {
            content: fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<Json>,
            context: fc.record(
              {
                session_id: fc.oneof(fc.constant(null), fc.constantFrom('fuzz-session', 'fuzz-session-2')),
                parent_message_id: fc.oneof(fc.constant(null), anId),
                priority: fc.integer({ min: 1, max: 10 }),
              },
              { requiredKeys: [] },
            ),
            meta: fc.record(
              {
                ttl: fc.oneof(fc.constant(null), fc.integer({ min: 1, max: 3600 })),
                requires_ack: fc.boolean(),
                timestamp: fc.constant(new Date().toISOString()),
              },
              { requiredKeys: [] },
            ),
          },
          { requiredKeys: ['content'] },
        ),
      },
      { requiredKeys: ['type', 'payload'] },
    )
    .map((e) => {
      // Mostly a route that validates, so the store and the fan-out are exercised too.
      if (e.to_agent === undefined && e.channel === undefined && e.type !== 'broadcast') e.to_agent = c.recipients[0]!;
      return e as Record<string, Json>;
    });
}

function inputFor(c: FuzzContext): fc.Arbitrary<{ method: string; path: string; input?: Json }> {
  const q = (path: string, input?: fc.Arbitrary<Json>) =>
    input ? input.map((i) => ({ method: 'query', path, input: i })) : fc.constant({ method: 'query', path });
  const m = (path: string, input?: fc.Arbitrary<Json>) =>
    input ? input.map((i) => ({ method: 'mutation', path, input: i })) : fc.constant({ method: 'mutation', path });
  const s = (path: string, input: fc.Arbitrary<Json>) => input.map((i) => ({ method: 'subscription', path, input: i }));
  const json = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>;
  return fc.oneof(
    q('agents.whoami'),
    q('health'),
    q('agents.list'),
    q('agents.get', fc.record({ agent_id: fc.oneof(fc.constantFrom(...c.recipients), anId) })),
    m(
      'agents.update',
      fc.record({ agent_type: fc.constantFrom('agent', 'planner', 'fuzzer'), metadata: fc.dictionary(anId, json, { maxKeys: 3 }) }, { requiredKeys: [] }),
    ),
    { weight: 6, arbitrary: envelope(c).map((e) => ({ method: 'mutation', path: 'messages.send', input: e as Json })) },
    m(
      'messages.ack',
      fc.record({ acks: fc.array(fc.record({ message_id: anId, stream_id: streamId }), { maxLength: 3 }), cursor: streamId }, { requiredKeys: [] }),
    ),
    q('messages.history', fc.record({ limit: fc.integer({ min: 1, max: 20 }), before: streamId }, { requiredKeys: [] })),
    s('messages.inbox', fc.record({ lastEventId: streamId }, { requiredKeys: [] })),
    s('messages.acks', fc.record({ lastEventId: streamId }, { requiredKeys: [] })),
    s('channels.subscribe', fc.record({ channel: fc.constantFrom(...c.channels), lastEventId: streamId }, { requiredKeys: ['channel'] })),
    s('context.watch', fc.record({ scope: fc.constantFrom(`agent:${c.self}`, 'global') })),
    s('monitor.stream', fc.constant({})),
    m('channels.join', fc.record({ channel: fc.constantFrom(...c.channels) })),
    m('channels.leave', fc.record({ channel: fc.constantFrom(...c.channels) })),
    q('channels.list'),
    q('context.pull', fc.record({ scope: fc.constantFrom(`agent:${c.self}`, 'global', 'session:fuzz-session', `agent:${c.recipients[0]}`) })),
    m(
      'context.push',
      fc.record(
        {
          scope: fc.constant(`agent:${c.self}`),
          patch: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'shared_knowledge'), json, { maxKeys: 2 }),
          expected_version: fc.nat(5),
        },
        { requiredKeys: ['scope', 'patch'] },
      ),
    ),
    m(
      'sessions.create',
      fc.record({ session_id: fc.constantFrom('fuzz-session', 'fuzz-session-2'), participants: fc.constant([c.self] as Json) }, { requiredKeys: [] }),
    ),
    q('sessions.get', fc.record({ session_id: fc.constantFrom('fuzz-session', 'nope') })),
    q('sessions.list'),
    m('sessions.update', fc.record({ session_id: fc.constant('fuzz-session'), status: fc.constantFrom('active', 'paused') })),
    m('admin.snapshotCreate'),
    q('admin.keysStatus'),
  );
}

function request(c: FuzzContext): fc.Arbitrary<Request> {
  return fc.tuple(inputFor(c), fc.boolean(), fc.boolean()).map(([r, jsonrpc, withInput]) => {
    const req: Request = { id: c.nextId(), method: r.method, params: { path: r.path } };
    if (r.input !== undefined) req.params.input = { json: r.input };
    else if (withInput) req.params.input = { json: null };
    if (jsonrpc) req.jsonrpc = '2.0';
    return req;
  });
}

// ------------------------------------------------------------------------------------------------
// Mutations

/** Every path into a JSON value (objects and arrays), up to `depth` levels. */
function paths(v: unknown, depth = 8, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (depth === 0 || v === null || typeof v !== 'object') return out;
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, depth - 1, [...prefix, i], out));
  else for (const k of Object.keys(v)) paths((v as Record<string, unknown>)[k], depth - 1, [...prefix, k], out);
  return out;
}

type Op = { kind: 'set' | 'delete' | 'addKey' | 'wrap' | 'stringify' | 'number'; at: number; value: Json; key: string };

const op: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom('set', 'set', 'set', 'delete', 'addKey', 'wrap', 'stringify', 'number'),
  at: fc.nat(),
  value: weird,
  key: fc.oneof(anId, fc.constantFrom('__proto__', 'constructor', 'json', 'meta', 'lastEventId', 'id', 'method', 'params', 'path', 'input')),
});

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** Applies one mutation at one of the value's paths (restricted to those starting with `under`). */
function mutate(value: unknown, o: Op, under: (string | number)[] = []): unknown {
  const root = { root: clone(value) } as Record<string, unknown>;
  const all = paths(root.root).filter((p) => under.every((u, i) => p[i] === u));
  const path = all[o.at % all.length] ?? [];
  let parent: Record<string | number, unknown> = root;
  let key: string | number = 'root';
  for (const step of path) {
    parent = parent[key] as Record<string | number, unknown>;
    key = step;
  }
  const current = parent[key];
  switch (o.kind) {
    case 'set':
      parent[key] = o.value;
      break;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
      break;
    case 'addKey':
      if (current && typeof current === 'object' && !Array.isArray(current)) {
        // defineProperty, so even "__proto__" becomes a real key of the sent JSON.
        Object.defineProperty(current, o.key, { value: o.value, enumerable: true, configurable: true, writable: true });
      } else parent[key] = { [o.key]: o.value };
      break;
    case 'wrap':
      parent[key] = [current];
      break;
    case 'stringify':
      parent[key] = JSON.stringify(current) ?? 'undefined';
      break;
    case 'number':
      parent[key] = typeof current === 'number' ? current * 1e300 : typeof current === 'string' ? current.length * -1e15 : 1e308;
      break;
  }
  return root.root;
}

/** Text-level damage: truncation, an inserted/replaced/deleted character, a duplicated slice. */
const textDamage = fc.record({
  kind: fc.constantFrom('truncate', 'insert', 'replace', 'delete', 'duplicate'),
  at: fc.nat(),
  ch: fc.constantFrom('{', '}', '[', ']', '"', ',', ':', '\\', '0', 'x', '\u0000', '\u2028', 'é'),
});

function damage(text: string, d: { kind: string; at: number; ch: string }): string {
  const i = d.at % Math.max(1, text.length);
  switch (d.kind) {
    case 'truncate':
      return text.slice(0, i);
    case 'insert':
      return text.slice(0, i) + d.ch + text.slice(i);
    case 'replace':
      return text.slice(0, i) + d.ch + text.slice(i + 1);
    case 'delete':
      return text.slice(0, i) + text.slice(i + 1);
    default:
      return text.slice(0, i) + text.slice(i, i + 20) + text.slice(i);
  }
}

const badMeta: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.record({
    values: fc.dictionary(
      fc.oneof(anId, fc.constantFrom('__proto__', 'a.b', 'a.__proto__', '', 'constructor.prototype')),
      fc.oneof(
        fc.constantFrom<Json>(
          ['Date'],
          ['undefined'],
          ['map'],
          ['set'],
          ['bigint'],
          ['regexp'],
          ['class', 'X'],
          ['custom', 'Y'],
          ['symbol', 'Z'],
          'number',
          'Infinity',
          ['number'],
        ),
        weird,
      ),
      { maxKeys: 3 },
    ),
  }),
  fc.record({
    referentialEqualities: fc.dictionary(
      fc.constantFrom('', 'a', 'json', '__proto__'),
      fc.array(fc.constantFrom('__proto__.x', 'constructor.prototype.x', 'a', 'b.c'), { maxLength: 3 }) as fc.Arbitrary<Json>,
      { maxKeys: 2 },
    ),
  }),
  fc.record({ v: fc.constantFrom<Json>(1, 2, 'x', null) }),
);

export function frameArbitrary(c: FuzzContext): fc.Arbitrary<FuzzFrame> {
  const req = request(c);
  const mutatedReq = fc.tuple(req, op).map(([r, o]) => mutate(r, o));
  const mutatedEnvelope = fc.tuple(envelope(c), op, op, fc.boolean()).map(([e, o1, o2, twice]) => {
    let input: unknown = mutate(e, o1);
    if (twice) input = mutate(input, o2);
    return { id: c.nextId(), method: 'mutation', params: { path: 'messages.send', input: { json: input } } };
  });
  const withBadMeta = fc.tuple(req, badMeta).map(([r, meta]) => ({ ...r, params: { ...r.params, input: { json: r.params.input?.json ?? null, meta } } }));
  // (A mutation that deleted the whole value leaves an empty frame.)
  const text = (kind: string) => (v: unknown) => ({ kind, text: JSON.stringify(v) ?? '' }) as FuzzFrame;
  return fc.oneof(
    { weight: 12, arbitrary: req.map(text('valid')) },
    { weight: 26, arbitrary: mutatedReq.map(text('mutated')) },
    { weight: 22, arbitrary: mutatedEnvelope.map(text('envelope')) },
    { weight: 4, arbitrary: withBadMeta.map(text('superjson-meta')) },
    { weight: 8, arbitrary: fc.tuple(req, textDamage).map(([r, d]) => ({ kind: 'damaged', text: damage(JSON.stringify(r), d) })) },
    { weight: 6, arbitrary: fc.jsonValue({ maxDepth: 4 }).map(text('random-json')) },
    {
      weight: 2,
      arbitrary: fc
        .array(
          fc.record(
            {
              id: fc.oneof(fc.nat(), anId, fc.constant(null)),
              method: fc.oneof(fc.constantFrom('query', 'mutation', 'subscription', 'subscription.stop', 'connectionParams', 'QUERY', ''), anId),
              params: fc.jsonValue({ maxDepth: 2 }),
            },
            { requiredKeys: [] },
          ),
        )
        .map(text('random-shape')),
    },
    { weight: 4, arbitrary: fc.string({ maxLength: 200 }).map((s) => ({ kind: 'random-text', text: s }) as FuzzFrame) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<FuzzFrame>(
        { kind: 'keepalive', text: 'PING' },
        { kind: 'keepalive', text: 'PONG' },
        { kind: 'empty', text: '' },
        { kind: 'empty-batch', text: '[]' },
      ),
    },
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => ({ kind: 'binary', binary: b }) as FuzzFrame) },
    { weight: 6, arbitrary: fc.array(fc.oneof(req, mutatedReq), { minLength: 1, maxLength: 4 }).map(text('batch')) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.constantFrom(5, 60, 400, 2000), fc.boolean(), fc.nat()).map(([depth, objects]) => deepFrame(c, depth, objects)),
    },
  );
}

/**
 * A `messages.send` whose content is nested `depth` levels deep, spliced as text (a JS value this
 * deep could not be stringified). Kept under the hub's frame limit: a larger frame closes the
 * socket with 1009. Past a few ten thousand levels, whether the hub's parser runs out of stack
 * (`id: null` PARSE_ERROR) or its validator does (BAD_REQUEST) depends on the stack depth at the
 * call, so such frames are checked for "one typed error reply", not classified.
 */
export function deepFrame(c: FuzzContext, depth: number, objects: boolean): FuzzFrame {
  const d = objects ? Math.min(depth, 80_000) : depth;
  const open = objects ? '{"d":'.repeat(d) : '['.repeat(d);
  const close = objects ? '}'.repeat(d) : ']'.repeat(d);
  const body = JSON.stringify({
    id: c.nextId(),
    method: 'mutation',
    params: { path: 'messages.send', input: { json: { type: 'task', to_agent: c.recipients[0], payload: { content: '@@' } } } },
  });
  return { kind: `deep-${d}`, text: body.replace('"@@"', open + '1' + close) };
}
