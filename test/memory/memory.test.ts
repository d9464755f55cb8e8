/**
 * The shared memory (memory/index.ts and the modules under it) over both stores: inboxes and
 * channels, contexts, sessions, the agent registry and presence, tokens, snapshots.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { keys } from '../../memory/keys.js';
import { KeyRing } from '../../crypto/index.js';
import { createSharedMemory, type SharedMemory, type SharedMemoryOptions } from '../../memory/index.js';
import { RedisStore } from '../../memory/redis/store.js';
import { keyRingSealer } from '../../memory/sealing.js';
import { compareStreamIds } from '../../memory/store.js';
import { hashToken } from '../../memory/tokens.js';
import { LinkerError } from '../../protocol/errors.js';
import { dumpPrefix, makeEmbeddedStore, storeKinds, tempDir } from '../setup/stores.js';
import { envelope, send } from './helpers.js';

/** The LinkerError a promise rejects with (fails the test if it resolves or throws something else). */
async function linkerError(promise: Promise<unknown>): Promise<LinkerError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LinkerError);
  return err as LinkerError;
}

const KEY_A = `${'A'.repeat(42)}E=`;
const KEY_B = `${'B'.repeat(42)}E=`;

describe.each(storeKinds)('shared memory on the $name store', (kind) => {
  const memory = (opts: Omit<SharedMemoryOptions, 'store'> = {}): SharedMemory => createSharedMemory({ store: kind.make(), ...opts });

  describe('inboxes', () => {
    it('routes a message to an inbox and reads it back whole', async () => {
      const m = memory();
      const env = envelope({ from: 'alice', to: 'bob', content: { task: 'review', files: ['a.ts'] }, priority: 8, ttl: 60 });
      const result = await m.messages.route(await m.messages.prepare(env), ['bob'], null);
      expect(result.channelStreamId).toBeNull();
      expect(Object.keys(result.inboxes)).toEqual(['bob']);

      const [delivered] = await m.messages.readInbox('bob', undefined, 10);
      expect(delivered).toEqual({
        streamId: result.inboxes.bob,
        envelope: env,
        priority: 8,
        expiresAt: Date.parse(env.payload.meta.timestamp) + 60_000,
      });
      expect(await m.messages.readInbox('alice', undefined, 10)).toEqual([]);
      expect(await m.messages.inboxInfo('bob')).toEqual({ length: 1, firstId: result.inboxes.bob, lastId: result.inboxes.bob });
    });

    it('reads an inbox in pages after a cursor, and history newest first before one', async () => {
      const m = memory();
      const sent: string[] = [];
      for (let i = 0; i < 25; i++) sent.push((await send(m, { from: 'alice', to: 'bob', content: `msg ${i}` })).envelope.id);

      // Resume: pages of 7 after the last stream id seen.
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await m.messages.readInbox('bob', after, 7);
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(7);
        seen.push(...page.map((d) => d.envelope.id));
        after = page.at(-1)!.streamId;
      }
      expect(seen).toEqual(sent);

      // History: newest first, pages of 10 strictly before the oldest one shown.
      const pages: string[][] = [];
      let before: string | undefined;
      for (;;) {
        const page = await m.messages.history('bob', before, 10);
        if (page.length === 0) break;
        pages.push(page.map((d) => d.envelope.id));
        before = page.at(-1)!.streamId;
      }
      expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
      expect(pages.flat()).toEqual([...sent].reverse());
    });

    it('keeps the newest inboxMaxLen messages', async () => {
      const m = memory({ limits: { inboxMaxLen: 5 } });
      const sent: string[] = [];
      for (let i = 0; i < 12; i++) sent.push((await send(m, { from: 'alice', to: 'bob', content: i })).envelope.id);
      const newest = await m.messages.history('bob', undefined, 5);
      expect(newest.map((d) => d.envelope.id)).toEqual(sent.slice(-5).reverse());
    });

    it('the cursor only moves forward', async () => {
      const m = memory();
      const first = await send(m, { from: 'alice', to: 'bob' });
      const second = await send(m, { from: 'alice', to: 'bob' });
      const [id1, id2] = [first.inboxes.bob!, second.inboxes.bob!];
      expect(compareStreamIds(id1, id2)).toBeLessThan(0);
      expect(await m.messages.cursor('bob')).toBeNull();
      expect(await m.messages.advanceCursor('bob', id2)).toBe(id2);
      expect(await m.messages.advanceCursor('bob', id1)).toBe(id2);
      expect(await m.messages.cursor('bob')).toBe(id2);
      expect(await m.messages.cursor('alice')).toBeNull();
    });

    it('records and reads acks per sender', async () => {
      const m = memory();
      const at = new Date().toISOString();
      const a1 = await m.messages.recordAck('alice', { message_id: 'm1', by: 'bob', at });
      const a2 = await m.messages.recordAck('alice', { message_id: 'm2', by: 'carol', at });
      // Each ack says which entry of the sender's ack stream it follows.
      expect(a1.prev).toBe('');
      expect(a2.prev).toBe(a1.id);
      const [s1, s2] = [a1.id, a2.id];
      expect(await m.messages.readAcks('alice', undefined, 10)).toEqual([
        { streamId: s1, ack: { message_id: 'm1', by: 'bob', at } },
        { streamId: s2, ack: { message_id: 'm2', by: 'carol', at } },
      ]);
      expect(await m.messages.readAcks('alice', s1, 10)).toHaveLength(1);
      expect(await m.messages.readAcks('bob', undefined, 10)).toEqual([]);
    });

    it('refuses an entry that does not belong to the inbox it was read from', async () => {
      const m = memory();
      const env = envelope({ from: 'alice', to: 'carol' });
      // Written into bob's inbox by mistake (or by someone tampering with the store).
      await m.messages.route(await m.messages.prepare(env), ['bob'], null);
      const err = await linkerError(m.messages.readInbox('bob', undefined, 10));
      expect(err.code).toBe('INTERNAL_SERVER_ERROR');
    });
  });

  describe('channels', () => {
    it('membership: join, members, list, leave', async () => {
      const m = memory();
      const now = new Date('2026-11-25T10:00:00.000Z');
      expect(await m.channels.exists('ops')).toBe(false);
      await m.channels.join('ops', 'bob', now);
      await m.channels.join('ops', 'alice', new Date('2026-11-25T11:00:00.000Z'));
      await m.channels.join('ops', 'alice'); // twice is fine
      await m.channels.join('dev', 'carol', now);
      expect(await m.channels.exists('ops')).toBe(true);
      expect(await m.channels.members('ops')).toEqual(['alice', 'bob']);
      expect(await m.channels.list()).toEqual([
        { name: 'dev', members: ['carol'], created_at: now.toISOString(), policy: 'open', created_by: 'carol' },
        { name: 'ops', members: ['alice', 'bob'], created_at: now.toISOString(), policy: 'open', created_by: 'bob' },
      ]);
      await m.channels.leave('ops', 'bob');
      await m.channels.leave('ops', 'nobody');
      expect(await m.channels.members('ops')).toEqual(['alice']);
      expect(await m.channels.members('never')).toEqual([]);
    });

    it('a channel message lands in every member inbox and in the channel stream, in one step', async () => {
      const m = memory();
      for (const a of ['alice', 'bob', 'carol']) await m.channels.join('ops', a);
      const { envelope: env, inboxes, channelStreamId } = await send(m, { from: 'alice', channel: 'ops', type: 'broadcast', content: 'deploy at 5' });
      expect(Object.keys(inboxes).sort()).toEqual(['bob', 'carol']);
      expect(channelStreamId).not.toBeNull();

      for (const member of ['bob', 'carol']) {
        const [d] = await m.messages.readInbox(member, undefined, 10);
        expect(d).toMatchObject({ streamId: inboxes[member], envelope: env });
      }
      expect(await m.messages.readInbox('alice', undefined, 10)).toEqual([]);
      const [onChannel] = await m.messages.readChannel('ops', undefined, 10);
      expect(onChannel).toMatchObject({ streamId: channelStreamId, envelope: env });

      // Channel streams resume after an id too.
      const second = await send(m, { from: 'bob', channel: 'ops', content: 'ok' });
      expect((await m.messages.readChannel('ops', channelStreamId!, 10)).map((d) => d.envelope.id)).toEqual([second.envelope.id]);
      expect(await m.messages.channelInfo('ops')).toMatchObject({ length: 2, firstId: channelStreamId, lastId: second.channelStreamId });
      expect(await m.messages.readChannel('dev', undefined, 10)).toEqual([]);
    });
  });

  describe('contexts', () => {
    it('an absent scope pulls as version 0 and empty', async () => {
      const m = memory();
      expect(await m.contexts.pull('global')).toEqual({ scope: 'global', version: 0, data: {}, updated_by: null, updated_at: null });
    });

    it('merges pushes as RFC 7396 merge patches: nested merge, null deletes, arrays replaced', async () => {
      const m = memory();
      const now = new Date('2026-11-25T10:00:00.000Z');
      const first = await m.contexts.push('agent:alice', { project: { name: 'linker', stage: 'design', owners: ['a', 'b'] }, drop: 1, keep: true }, 'alice', {
        now,
      });
      expect(first).toEqual({
        scope: 'agent:alice',
        version: 1,
        data: { project: { name: 'linker', stage: 'design', owners: ['a', 'b'] }, drop: 1, keep: true },
        updated_by: 'alice',
        updated_at: now.toISOString(),
      });
      const second = await m.contexts.push('agent:alice', { project: { stage: null, owners: ['c'], repo: { url: 'x' } }, drop: null, gone: null }, 'bob');
      expect(second.version).toBe(2);
      expect(second.data).toEqual({ project: { name: 'linker', owners: ['c'], repo: { url: 'x' } }, keep: true });
      expect(second.updated_by).toBe('bob');
      expect(await m.contexts.pull('agent:alice')).toEqual(second);
      // Scopes are separate documents.
      expect((await m.contexts.pull('global')).version).toBe(0);
    });

    it('unions shared_knowledge lists without duplicates', async () => {
      const m = memory();
      await m.contexts.push('global', { shared_knowledge: { facts: ['a', 'b'], decisions: [{ what: 'x', why: 'y' }] }, list: [1, 2] }, 'alice');
      const doc = await m.contexts.push(
        'global',
        { shared_knowledge: { facts: ['b', 'c', 'c'], decisions: [{ why: 'y', what: 'x' }, { what: 'z' }], owner: 'bob' }, list: [3] },
        'bob',
      );
      expect(doc.data).toEqual({
        shared_knowledge: { facts: ['a', 'b', 'c'], decisions: [{ what: 'x', why: 'y' }, { what: 'z' }], owner: 'bob' },
        list: [3],
      });
      const cleared = await m.contexts.push('global', { shared_knowledge: { facts: null } }, 'carol');
      expect(cleared.data.shared_knowledge).toEqual({ decisions: [{ what: 'x', why: 'y' }, { what: 'z' }], owner: 'bob' });
    });

    it('versions increase strictly, one per push', async () => {
      const m = memory();
      const versions: number[] = [];
      for (let i = 0; i < 5; i++) versions.push((await m.contexts.push('session:s1', { step: i }, 'alice')).version);
      expect(versions).toEqual([1, 2, 3, 4, 5]);
    });

    it('expectedVersion is a compare-and-set: CONFLICT with details.current_version', async () => {
      const m = memory();
      expect((await m.contexts.push('global', { a: 1 }, 'alice', { expectedVersion: 0 })).version).toBe(1);
      expect((await m.contexts.push('global', { b: 2 }, 'alice', { expectedVersion: 1 })).version).toBe(2);

      const err = await linkerError(m.contexts.push('global', { c: 3 }, 'bob', { expectedVersion: 1 }));
      expect(err.code).toBe('CONFLICT');
      expect(err.details).toMatchObject({ current_version: 2, expected_version: 1 });
      const ahead = await linkerError(m.contexts.push('global', { c: 3 }, 'bob', { expectedVersion: 9 }));
      expect(ahead.details).toMatchObject({ current_version: 2 });
      expect(await m.contexts.pull('global')).toMatchObject({ version: 2, data: { a: 1, b: 2 } });
      const absent = await linkerError(m.contexts.push('agent:x', { c: 3 }, 'bob', { expectedVersion: 1 }));
      expect(absent.details).toMatchObject({ current_version: 0 });
    });

    it('of concurrent compare-and-sets on one version exactly one wins', async () => {
      const m = memory();
      await m.contexts.push('global', { start: true }, 'alice');
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => m.contexts.push('global', { [`w${i}`]: i }, `w${i}`, { expectedVersion: 1 })),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      for (const r of lost) {
        expect(r.reason).toBeInstanceOf(LinkerError);
        expect((r.reason as LinkerError).code).toBe('CONFLICT');
        expect((r.reason as LinkerError).details).toMatchObject({ current_version: 2 });
      }
      expect((await m.contexts.pull('global')).version).toBe(2);
    });
  });

  describe('sessions', () => {
    it('create, get, list, update, close', async () => {
      const m = memory();
      const t0 = new Date('2026-11-25T10:00:00.000Z');
      const created = await m.sessions.create({
        session_id: 's1',
        participants: ['bob', 'alice', 'bob'],
        metadata: { goal: 'ship it' },
        created_by: 'alice',
        now: t0,
      });
      expect(created).toEqual({
        session_id: 's1',
        participants: ['alice', 'bob'],
        created_by: 'alice',
        created_at: t0.toISOString(),
        updated_at: t0.toISOString(),
        status: 'active',
        metadata: { goal: 'ship it' },
        messages: [],
      });
      expect(await m.sessions.get('s1')).toEqual(created);
      expect(await m.sessions.get('nope')).toBeNull();
      expect((await linkerError(m.sessions.require('nope'))).code).toBe('NOT_FOUND');
      expect((await linkerError(m.sessions.create({ session_id: 's1', participants: [], metadata: {}, created_by: 'bob' }))).code).toBe('CONFLICT');

      await m.sessions.create({ session_id: 's2', participants: [], metadata: {}, created_by: 'carol', now: new Date('2026-11-25T11:00:00.000Z') });
      expect((await m.sessions.list()).map((s) => s.session_id)).toEqual(['s1', 's2']);

      const t1 = new Date('2026-11-25T12:00:00.000Z');
      const paused = await m.sessions.update('s1', { status: 'paused', metadata: { deadline: '2026-12-01T00:00:00Z' }, participants: ['dave'] }, t1);
      expect(paused).toMatchObject({
        status: 'paused',
        metadata: { goal: 'ship it', deadline: '2026-12-01T00:00:00Z' },
        participants: ['alice', 'bob', 'dave'],
        updated_at: t1.toISOString(),
        created_at: t0.toISOString(),
      });
      expect((await m.sessions.list({ status: 'paused' })).map((s) => s.session_id)).toEqual(['s1']);
      expect((await m.sessions.list({ status: 'active' })).map((s) => s.session_id)).toEqual(['s2']);
      expect((await linkerError(m.sessions.update('nope', { status: 'paused' }))).code).toBe('NOT_FOUND');

      const closed = await m.sessions.close('s1');
      expect(closed.status).toBe('completed');
      expect(await m.sessions.list({ status: 'completed' })).toEqual([expect.objectContaining({ session_id: 's1', participants: ['alice', 'bob', 'dave'] })]);
    });

    it('addMessage creates the session on first use, adds participants, keeps refs in order', async () => {
      const m = memory();
      const refs = [
        { message_id: 'm1', from: 'alice', to: 'bob', type: 'task' as const, timestamp: '2026-11-25T10:00:00.000Z' },
        { message_id: 'm2', from: 'bob', to: 'alice', type: 'reply' as const, timestamp: '2026-11-25T10:00:01.000Z' },
        { message_id: 'm3', from: 'bob', to: 'carol', type: 'context_update' as const, timestamp: '2026-11-25T10:00:02.000Z' },
      ];
      for (const ref of refs) await m.sessions.addMessage('sess_123', ref);
      // Only a participant adds to a session that exists (an admin may too).
      const outsider = { message_id: 'm4', from: 'mallory', to: 'alice', type: 'task' as const, timestamp: '2026-11-25T10:00:03.000Z' };
      expect((await linkerError(m.sessions.addMessage('sess_123', outsider))).code).toBe('FORBIDDEN');
      const s = await m.sessions.require('sess_123');
      expect(s).toMatchObject({ session_id: 'sess_123', created_by: 'alice', status: 'active', participants: ['alice', 'bob', 'carol'] });
      expect(s.messages).toEqual(refs);
      expect((await m.sessions.get('sess_123', { messageLimit: 2 }))!.messages).toEqual(refs.slice(1));
      expect((await m.sessions.list()).map((x) => x.session_id)).toEqual(['sess_123']);
    });

    it('a completed session refuses messages and reopening', async () => {
      const m = memory();
      await m.sessions.create({ session_id: 's1', participants: ['bob'], metadata: {}, created_by: 'alice' });
      await m.sessions.close('s1');
      const ref = { message_id: 'm1', from: 'alice', to: 'bob', type: 'task' as const, timestamp: new Date().toISOString() };
      expect((await linkerError(m.sessions.addMessage('s1', ref))).code).toBe('CONFLICT');
      expect((await linkerError(m.sessions.update('s1', { status: 'active' }))).code).toBe('CONFLICT');
      expect((await linkerError(m.sessions.update('s1', { status: 'paused' }))).code).toBe('CONFLICT');
      const s = await m.sessions.require('s1');
      expect(s.status).toBe('completed');
      expect(s.messages).toEqual([]);
      // Closing again is harmless.
      expect((await m.sessions.close('s1')).status).toBe('completed');
    });
  });

  describe('agents', () => {
    it('upsert, get, list, remove', async () => {
      const m = memory();
      const t0 = new Date('2026-11-25T10:00:00.000Z');
      const created = await m.agents.upsert({ agent_id: 'claude', agent_type: 'claude', metadata: { model: 'x' }, public_keys: { box: KEY_A } }, t0);
      expect(created).toEqual({
        agent_id: 'claude',
        agent_type: 'claude',
        metadata: { model: 'x' },
        public_keys: { box: KEY_A },
        created_at: t0.toISOString(),
        last_seen: null,
      });
      expect(await m.agents.get('claude')).toEqual(created);

      const updated = await m.agents.upsert({ agent_id: 'claude', metadata: { model: 'y' }, public_keys: { sign: KEY_B } }, new Date());
      expect(updated).toEqual({ ...created, metadata: { model: 'y' }, public_keys: { box: KEY_A, sign: KEY_B } });

      await m.agents.upsert({ agent_id: 'gemini' });
      const list = await m.agents.list();
      expect(list.map((a) => [a.agent_id, a.agent_type, a.online])).toEqual([
        ['claude', 'claude', false],
        ['gemini', 'agent', false],
      ]);
      expect(await m.agents.remove('claude')).toBe(true);
      expect(await m.agents.remove('claude')).toBe(false);
      expect(await m.agents.get('claude')).toBeNull();
      expect((await linkerError(m.agents.require('claude'))).code).toBe('NOT_FOUND');
      expect((await m.agents.list()).map((a) => a.agent_id)).toEqual(['gemini']);
    });

    it('with sealing, registry records are sealed and bound to their agent id', async () => {
      // In the embedded store's memory, values are sealed only when asked (memory/sealing.ts).
      const m = memory({ sealer: keyRingSealer(KeyRing.generate()), sealInMemory: true });
      await m.agents.upsert({ agent_id: 'alice', metadata: { secret: 'plans' } });
      const stored = await m.store.hashGet('agents', 'alice');
      expect(stored).not.toBeNull();
      expect(stored).not.toContain('plans');
      expect((await m.agents.require('alice')).metadata).toEqual({ secret: 'plans' });
      // Copied under another agent id, the record does not open.
      await m.store.hashSet('agents', { mallory: stored! });
      await expect(m.agents.get('mallory')).rejects.toThrow();
    });

    /** What live hub nodes do every 2 s (transport/bus.ts): a heartbeat key with a TTL. */
    const beat = (m: SharedMemory, nodes: string[], ttlMs = 60_000) =>
      Promise.all(nodes.map((n) => m.store.hashSetWithExpiry(keys.nodeAlive(n), { beat: new Date().toISOString() }, ttlMs)));

    it('presence: online while connected, offline after the last disconnect', async () => {
      const m = memory();
      await beat(m, ['n1', 'n2']);
      await m.agents.upsert({ agent_id: 'codex' });
      expect(await m.agents.isOnline('codex')).toBe(false);

      const since = '2026-11-25T10:00:00.000Z';
      await m.agents.connected('codex', 'conn-1', { node: 'n1', connected_since: since });
      await m.agents.connected('codex', 'conn-2', { node: 'n2', connected_since: '2026-11-25T10:05:00.000Z' });
      expect(await m.agents.isOnline('codex')).toBe(true);
      const [status] = await m.agents.list();
      expect(status).toMatchObject({ agent_id: 'codex', online: true, connected_since: since });

      await m.agents.disconnected('codex', 'conn-1');
      expect(await m.agents.isOnline('codex')).toBe(true);
      const left = new Date('2026-11-25T11:00:00.000Z');
      await m.agents.disconnected('codex', 'conn-2', left);
      expect(await m.agents.isOnline('codex')).toBe(false);
      const [after] = await m.agents.list();
      expect(after).toMatchObject({ online: false, connected_since: null, last_seen: left.toISOString() });
    });

    it('presence expires by itself without refresh (presenceTtlMs)', async () => {
      const m = memory({ presenceTtlMs: 200 });
      await beat(m, ['crashed-node']);
      await m.agents.upsert({ agent_id: 'gpt' });
      await m.agents.connected('gpt', 'conn-1', { node: 'crashed-node', connected_since: new Date().toISOString() });
      expect(await m.agents.isOnline('gpt')).toBe(true);
      await vi.waitFor(async () => expect(await m.agents.isOnline('gpt')).toBe(false), { timeout: 5_000, interval: 25 });
      expect((await m.agents.list())[0]).toMatchObject({ agent_id: 'gpt', online: false });
      // The whole presence key is gone from the store too, not only filtered out.
      expect(await m.store.hashGetAll('presence:{gpt}')).toEqual({});
    });

    it('presence counts only connections of nodes whose heartbeat is alive (on Redis); a hub trusts its own', async () => {
      const m = memory({ nodeId: 'me' });
      for (const id of ['a', 'b', 'c', 'd']) await m.agents.upsert({ agent_id: id });
      const since = new Date().toISOString();
      await beat(m, ['alive']);
      await beat(m, ['expired'], 50);
      await vi.waitFor(async () => expect(await m.store.hashGetAll(keys.nodeAlive('expired'))).toEqual({}), { timeout: 5_000, interval: 20 });
      await m.agents.connected('a', 'c1', { node: 'alive', connected_since: since });
      await m.agents.connected('b', 'c2', { node: 'expired', connected_since: since });
      await m.agents.connected('c', 'c3', { node: 'never-beat', connected_since: since });
      await m.agents.connected('d', 'c4', { node: 'me', connected_since: since });
      const online = (await m.agents.list()).filter((a) => a.online).map((a) => a.agent_id);
      // Redis: hub nodes heartbeat, so a node without a live one is dead. Embedded: one process,
      // no heartbeats, the presence TTL alone decides.
      expect(online).toEqual(kind.name === 'redis' ? ['a', 'd'] : ['a', 'b', 'c', 'd']);
      expect(await m.agents.isOnline('b')).toBe(kind.name !== 'redis');
      expect(await m.agents.isOnline('d')).toBe(true);
    });
  });

  describe('tokens', () => {
    it('issue, verify, list, revoke', async () => {
      const m = memory();
      const { token, record } = await m.tokens.issue('claude', ['agent', 'agent', 'monitor']);
      expect(token).toMatch(/^skl_[A-Za-z0-9_-]{43}$/);
      expect(record).toMatchObject({ agent_id: 'claude', scopes: ['agent', 'monitor'], hint: token.slice(0, 8) });
      expect(await m.tokens.verify(token)).toEqual(record);
      expect(await m.tokens.verify(`${token}x`)).toBeNull();
      expect(await m.tokens.verify('')).toBeNull();
      expect(await m.tokens.verify('x'.repeat(600))).toBeNull();

      const other = await m.tokens.issue('claude', ['admin']);
      const gemini = await m.tokens.register('skl_configured-token', 'gemini', ['agent']);
      expect(await m.tokens.verify('skl_configured-token')).toEqual(gemini);
      expect(await m.tokens.count()).toBe(3);
      expect((await m.tokens.list()).map((r) => r.agent_id).sort()).toEqual(['claude', 'claude', 'gemini']);

      expect(await m.tokens.revokeAgent('claude')).toBe(2);
      expect(await m.tokens.verify(token)).toBeNull();
      expect(await m.tokens.verify(other.token)).toBeNull();
      expect(await m.tokens.verify('skl_configured-token')).toEqual(gemini);
      expect(await m.tokens.revokeAgent('claude')).toBe(0);
    });

    it('stores tokens hashed: the clear token appears nowhere in the store', async () => {
      const m = memory();
      const { token } = await m.tokens.issue('claude', ['agent']);
      const state = JSON.stringify(await m.store.exportState());
      expect(state).toContain(hashToken(token));
      expect(state).not.toContain(token);
      expect(state).not.toContain(token.slice(8));
      if (m.store instanceof RedisStore) {
        const raw = await dumpPrefix(m.store.prefix);
        const texts = raw.flatMap((k) => [k.key, ...k.texts]);
        expect(texts).toContain(hashToken(token));
        for (const t of texts) expect(t).not.toContain(token.slice(8));
      }
    });
  });

  describe('snapshots', () => {
    async function populate(m: SharedMemory, tag: string) {
      await m.agents.upsert({ agent_id: `agent-${tag}`, metadata: { tag } });
      await m.channels.join('ops', `agent-${tag}`);
      await m.channels.join('ops', 'watcher');
      await send(m, { from: 'alice', to: `agent-${tag}`, content: `direct ${tag}` });
      await send(m, { from: `agent-${tag}`, channel: 'ops', content: `channel ${tag}` });
      await m.contexts.push('global', { shared_knowledge: { facts: [tag] }, [`key-${tag}`]: tag }, 'alice');
      await m.sessions.addMessage(`sess-${tag}`, {
        message_id: `m-${tag}`,
        from: 'alice',
        to: `agent-${tag}`,
        type: 'task',
        timestamp: new Date().toISOString(),
      });
      await m.tokens.issue(`agent-${tag}`, ['agent']);
    }

    async function view(m: SharedMemory) {
      return {
        agents: (await m.agents.list()).map(({ agent_id, metadata }) => ({ agent_id, metadata })),
        channels: await m.channels.list(),
        watcher: (await m.messages.readInbox('watcher', undefined, 100)).map((d) => d.envelope),
        channel: (await m.messages.readChannel('ops', undefined, 100)).map((d) => d.streamId),
        global: await m.contexts.pull('global'),
        sessions: await m.sessions.list(),
        tokens: await m.tokens.count(),
      };
    }

    it('restore brings back the state at snapshot time; later changes are gone', async () => {
      const m = memory();
      await populate(m, 'one');
      const atSnapshot = { state: await m.store.exportState(), view: await view(m) };
      const info = await m.snapshots.create();
      expect(info.bytes).toBeGreaterThan(0);
      expect((await m.snapshots.list()).map((s) => s.name)).toEqual([info.name]);

      await populate(m, 'two');
      await m.sessions.close('sess-one');
      await m.agents.remove('agent-one');
      expect(await view(m)).not.toEqual(atSnapshot.view);

      await m.snapshots.restore(info.name);
      expect(await m.store.exportState()).toEqual(atSnapshot.state);
      expect(await view(m)).toEqual(atSnapshot.view);
      expect(await m.sessions.get('sess-two')).toBeNull();
      expect((await m.sessions.require('sess-one')).status).toBe('active');
      expect(await m.agents.get('agent-one')).not.toBeNull();
      expect((await m.contexts.pull('global')).data.shared_knowledge).toEqual({ facts: ['one'] });

      // Life goes on after a restore: versions and stream ids continue.
      const pushed = await m.contexts.push('global', { after: true }, 'alice');
      expect(pushed.version).toBe(atSnapshot.view.global.version + 1);
      const later = await send(m, { from: 'alice', to: 'watcher' });
      expect(compareStreamIds(later.inboxes.watcher!, atSnapshot.view.channel.at(-1)!)).toBeGreaterThan(0);
    });

    it('names snapshots by time, unique within the same millisecond; restoreLatest takes the newest', async () => {
      const m = memory();
      expect(await m.snapshots.restoreLatest()).toBeNull();
      const at = new Date('2026-11-25T09:35:00.123Z');
      await m.contexts.push('global', { n: 1 }, 'alice');
      const a = await m.snapshots.create(at);
      await m.contexts.push('global', { n: 2 }, 'alice');
      const b = await m.snapshots.create(at);
      expect(a.name).toBe('20261125T093500123Z');
      expect(b.name).toBe('20261125T093500123Z-1');
      await m.contexts.push('global', { n: 3 }, 'alice');
      expect(await m.snapshots.restoreLatest()).toBe(b.name);
      expect((await m.contexts.pull('global')).data).toEqual({ n: 2 });
      await m.snapshots.restore(a.name);
      expect((await m.contexts.pull('global')).data).toEqual({ n: 1 });
      expect((await linkerError(m.snapshots.restore('19990101T000000000Z'))).code).toBe('NOT_FOUND');
    });

    it('with sealing, a snapshot opens only with the key ring that sealed it', async () => {
      const ring = KeyRing.generate();
      const store = kind.make();
      const m = createSharedMemory({ store, sealer: keyRingSealer(ring) });
      await populate(m, 'sealed');
      const before = await view(m);
      const info = await m.snapshots.create();
      await populate(m, 'more');
      const stranger = createSharedMemory({ store: kind.peer(store), sealer: keyRingSealer(KeyRing.generate()) });
      expect((await linkerError(stranger.snapshots.restore(info.name))).code).toBe('BAD_REQUEST');
      await m.snapshots.restore(info.name);
      expect(await view(m)).toEqual(before);
    });
  });
});

