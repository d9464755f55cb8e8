/**
 * Load soak, test-sized: 200 runtime agents (one WebSocket each) exchange several thousand
 * messages, mixed direct / channel / request-reply, all at once. Each message names its intended
 * recipient (or channel), sender and per-pair sequence number in its content, and a checker proves:
 * nothing lost (every direct message reached its recipient, every channel message every other
 * member, every request its reply), nothing delivered to the wrong agent, nothing handled twice,
 * and per-sender order held for direct messages of equal priority delivered live.
 * SOAK_AGENTS scales it; LOAD_FIGURES=1 prints the figures.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { performance } from 'node:perf_hooks';
import type { IncomingMessage, LinkerAgent } from '../../clients/agent.js';
import { startTestHub, type StoreKind, type TestHub } from '../hub/harness.js';

const AGENTS = Number(process.env.SOAK_AGENTS ?? 200);
const DIRECT_PER_AGENT = 20;
const CHANNELS = 10;
const CHANNEL_SENDERS = 60;
const CHANNEL_PER_SENDER = 10;
const REQUESTS_PER_AGENT = 5;
const figures = process.env.LOAD_FIGURES === '1';

type Payload =
  | { kind: 'direct'; from: string; to: string; seq: number }
  | { kind: 'channel'; from: string; channel: string; seq: number }
  | { kind: 'request'; from: string; to: string; seq: number };

/** A tiny seeded PRNG, so a failing run can be replayed (SOAK_SEED). */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let r = Math.imul(s ^ (s >>> 15), 1 | s);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

