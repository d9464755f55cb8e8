/**
 * Findings of the fuzzer, pinned down (embedded store; the code paths do not depend on it):
 *
 * 1. superjson.serialize throws on a key named `__proto__`, `constructor` or `prototype` beside a
 *    value it must annotate (a `-0`) or past its depth. A stored value like that used to fail every
 *    reply carrying it (for messages: a poison inbox). The output serializer (router/trpc.ts) now
 *    sends plain JSON without superjson's walk and falls back to plain JSON when superjson throws;
 *    messages.send also refuses content deeper than MAX_CONTENT_DEPTH and turns `-0` into 0.
 * 2. zod 4.6's `z.json()` recurses; a few thousand levels overflow the stack, and zod's memoizer
 *    keeps (module-level `open` stack) what it had built when a parse throws: memory never freed.
 *    Every input is now depth-checked (MAX_INPUT_DEPTH, iteratively) before validation.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MAX_CONTENT_DEPTH } from '../../procedures/messages.js';
import { MAX_INPUT_DEPTH } from '../../router/trpc.js';
import { openRawSocket, startTestHub, type RawSocket, type TestHub } from '../hub/harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const nestedText = (depth: number, leaf = '1') => '['.repeat(depth) + leaf + ']'.repeat(depth);

describe('hostile JSON', () => {
  let t: TestHub | undefined;
  const sockets: RawSocket[] = [];
  afterEach(async () => {
    await Promise.all(sockets.splice(0).map((s) => s.close()));
    await t?.close();
    t = undefined;
  });

  async function pair() {
    t = await startTestHub('embedded');
    const alice = await openRawSocket(t.hub.url, { connectionParams: { token: await t.addAgent('alice') } });
    const bob = await openRawSocket(t.hub.url, { connectionParams: { token: await t.addAgent('bob') } });
    sockets.push(alice, bob);
    let id = 0;
    const call = async (s: RawSocket, method: string, path: string, inputJson: string) => {
      const n = ++id;
      s.send(`{"id":${n},"method":"${method}","params":{"path":"${path}","input":{"json":${inputJson}}}}`);
      return s.reply(n);
    };
    return { alice, bob, call };
  }

  it('a message holding "constructor" with a -0 is delivered and stays readable (it used to fail the inbox on every resume)', async () => {
    const { alice, bob, call } = await pair();
    bob.send({ id: 100, method: 'subscription', params: { path: 'messages.inbox', input: { json: {} } } });
    expect(await bob.reply(100)).toEqual({ id: 100, result: { type: 'started' } });
    const sent = await call(
      alice,
      'mutation',
      'messages.send',
      '{"type":"task","to_agent":"bob","payload":{"content":{"constructor":{"prototype":"Acme"},"n":-0,"m":[-0]}}}',
    );
    expect(sent.error).toBeUndefined();
    const frame = await bob.next((f) => f.json?.id === 100 && f.json.result?.type === 'data');
    expect(frame.json!.result.data.json.data.message.payload.content).toEqual({ constructor: { prototype: 'Acme' }, n: 0, m: [0] });
    const history = await call(bob, 'query', 'messages.history', '{}');
    expect(history.error).toBeUndefined();
    expect(history.result.data.json.items[0].message.payload.content).toEqual({ constructor: { prototype: 'Acme' }, n: 0, m: [0] });
  });

  it(`message content nested deeper than ${MAX_CONTENT_DEPTH} levels, or with a "__proto__" key, is refused with BAD_REQUEST before validation`, async () => {
    const { alice, call } = await pair();
    const ok = await call(alice, 'mutation', 'messages.send', `{"type":"task","to_agent":"bob","payload":{"content":${nestedText(MAX_CONTENT_DEPTH)}}}`);
    expect(ok.error).toBeUndefined();
    const cases: [string, string][] = [
      [nestedText(MAX_CONTENT_DEPTH + 1), `nested more than ${MAX_CONTENT_DEPTH} levels deep`],
      // Past the limit every input has, the generic check answers first.
      [nestedText(5000), `input is nested deeper than ${MAX_INPUT_DEPTH} levels`],
    ];
    for (const [content, message] of cases) {
      const r = await call(alice, 'mutation', 'messages.send', `{"type":"task","to_agent":"bob","payload":{"content":${content}}}`);
      expect(r.error?.json?.data?.code, content.slice(0, 40)).toBe('BAD_REQUEST');
      expect(r.error.json.message).toContain(message);
    }
    // An own "__proto__" key is refused, or (today) already dropped by the input transformer's copy:
    // either way nothing is polluted and nothing with a foreign prototype is stored.
    const proto = await call(alice, 'mutation', 'messages.send', '{"type":"task","to_agent":"bob","payload":{"content":{"a":{"__proto__":{"polluted":1}}}}}');
    expect([undefined, 'BAD_REQUEST']).toContain(proto.error?.json?.data?.code);
    if (!proto.error) {
      const [entry] = await t!.hub.memory.messages.history('bob', undefined, 1);
      expect(entry!.envelope.payload.content).toEqual({ a: {} });
      expect(Object.getPrototypeOf((entry!.envelope.payload.content as { a: object }).a)).toBe(Object.prototype);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('message content JSON cannot carry (what superjson can bring: undefined, NaN, Infinity, bigint, Date, Map, holes) is refused with BAD_REQUEST, nothing stored', async () => {
    const { alice } = await pair();
    let id = 1000;
    // Raw superjson inputs: `json` plus the `meta` that turns values into non-JSON ones.
    const send = async (content: string, values: Record<string, unknown>) => {
      const n = ++id;
      alice.send(
        `{"id":${n},"method":"mutation","params":{"path":"messages.send","input":{"json":{"type":"task","to_agent":"bob","payload":{"content":${content}}},"meta":{"values":${JSON.stringify(values)}}}}}`,
      );
      return alice.reply(n);
    };
    const cases: [string, string, Record<string, unknown>][] = [
      ['undefined', 'null', { 'payload.content': ['undefined'] }],
      ['NaN deep inside', '{"a":[1,"NaN"]}', { 'payload.content.a.1': ['number'] }],
      ['Infinity', '"Infinity"', { 'payload.content': ['number'] }],
      ['bigint', '{"n":"12"}', { 'payload.content.n': ['bigint'] }],
      ['Date', '{"d":"2026-01-01T00:00:00.000Z"}', { 'payload.content.d': ['Date'] }],
      ['Map', '{"m":[["k",1]]}', { 'payload.content.m': ['map'] }],
      ['undefined in an array', '[1,null,3]', { 'payload.content.1': ['undefined'] }],
    ];
    for (const [name, content, values] of cases) {
      const r = await send(content, values);
      expect(r.error?.json?.data?.code, name).toBe('BAD_REQUEST');
      expect(r.error.json.message, name).toContain('payload content must be JSON');
    }
    const missing = await send('null', {});
    expect(missing.error).toBeUndefined();
    id++;
    alice.send(`{"id":${id},"method":"mutation","params":{"path":"messages.send","input":{"json":{"type":"task","to_agent":"bob","payload":{}}}}}`);
    const noContent = await alice.reply(id);
    expect(noContent.error?.json?.data?.code).toBe('BAD_REQUEST');
    expect(noContent.error.json.message).toContain('payload content is required');
    // Only the one valid message (content null) was stored.
    expect((await t!.hub.memory.messages.history('bob', undefined, 10)).map((m) => m.envelope.payload.content)).toEqual([null]);
  });

  it('deeply nested message content does not leak memory (zod never sees it)', async () => {
    const { alice, call } = await pair();
    const send = () => call(alice, 'mutation', 'messages.send', `{"type":"task","to_agent":"bob","payload":{"content":${nestedText(5000)}}}`);
    for (let i = 0; i < 5; i++) await send();
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 60; i++) expect((await send()).error?.json?.data?.code).toBe('BAD_REQUEST');
    gc();
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(3 * 2 ** 20);
  });

  it('context.push and agents.update with a "constructor" key and a -0 answer normally (the output serializer falls back to plain JSON)', async () => {
    const { alice, call } = await pair();
    const push = await call(alice, 'mutation', 'context.push', '{"scope":"agent:alice","patch":{"constructor":{"x":-0}}}');
    const update = await call(alice, 'mutation', 'agents.update', '{"metadata":{"prototype":[-0]}}');
    expect({ push: push.error?.json?.data?.code ?? 'ok', update: update.error?.json?.data?.code ?? 'ok' }).toEqual({ push: 'ok', update: 'ok' });
  });

  it('a deeply nested context with a "constructor" key stays readable', async () => {
    const { alice, call } = await pair();
    await call(alice, 'mutation', 'context.push', `{"scope":"agent:alice","patch":{"deep":${nestedText(70, '{"constructor":1}')}}}`);
    const pull = await call(alice, 'query', 'context.pull', '{"scope":"agent:alice"}');
    expect(pull.error?.json?.data?.code ?? 'ok').toBe('ok');
  });

  it('deeply nested agents.update metadata is refused before zod and does not leak memory', async () => {
    const { alice, call } = await pair();
    const update = () => call(alice, 'mutation', 'agents.update', `{"metadata":{"x":${nestedText(5000)}}}`);
    for (let i = 0; i < 5; i++) await update();
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 60; i++) await update();
    gc();
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(3 * 2 ** 20);
  });
});
