/**
 * Sealing at rest, checked from the outside: a unique canary string goes through every path that
 * stores user data (direct, channel and broadcast messages, acks, context, sessions, agent
 * metadata, a snapshot) via the real hub on Redis; then every key under the test's prefix is read
 * back with plain Redis commands and the canary must appear nowhere, in any form we can think of.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dumpPrefix } from '../setup/stores.js';
import { startTestHub, type TestHub } from './harness.js';
import type { IncomingMessage } from '../../clients/agent.js';

describe('canary: nothing a user sends is stored in clear text on Redis', () => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('keeps the canary out of every key, field, value, stream entry and member under the prefix', async () => {
    t = await startTestHub('redis');
    expect(t.hub.memory.sealer.enabled).toBe(true);
    const canary = `CANARY-${randomUUID()}`;
    const spellings = [
      canary,
      canary.slice(7), // the uuid alone
      Buffer.from(canary).toString('base64').slice(0, 24),
      Buffer.from(canary).toString('hex').slice(0, 32),
      JSON.stringify(canary).slice(1, -1),
    ];

    const adminToken = await t.addAgent('root', { scopes: ['admin'] });
    const bobInbox: IncomingMessage[] = [];
    const carolInbox: IncomingMessage[] = [];
    const alice = await t.agent('alice');
    const bob = await t.agent('bob', { onMessage: (m) => void bobInbox.push(m) });
    const carol = await t.agent('carol', { channels: ['research'], onMessage: (m) => void carolInbox.push(m) });
    const admin = t.client(adminToken);
    await bob.trpc.channels.join.mutate({ channel: 'research' });

    // Messages: direct (with an ack), channel, broadcast, in a session.
    const session = await alice.trpc.sessions.create.mutate({
      session_id: 'sess_canary',
      participants: ['bob'],
      metadata: { goal: `find ${canary}`, deadline: '2030-01-01T00:00:00Z', notes: { secret: canary } },
    });
    expect(session.metadata.goal).toBe(`find ${canary}`);
    const direct = await alice.send({
      type: 'task',
      to_agent: 'bob',
      payload: { content: { question: canary, [canary]: [canary] }, context: { session_id: 'sess_canary', priority: 9 }, meta: { requires_ack: true } },
    });
    await alice.send({ type: 'task', channel: 'research', payload: { content: `channel ${canary}` } });
    await alice.send({ type: 'broadcast', payload: { content: `broadcast ${canary}` } });
    await vi.waitFor(() => {
      expect(bobInbox.map((m) => m.envelope.type).sort()).toEqual(['broadcast', 'task', 'task']);
      expect(carolInbox.map((m) => m.envelope.type).sort()).toEqual(['broadcast', 'task']);
    });
    const directIn = bobInbox.find((m) => m.envelope.id === direct.id)!;
    expect(directIn.envelope.payload.content).toEqual({ question: canary, [canary]: [canary] });
    await bob.trpc.messages.ack.mutate({ acks: [{ message_id: direct.id, stream_id: directIn.streamId }], cursor: directIn.streamId });
    await bob.reply(directIn.envelope, `answer ${canary}`);

    // Context: values, keys, shared knowledge, on several scopes.
    await alice.trpc.context.push.mutate({ scope: 'global', patch: { finding: canary, [canary]: 1, shared_knowledge: { facts: [canary] } } });
    await alice.trpc.context.push.mutate({ scope: 'agent:alice', patch: { private: { deep: [canary] } } });
    await bob.trpc.context.push.mutate({ scope: 'session:sess_canary', patch: { summary: canary } });

    // Sessions and the registry.
    await bob.trpc.sessions.update.mutate({ session_id: 'sess_canary', metadata: { progress: `half of ${canary}` } });
    await admin.trpc.agents.add.mutate({ agent_id: 'dave', metadata: { owner: canary } });
    await carol.trpc.agents.update.mutate({ metadata: { bio: canary } });

    // A snapshot of all of it.
    const snap = await admin.trpc.admin.snapshotCreate.mutate();
    expect(snap.bytes).toBeGreaterThan(1000);

    // Everything really went through: read it back through the hub, in clear.
    expect((await alice.trpc.context.pull.query({ scope: 'global' })).data).toEqual({ finding: canary, [canary]: 1, shared_knowledge: { facts: [canary] } });
    expect((await bob.trpc.sessions.get.query({ session_id: 'sess_canary' })).metadata.progress).toBe(`half of ${canary}`);
    expect((await admin.trpc.agents.get.query({ agent_id: 'dave' })).metadata).toEqual({ owner: canary });
    const history = await bob.trpc.messages.history.query({});
    expect(history.items.map((i) => JSON.stringify(i.message.payload.content)).join(' ')).toContain(canary);
    await alice.close();
    await bob.close();
    await carol.close();

    // Now look at Redis with plain commands: SCAN, TYPE, then GET/HGETALL/XRANGE/LRANGE/SMEMBERS/ZRANGE.
    const dump = await dumpPrefix(t.prefix);
    const types = new Set(dump.map((k) => k.type));
    const keyNames = dump.map((k) => k.key.slice(t.prefix.length));
    const texts = dump.flatMap((k) => [k.key, ...k.texts]);
    // Not vacuous: the data is there, in many keys of several types.
    expect(dump.length).toBeGreaterThanOrEqual(20);
    expect(types).toEqual(expect.objectContaining(new Set(['hash', 'stream', 'string'])));
    for (const expected of [
      'agents',
      'history:{bob}',
      'history:{carol}',
      'channel:{research}',
      'channel:{skynet_core}',
      'context:{global}',
      'context:{agent:alice}',
      'context:{session:sess_canary}',
      'session:{sess_canary}',
      `snapshot:${snap.name}`,
      'acks:{alice}',
      'tokens',
    ]) {
      expect(keyNames).toContain(expected);
    }
    expect(texts.join('\n').length).toBeGreaterThan(10_000);
    expect(texts).toContain(direct.id); // routing metadata is readable, so the read itself works

    for (const spelling of spellings) {
      const hits = dump.filter((k) => k.key.includes(spelling) || k.texts.some((x) => x.includes(spelling)));
      expect(
        hits.map((k) => k.key),
        `"${spelling}" found in Redis`,
      ).toEqual([]);
    }
  });
});
