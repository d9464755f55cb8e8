/**
 * Loop guards at the hub: a looping pair of agents, each answering every task with a new task to
 * the other through the bus tools (as a model with tools would), trips each guard. Plus the pure
 * counter rules (memory/guards.ts).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LinkerAgent } from '../../clients/agent.js';
import { agentToolHost } from '../../clients/bus-tools/agent-host.js';
import { busToolsFor, callBusTool, type ToolOutcome } from '../../clients/bus-tools/tools.js';
import { countSessionMessage, DEFAULT_GUARD_LIMITS, emptyGuardState, repeatingCycle, type GuardLimits } from '../../memory/guards.js';
import { deferred, rejection, startTestHub, type StoreKind, type TestHub } from './harness.js';

interface Loop {
  a: LinkerAgent;
  b: LinkerAgent;
  /** Every send the pair attempted, in order, with its outcome. */
  outcomes: ToolOutcome[];
  refused: Promise<ToolOutcome & { ok: false }>;
}

/**
 * Two agents that answer every task with a new task to the other, sent with the bus tools'
 * send_message. `linked`: the new task names the one in hand (caused_by, as the tools do);
 * unlinked, a hostile pair hides the chain and only the session guards can see it.
 */
async function loopingPair(t: TestHub, opts: { sessionId?: string; linked: boolean; contextEvery?: number }): Promise<Loop> {
  const outcomes: ToolOutcome[] = [];
  let refusedResolve!: (o: ToolOutcome & { ok: false }) => void;
  const refused = new Promise<ToolOutcome & { ok: false }>((r) => (refusedResolve = r));
  const tools = busToolsFor('api');
  const agents: Record<string, LinkerAgent> = {};
  let turns = 0;
  const bounce = (self: string, other: string) => async (m: { envelope: { id: string } }) => {
    const agent = agents[self]!;
    const host = agentToolHost(agent, { handling: () => (opts.linked ? m.envelope.id : null) });
    turns++;
    if (opts.contextEvery && opts.sessionId && turns % opts.contextEvery === 0) {
      await callBusTool(host, tools, 'context_push', { scope: `session:${opts.sessionId}`, patch: { [`step_${turns}`]: 'found something' } });
    }
    const outcome = await callBusTool(host, tools, 'send_message', {
      to: other,
      content: `again (${turns})`,
      ...(opts.sessionId ? { session_id: opts.sessionId } : {}),
    });
    outcomes.push(outcome);
    if (!outcome.ok) refusedResolve(outcome);
    return undefined;
  };
  agents.loop_a = await t.agent('loop_a', { onTask: bounce('loop_a', 'loop_b') });
  agents.loop_b = await t.agent('loop_b', { onTask: bounce('loop_b', 'loop_a') });
  return { a: agents.loop_a, b: agents.loop_b, outcomes, refused };
}