describe('embedded store with a dataDir', () => {
  it('restores the latest snapshot in a new instance; snapshot files are mode 0600', async () => {
    const dataDir = tempDir();
    const first = createSharedMemory({ store: makeEmbeddedStore({ dataDir }) });
    await first.agents.upsert({ agent_id: 'bob', metadata: { role: 'reviewer' } });
    const sent = await send(first, { from: 'alice', to: 'bob', content: 'persist me' });
    await first.contexts.push('global', { shared_knowledge: { facts: ['kept'] } }, 'alice');
    await first.sessions.create({ session_id: 's1', participants: ['bob'], metadata: { goal: 'survive a restart' }, created_by: 'alice' });
    await first.snapshots.create(new Date('2026-11-25T09:00:00.000Z'));
    const state = await first.store.exportState();
    const latest = await first.snapshots.create(new Date('2026-11-25T10:00:00.000Z'));
    await first.contexts.push('global', { shared_knowledge: { facts: ['lost'] } }, 'alice');

    for (const s of await first.snapshots.list()) {
      expect(statSync(join(dataDir, 'snapshots', `${s.name}.json`)).mode & 0o777).toBe(0o600);
    }
    expect(statSync(join(dataDir, 'snapshots')).mode & 0o077).toBe(0);

    const second = createSharedMemory({ store: makeEmbeddedStore({ dataDir }) });
    expect((await second.snapshots.list()).map((s) => s.name)).toEqual(['20261125T090000000Z', latest.name]);
    expect(await second.snapshots.restoreLatest()).toBe(latest.name);
    expect(await second.store.exportState()).toEqual(state);
    expect((await second.contexts.pull('global')).data).toEqual({ shared_knowledge: { facts: ['kept'] } });
    expect((await second.messages.readInbox('bob', undefined, 10)).map((d) => d.streamId)).toEqual([sent.inboxes.bob]);
    expect((await second.sessions.require('s1')).metadata).toEqual({ goal: 'survive a restart' });
    expect((await second.agents.require('bob')).metadata).toEqual({ role: 'reviewer' });

    // New ids continue after the restored ones.
    const next = await send(second, { from: 'alice', to: 'bob' });
    expect(compareStreamIds(next.inboxes.bob!, sent.inboxes.bob!)).toBeGreaterThan(0);
  });

  it('a sealed snapshot file holds no clear text and needs the same key ring', async () => {
    const dataDir = tempDir();
    const ring = KeyRing.generate();
    const secret = `secret-${Date.now()}`;
    const first = createSharedMemory({ store: makeEmbeddedStore({ dataDir }), sealer: keyRingSealer(ring) });
    await first.contexts.push('global', { secret }, 'alice');
    const info = await first.snapshots.create();
    expect(readFileSync(join(dataDir, 'snapshots', `${info.name}.json`), 'utf8')).not.toContain(secret);

    const wrong = createSharedMemory({ store: makeEmbeddedStore({ dataDir }), sealer: keyRingSealer(KeyRing.generate()) });
    expect((await linkerError(wrong.snapshots.restoreLatest())).code).toBe('BAD_REQUEST');
    const right = createSharedMemory({ store: makeEmbeddedStore({ dataDir }), sealer: keyRingSealer(ring) });
    await right.snapshots.restoreLatest();
    expect((await right.contexts.pull('global')).data).toEqual({ secret });
  });
});