describe.each<StoreKind>(['redis', 'embedded'])('load soak on %s', (kind) => {
  let t: TestHub | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it(`${AGENTS} agents, mixed direct / channel / request-reply: nothing lost, nothing misdelivered, per-sender order held`, async () => {
    const seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const random = prng(seed);
    t = await startTestHub(kind);
    const ids = Array.from({ length: AGENTS }, (_, i) => `soak-${i}`);
    const channelOf = (i: number) => `room-${i % CHANNELS}`;
    const members = new Map<string, Set<string>>();
    ids.forEach((id, i) => {
      const set = members.get(channelOf(i)) ?? new Set();
      set.add(id);
      members.set(channelOf(i), set);
    });

    // What the checker sees, per agent, as the runtime hands it over.
    const handled = new Map<string, number>(); // "agent:message id" -> times that agent handled it
    const misdelivered: string[] = [];
    const outOfOrder: string[] = [];
    const lastLiveSeq = new Map<string, number>(); // "from>to" -> last seq delivered live
    let directDelivered = 0;
    let channelDelivered = 0;
    let liveDirect = 0;
    const errors: Error[] = [];

    const check = (self: string, m: IncomingMessage) => {
      const key = `${self}:${m.envelope.id}`;
      handled.set(key, (handled.get(key) ?? 0) + 1);
      const c = m.content as Payload;
      if (c.kind === 'channel') {
        if (!members.get(c.channel)?.has(self) || c.from === self || m.envelope.channel !== c.channel)
          misdelivered.push(`${c.from}#${c.seq} on ${c.channel} to ${self}`);
        channelDelivered++;
        return;
      }
      if (c.to !== self || m.envelope.to_agent !== self) misdelivered.push(`${c.kind} ${c.from}#${c.seq} for ${c.to} to ${self}`);
      if (c.kind !== 'direct') return;
      directDelivered++;
      if (!m.replayed) {
        liveDirect++;
        const pair = `${c.from}>${c.to}`;
        const last = lastLiveSeq.get(pair) ?? -1;
        if (c.seq <= last) outOfOrder.push(`${pair}: ${c.seq} after ${last}`);
        lastLiveSeq.set(pair, c.seq);
      }
    };

    const agents: LinkerAgent[] = [];
    for (let i = 0; i < AGENTS; i += 25) {
      agents.push(
        ...(await Promise.all(
          ids.slice(i, i + 25).map((id, j) =>
            t!.agent(id, {
              channels: [channelOf(i + j)],
              onMessage: (m) => check(id, m),
              onTask: (m) => {
                check(id, m);
                // Only requests are answered (a direct task without a return value gets no reply).
                return (m.content as Payload).kind === 'request' ? { echo: m.content } : undefined;
              },
              onError: (e) => void errors.push(e),
            }),
          ),
        )),
      );
    }

    // The traffic: every sender sends its direct messages in order (each send awaited, equal
    // priority), while all senders, channel posters and requesters run at once.
    const pick = (not: string) => {
      for (;;) {
        const to = ids[Math.floor(random() * AGENTS)]!;
        if (to !== not) return to;
      }
    };
    const directPlan = ids.map((from) => Array.from({ length: DIRECT_PER_AGENT }, () => pick(from)));
    const expectedDirect = new Set<string>(); // "recipient:message id"
    let channelExpected = 0;
    let requestsAnswered = 0;
    const badReplies: string[] = [];
    const started = performance.now();
    const seqs = new Map<string, number>();
    const nextSeq = (pair: string) => {
      const s = seqs.get(pair) ?? 0;
      seqs.set(pair, s + 1);
      return s;
    };
    await Promise.all([
      ...agents.map(async (a, i) => {
        for (const to of directPlan[i]!) {
          const r = await a.send({ to_agent: to, type: 'task', payload: { content: { kind: 'direct', from: a.id, to, seq: nextSeq(`${a.id}>${to}`) } } });
          expectedDirect.add(`${to}:${r.id}`);
        }
      }),
      ...agents.slice(0, CHANNEL_SENDERS).map(async (a, i) => {
        const channel = channelOf(i);
        for (let seq = 0; seq < CHANNEL_PER_SENDER; seq++) {
          const r = await a.send({ channel, type: 'broadcast', payload: { content: { kind: 'channel', from: a.id, channel, seq } } });
          expect(new Set(r.delivered_to)).toEqual(new Set([...members.get(channel)!].filter((m) => m !== a.id)));
          channelExpected += r.delivered_to.length;
        }
      }),
      ...agents.map(async (a) => {
        for (let seq = 0; seq < REQUESTS_PER_AGENT; seq++) {
          const to = pick(a.id);
          const content = { kind: 'request', from: a.id, to, seq } satisfies Payload;
          const reply = await a.request(to, content, { timeoutMs: 60_000 });
          if (reply.envelope.from_agent !== to || JSON.stringify(reply.content) !== JSON.stringify({ echo: content })) badReplies.push(`${a.id}#${seq}`);
          requestsAnswered++;
        }
      }),
    ]);
    const sentIn = performance.now() - started;

    const directTotal = AGENTS * DIRECT_PER_AGENT;
    await vi.waitFor(
      () => {
        expect(directDelivered).toBe(directTotal);
        expect(channelDelivered).toBe(channelExpected);
      },
      { timeout: 60_000, interval: 50 },
    );
    const elapsed = performance.now() - started;

    expect(requestsAnswered).toBe(AGENTS * REQUESTS_PER_AGENT);
    expect(badReplies).toEqual([]);
    expect(channelExpected).toBe(CHANNEL_SENDERS * CHANNEL_PER_SENDER * (AGENTS / CHANNELS - 1));
    expect(misdelivered).toEqual([]);
    expect(outOfOrder).toEqual([]);
    // Every message handled exactly once by each recipient (the runtime drops the duplicates a resume brings).
    for (const key of expectedDirect) expect(handled.get(key), key).toBe(1);
    expect([...handled.values()].filter((n) => n !== 1)).toEqual([]);
    expect(errors).toEqual([]);
    if (figures) {
      const messages = directTotal + CHANNEL_SENDERS * CHANNEL_PER_SENDER + 2 * AGENTS * REQUESTS_PER_AGENT;
      const deliveries = directTotal + channelExpected + 2 * AGENTS * REQUESTS_PER_AGENT;
      console.info(
        `soak (${kind}): ${AGENTS} agents, ${messages} messages (${directTotal} direct, ${CHANNEL_SENDERS * CHANNEL_PER_SENDER} channel, ` +
          `${AGENTS * REQUESTS_PER_AGENT} request/reply pairs), ${deliveries} deliveries in ${(elapsed / 1000).toFixed(1)} s ` +
          `(sends done in ${(sentIn / 1000).toFixed(1)} s; ${Math.round(deliveries / (elapsed / 1000))} deliveries/s); ` +
          `${liveDirect}/${directTotal} direct delivered live; seed ${seed}`,
      );
    }
  }, 120_000);
});