describe.each<StoreKind>(['embedded', 'redis'])('loop guards on the %s store', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  async function hub(guards: Partial<GuardLimits>) {
    t = await startTestHub(kind, { guards });
    return t;
  }

  it('refuses the send past max_hops with LOOP_DETECTED, counting hops through caused_by', async () => {
    await hub({ maxHops: 5 });
    // A human watching the monitor sees the refusal.
    const watcher = t.client(await t.addAgent('watcher', { scopes: ['monitor'] })).trpc;
    const shown: { refused?: { guard: string; reason: string }; message: { from_agent: string } }[] = [];
    const watching = deferred<void>();
    watcher.monitor.stream.subscribe(undefined, { onStarted: () => watching.resolve(), onData: (e) => void shown.push(e), onError: (e) => watching.reject(e) });
    await watching.promise;
    const loop = await loopingPair(t, { linked: true });
    const first = await loop.a.send({ to_agent: 'loop_b', type: 'task', payload: { content: 'start' } });
    const refused = await loop.refused;
    await vi.waitFor(() => expect(shown.filter((e) => e.refused)).toHaveLength(1));
    const refusal = shown.find((e) => e.refused)!;
    expect(refusal.refused!.guard).toBe('max_hops');
    expect(refusal.refused!.reason).toMatch(/^LOOP_DETECTED: this message would be hop 6/);
    expect(shown.filter((e) => !e.refused)).toHaveLength(6); // the first message and hops 1..5
    expect(refused.error).toMatch(/^CONFLICT: LOOP_DETECTED: this message would be hop 6 of a chain .* the hub allows 5$/);
    // Hops 1..5 went through; the 6th was refused, and nothing followed it.
    expect(loop.outcomes.filter((o) => o.ok)).toHaveLength(5);
    expect(loop.outcomes).toHaveLength(6);
    const history = await loop.a.trpc.messages.history.query({ limit: 50 });
    expect(history.items.map((i) => i.message.hops ?? 0).sort()).toEqual([1, 3, 5]);
    const bHistory = await loop.b.trpc.messages.history.query({ limit: 50 });
    expect(bHistory.items.map((i) => i.message.hops ?? 0).sort()).toEqual([0, 2, 4]);
    expect(bHistory.items.find((i) => i.message.id === first.id)?.message.hops).toBeUndefined();
    const refusals = await t.hub.services.metrics.loopGuardRefusals.get();
    expect(refusals.values).toEqual([{ labels: { guard: 'max_hops' }, value: 1 }]);
  });

  it('sets hops outside the signature: signed replies down a chain still verify at the recipient', async () => {
    await hub({});
    const errors: Error[] = [];
    const got: { hops?: number; content: unknown }[] = [];
    const a = await t.agent('signer_a', {
      e2e: { sign: true, requireSignatures: true },
      onError: (e) => errors.push(e),
      onMessage: (m) => void got.push({ hops: m.envelope.hops, content: m.content }),
    });
    const b = await t.agent('signer_b', {
      e2e: { sign: true, requireSignatures: true },
      onError: (e) => errors.push(e),
      onTask: () => 'signed answer',
    });
    void b;
    const answer = await a.request('signer_b', 'signed question', { timeoutMs: 10_000 });
    expect(answer.content).toBe('signed answer');
    expect(answer.envelope.hops).toBe(1);
    expect(answer.envelope.signature).toMatch(/==$/);
    expect(errors).toEqual([]);
    expect(got).toEqual([]);
  });

  it('a sender cannot reset the count by naming a parent: a reply to a deep message is deeper still', async () => {
    await hub({ maxHops: 2 });
    const a = await t.agent('a1');
    const b = await t.agent('b1');
    const m0 = await a.send({ to_agent: 'b1', type: 'task', payload: { content: 'x' } });
    const m1 = await b.send({ to_agent: 'a1', type: 'task', payload: { content: 'y', context: { caused_by: m0.id } } });
    const m2 = await a.send({ to_agent: 'b1', type: 'reply', payload: { content: 'z', context: { parent_message_id: m1.id } } });
    const err = await rejection(b.send({ to_agent: 'a1', type: 'reply', payload: { content: 'w', context: { parent_message_id: m2.id, caused_by: m0.id } } }));
    expect(err.data).toMatchObject({ code: 'CONFLICT', details: { guard: 'LOOP_DETECTED', hops: 3, max_hops: 2 } });
  });

  it('pauses a session where two agents exchange more than pair_max_messages without progress, until sessions resume', async () => {
    await hub({ pairMaxMessages: 6 });
    const admin = await t.addAgent('operator', { scopes: ['agent', 'admin'] });
    const ops = t.client(admin).trpc;
    const loop = await loopingPair(t, { linked: false, sessionId: 'sess_loop' });
    await loop.a.send({ to_agent: 'loop_b', type: 'task', payload: { content: 'start', context: { session_id: 'sess_loop' } } });
    const refused = await loop.refused;
    expect(refused.error).toMatch(
      /^CONFLICT: SESSION_PAUSED: session sess_loop is paused by a loop guard \(loop_a and loop_b exchanged more than 6 messages within 600 s without progress/,
    );
    expect(refused.error).toMatch(/skynet-linker sessions resume sess_loop/);
    // 6 messages of the pair were counted (the first included); the 7th was refused.
    expect(loop.outcomes.filter((o) => o.ok)).toHaveLength(5);
    const session = await ops.sessions.get.query({ session_id: 'sess_loop' });
    expect(session.status).toBe('paused');
    expect(session.metadata).toMatchObject({ paused_by: 'pair_messages' });
    expect(session.messages).toHaveLength(6);

    // Refused for the agents until a human resumes it (an agent may not).
    const err = await rejection(loop.a.send({ to_agent: 'loop_b', type: 'task', payload: { content: 'sneak', context: { session_id: 'sess_loop' } } }));
    expect(err.data).toMatchObject({ code: 'CONFLICT', details: { guard: 'SESSION_PAUSED', tripped: 'pair_messages' } });
    expect((await rejection(loop.a.trpc.guards.resume.mutate({ session_id: 'sess_loop' }))).data?.code).toBe('FORBIDDEN');
    // A participant flipping the status back does not lift the guard.
    await loop.a.trpc.sessions.update.mutate({ session_id: 'sess_loop', status: 'active' });
    expect(
      (await rejection(loop.a.send({ to_agent: 'loop_b', type: 'task', payload: { content: 'sneak', context: { session_id: 'sess_loop' } } }))).data?.details,
    ).toMatchObject({ guard: 'SESSION_PAUSED' });

    const resumed = await ops.guards.resume.mutate({ session_id: 'sess_loop' });
    expect(resumed).toMatchObject({ session_id: 'sess_loop', status: 'active', was_paused: { guard: 'pair_messages' } });
    const shown = await ops.guards.show.query({ session_id: 'sess_loop' });
    expect(shown.state).toMatchObject({ agent_messages: 0, paused: null });
    // Resumed, the pair loops again until the guard trips again (the loop never stopped wanting to).
    const before = loop.outcomes.length;
    await loop.a.send({ to_agent: 'loop_b', type: 'task', payload: { content: 'restart', context: { session_id: 'sess_loop' } } });
    await vi.waitFor(() => expect(loop.outcomes.slice(before).some((o) => !o.ok)).toBe(true), { timeout: 15_000 });
    expect(loop.outcomes.slice(before).filter((o) => o.ok)).toHaveLength(5);
  });

  it('counts a new version of the session context as progress for the pair window', async () => {
    await hub({ pairMaxMessages: 6, sessionMaxAgentMessages: 30 });
    const loop = await loopingPair(t, { linked: false, sessionId: 'sess_progress', contextEvery: 4 });
    await loop.a.send({ to_agent: 'loop_b', type: 'task', payload: { content: 'start', context: { session_id: 'sess_progress' } } });
    const refused = await loop.refused;
    // The pair never got past 6 without progress: the session budget stopped it, at 30 agent messages.
    expect(refused.error).toMatch(/more than 30 agent messages without a human message in between/);
    expect(loop.outcomes.filter((o) => o.ok)).toHaveLength(29);
  });

  it('pauses a session where three agents keep going round the same cycle without progress', async () => {
    await hub({ pairMaxMessages: 1000, cycleMaxMessages: 9 });
    const agents = [await t.agent('c1'), await t.agent('c2'), await t.agent('c3')];
    const send = (i: number) =>
      agents[i % 3]!.send({ to_agent: `c${((i + 1) % 3) + 1}`, type: 'task', payload: { content: `turn ${i}`, context: { session_id: 'sess_cycle' } } });
    // 11 messages round c1 → c2 → c3 → c1 pass; the 12th makes 9 that repeat the cycle before them.
    for (let i = 0; i < 11; i++) await send(i);
    const err = await rejection(send(11));
    expect(err.data).toMatchObject({ code: 'CONFLICT', details: { guard: 'SESSION_PAUSED', tripped: 'cycle_messages' } });
    expect(err.message).toMatch(/c1 → c2 → c3 → c1 went round more than 9 messages without progress/);
  });

  it('pauses a session past its agent-message budget; a human message in between resets it', async () => {
    await hub({ sessionMaxAgentMessages: 8, pairMaxMessages: 1000 });
    await t.addAgent('operator', { scopes: ['agent', 'admin'] });
    const human = await t.agent('operator');
    const a = await t.agent('a2');
    await t.agent('b2');
    const send = (from: LinkerAgent, to: string) =>
      from.send({ to_agent: to, type: 'task', payload: { content: 'x', context: { session_id: 'sess_budget' } } });
    for (let i = 0; i < 8; i++) await send(a, 'b2');
    await send(human, 'a2');
    for (let i = 0; i < 8; i++) await send(a, 'b2');
    const err = await rejection(send(a, 'b2'));
    expect(err.data).toMatchObject({ code: 'CONFLICT', details: { guard: 'SESSION_PAUSED', tripped: 'session_messages' } });
    expect(err.message).toMatch(/more than 8 agent messages without a human message/);
    // The human may still speak in the paused session.
    await send(human, 'a2');
    expect((await rejection(send(a, 'b2'))).data?.details).toMatchObject({ tripped: 'session_messages' });
  });

  it('pauses a session past its model-token budget, counted from the usage connectors report', async () => {
    await hub({ sessionMaxTokens: 1000 });
    const a = await t.agent('a3');
    await t.agent('b3');
    const reply = (tokens: number) =>
      a.send({
        to_agent: 'b3',
        type: 'reply',
        payload: { content: { content: 'answer', usage: { input_tokens: tokens, output_tokens: 100 } }, context: { session_id: 'sess_tokens' } },
      });
    await reply(400);
    await reply(400);
    const err = await rejection(reply(400));
    expect(err.data?.details).toMatchObject({ guard: 'SESSION_PAUSED', tripped: 'session_tokens' });
  });
});

describe('the session counter rules', () => {
  const limits: GuardLimits = { ...DEFAULT_GUARD_LIMITS, pairMaxMessages: 3, sessionMaxAgentMessages: 100, pairWindowMs: 1000 };
  const msg = (over: Partial<Parameters<typeof countSessionMessage>[1]> = {}) => ({
    from: 'a',
    to: 'b',
    human: false,
    tokens: 0,
    contextVersion: 0,
    now: 0,
    ...over,
  });

  it('counts a pair in both directions and trips past the limit', () => {
    let s = emptyGuardState();
    for (const [from, to] of [
      ['a', 'b'],
      ['b', 'a'],
      ['a', 'b'],
    ]) {
      const r = countSessionMessage(s, msg({ from, to }), limits);
      expect(r.trip).toBeNull();
      s = r.state;
    }
    const r = countSessionMessage(s, msg({ from: 'b', to: 'a' }), limits);
    expect(r.trip?.guard).toBe('pair_messages');
    expect(r.state.paused).toEqual(r.trip);
  });

  it('starts a new pair window after pair_window_ms, and on a new context version', () => {
    let s = emptyGuardState();
    for (let i = 0; i < 3; i++) s = countSessionMessage(s, msg({ now: i }), limits).state;
    expect(countSessionMessage(s, msg({ now: 2000 }), limits).trip).toBeNull();
    expect(countSessionMessage(s, msg({ now: 3, contextVersion: 1 }), limits).trip).toBeNull();
    expect(countSessionMessage(s, msg({ now: 3 }), limits).trip?.guard).toBe('pair_messages');
  });

  it('resets on a human message, which may still speak in a paused session', () => {
    let s = emptyGuardState();
    for (let i = 0; i < 3; i++) s = countSessionMessage(s, msg(), limits).state;
    s = countSessionMessage(s, msg({ human: true }), limits).state;
    expect(s.agent_messages).toBe(0);
    const paused = { ...s, paused: { guard: 'pair_messages' as const, reason: 'r', at: 'now' } };
    expect(countSessionMessage(paused, msg({ human: true }), limits).trip).toBeNull();
    expect(countSessionMessage(paused, msg(), limits).trip?.guard).toBe('pair_messages');
  });

  it('finds a closed cycle of up to eight agents, not a mere repetition', () => {
    const round = (agents: string[], times: number) =>
      Array.from({ length: agents.length * times }, (_, i) => `${agents[i % agents.length]}>${agents[(i + 1) % agents.length]}`);
    expect(repeatingCycle(round(['a', 'b', 'c'], 4), 9)).toEqual(['a', 'b', 'c']);
    expect(repeatingCycle(round(['a', 'b', 'c'], 4).slice(0, 11), 9)).toBeNull();
    expect(repeatingCycle(round(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], 3), 16)).toHaveLength(8);
    expect(repeatingCycle(round(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'], 3), 18)).toBeNull();
    // The same edge over and over (a broadcast-like fan-out to one agent) is no cycle.
    expect(repeatingCycle(Array(30).fill('a>b'), 9)).toBeNull();
    // A progress signal (new context version) forgets the cycle so far.
    let s = emptyGuardState();
    const limits2 = { ...limits, pairMaxMessages: 1000, cycleMaxMessages: 4 };
    for (let i = 0; i < 5; i++) s = countSessionMessage(s, msg({ from: ['a', 'b', 'c'][i % 3]!, to: ['b', 'c', 'a'][i % 3]! }), limits2).state;
    s = countSessionMessage(s, msg({ from: 'c', to: 'a', contextVersion: 1 }), limits2).state;
    expect(s.recent).toEqual(['c>a']);
  });

  it('keeps at most MAX_TRACKED_PAIRS pair windows', () => {
    let s = emptyGuardState();
    for (let i = 0; i < 300; i++) s = countSessionMessage(s, msg({ from: `x${i}`, to: 'hub', now: i }), { ...limits, sessionMaxAgentMessages: 10_000 }).state;
    expect(Object.keys(s.pairs)).toHaveLength(256);
    expect(s.pairs['hub|x299']).toBeDefined();
    expect(s.pairs['hub|x0']).toBeUndefined();
  });
});
