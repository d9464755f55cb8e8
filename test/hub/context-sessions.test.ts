/**
 * Shared context, collaboration sessions and presence over the wire, through the real hub and
 * the typed client: merge and compare-and-set, scope ownership, watch; the session lifecycle and
 * who may touch a session; agents online/offline, and tokens issued and revoked by an admin.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TRPCClientError } from '@trpc/client';
import { pino } from 'pino';
import WebSocket from 'ws';
import { createLinkerClient } from '../../clients/client.js';
import { KeyRing } from '../../crypto/keyring.js';
import { RedisStore } from '../../memory/redis/store.js';
import { keyRingSealer } from '../../memory/sealing.js';
import { createHub } from '../../transport/hub.js';
import { redisUrl } from '../setup/stores.js';
import { deferred, recordingWebSocket, rejection, startTestHub, type StoreKind, type TestHub } from './harness.js';

describe.each<StoreKind>(['redis', 'sqlite', 'embedded'])('context over the wire on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('merges pushes: objects patched, null deletes, shared_knowledge lists unioned across writers', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    const bob = t.client(await t.addAgent('bob'));
    expect(await alice.trpc.context.pull.query({ scope: 'global' })).toEqual({ scope: 'global', version: 0, data: {}, updated_by: null, updated_at: null });

    const v1 = await alice.trpc.context.push.mutate({
      scope: 'global',
      patch: { project: { name: 'rag', stage: 'draft' }, shared_knowledge: { facts: ['a', 'b'] }, todo: ['x'], scratch: 1 },
    });
    expect(v1.version).toBe(1);
    expect(v1.updated_by).toBe('alice');
    const v2 = await bob.trpc.context.push.mutate({
      scope: 'global',
      patch: { project: { stage: 'review' }, shared_knowledge: { facts: ['b', 'c'], decisions: [{ use: 'pgvector' }] }, todo: ['y'], scratch: null },
    });
    expect(v2.version).toBe(2);
    expect(v2.updated_by).toBe('bob');
    const expected = {
      project: { name: 'rag', stage: 'review' },
      shared_knowledge: { facts: ['a', 'b', 'c'], decisions: [{ use: 'pgvector' }] },
      todo: ['y'], // outside shared_knowledge a list is replaced (RFC 7396)
    };
    expect(v2.data).toEqual(expected);
    const pulled = await alice.trpc.context.pull.query({ scope: 'global' });
    expect(pulled).toEqual({ scope: 'global', version: 2, data: expected, updated_by: 'bob', updated_at: v2.updated_at });
  });

  it('makes a push with expected_version a compare-and-set: CONFLICT carries the current version', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    await alice.trpc.context.push.mutate({ scope: 'session:s1', patch: { step: 1 } });
    await alice.trpc.context.push.mutate({ scope: 'session:s1', patch: { step: 2 } });

    const err = await rejection(alice.trpc.context.push.mutate({ scope: 'session:s1', patch: { step: 99 }, expected_version: 1 }));
    expect(err.data?.code).toBe('CONFLICT');
    expect(err.data?.httpStatus).toBe(409);
    expect(err.data?.details).toEqual({ current_version: 2, expected_version: 1 });
    expect(err.message).toBe('version conflict on context:{session:s1}: expected version 1, current version is 2');
    expect((await alice.trpc.context.pull.query({ scope: 'session:s1' })).data).toEqual({ step: 2 });

    const ok = await alice.trpc.context.push.mutate({ scope: 'session:s1', patch: { step: 3 }, expected_version: err.data.details.current_version });
    expect(ok.version).toBe(3);
    expect(ok.data).toEqual({ step: 3 });
    // expected_version 0 means "only if it does not exist yet".
    const exists = await rejection(alice.trpc.context.push.mutate({ scope: 'session:s1', patch: {}, expected_version: 0 }));
    expect(exists.data?.details).toEqual({ current_version: 3, expected_version: 0 });
    expect((await alice.trpc.context.push.mutate({ scope: 'session:fresh', patch: { a: 1 }, expected_version: 0 })).version).toBe(1);
  });

  it('keeps agent:<other> scopes to their owner: FORBIDDEN without admin, allowed with it', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    const bob = t.client(await t.addAgent('bob'));
    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] }));
    await alice.trpc.context.push.mutate({ scope: 'agent:alice', patch: { mood: 'busy' } });

    const read = await rejection(bob.trpc.context.pull.query({ scope: 'agent:alice' }));
    expect(read.data?.code).toBe('FORBIDDEN');
    expect(read.message).toBe('reading the context of alice needs the admin scope');
    const write = await rejection(bob.trpc.context.push.mutate({ scope: 'agent:alice', patch: { mood: 'hijacked' } }));
    expect(write.data?.code).toBe('FORBIDDEN');
    expect(write.message).toBe('writing the context of alice needs the admin scope');
    const watched = deferred<unknown>();
    const sub = bob.trpc.context.watch.subscribe(
      { scope: 'agent:alice' },
      { onData: () => watched.reject(new Error('bob watched alice')), onError: watched.resolve },
    );
    const watchErr = (await watched.promise) as TRPCClientError<any>;
    sub.unsubscribe();
    expect(watchErr.data?.code).toBe('FORBIDDEN');

    expect((await admin.trpc.context.pull.query({ scope: 'agent:alice' })).data).toEqual({ mood: 'busy' });
    await admin.trpc.context.push.mutate({ scope: 'agent:alice', patch: { note: 'from admin' } });
    expect((await alice.trpc.context.pull.query({ scope: 'agent:alice' })).data).toEqual({ mood: 'busy', note: 'from admin' });
  });

  it('context.watch yields the current document, then each new version', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    const bob = t.client(await t.addAgent('bob'));
    await alice.trpc.context.push.mutate({ scope: 'global', patch: { n: 1 } });

    const docs: { version: number; data: Record<string, unknown>; updated_by: string | null }[] = [];
    const failed = deferred<never>();
    const sub = bob.trpc.context.watch.subscribe({ scope: 'global' }, { onData: (d) => docs.push(d.data), onError: failed.reject });
    const until = (n: number) => Promise.race([vi.waitFor(() => expect(docs.length).toBeGreaterThanOrEqual(n), { timeout: 5_000 }), failed.promise]);
    await until(1);
    expect(docs[0]).toMatchObject({ version: 1, data: { n: 1 }, updated_by: 'alice' });

    await alice.trpc.context.push.mutate({ scope: 'global', patch: { n: 2 } });
    await until(2);
    await alice.trpc.context.push.mutate({ scope: 'global', patch: { m: true } });
    await until(3);
    sub.unsubscribe();
    expect(docs.map((d) => [d.version, d.data])).toEqual([
      [1, { n: 1 }],
      [2, { n: 2 }],
      [3, { n: 2, m: true }],
    ]);
  });
});

describe.each<StoreKind>(['redis', 'sqlite', 'embedded'])('sessions over the wire on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('creates, gets, lists, updates, records messages and closes a session', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    const bob = t.client(await t.addAgent('bob'));
    await t.addAgent('carol');

    const created = await alice.trpc.sessions.create.mutate({
      session_id: 'sess_rag',
      participants: ['bob'],
      metadata: { goal: 'survey RAG', deadline: '2026-12-01T00:00:00Z' },
    });
    expect(created).toMatchObject({
      session_id: 'sess_rag',
      participants: ['alice', 'bob'],
      created_by: 'alice',
      status: 'active',
      metadata: { goal: 'survey RAG' },
      messages: [],
    });
    const dup = await rejection(bob.trpc.sessions.create.mutate({ session_id: 'sess_rag' }));
    expect(dup.data?.code).toBe('CONFLICT');
    expect(dup.message).toBe('session sess_rag already exists');
    const generated = await bob.trpc.sessions.create.mutate({});
    expect(generated.session_id).toMatch(/^sess_[0-9a-f-]{36}$/);

    // A message sent with the session id is recorded; so is one added by hand.
    const sent = await alice.trpc.messages.send.mutate({
      type: 'task',
      to_agent: 'bob',
      payload: { content: 'find papers', context: { session_id: 'sess_rag' } },
    });
    await bob.trpc.sessions.addMessage.mutate({ session_id: 'sess_rag', message_id: 'out-of-band-1', to: 'alice', type: 'reply' });
    const got = await bob.trpc.sessions.get.query({ session_id: 'sess_rag' });
    expect(got.messages.map((m) => [m.message_id, m.from, m.to, m.type])).toEqual([
      [sent.id, 'alice', 'bob', 'task'],
      ['out-of-band-1', 'bob', 'alice', 'reply'],
    ]);

    const paused = await bob.trpc.sessions.update.mutate({ session_id: 'sess_rag', status: 'paused', participants: ['carol'], metadata: { note: 'waiting' } });
    expect(paused.status).toBe('paused');
    expect(paused.participants).toEqual(['alice', 'bob', 'carol']);
    expect(paused.metadata).toEqual({ goal: 'survey RAG', deadline: '2026-12-01T00:00:00Z', note: 'waiting' });

    expect((await alice.trpc.sessions.list.query()).map((s) => s.session_id)).toEqual(['sess_rag']);
    expect((await bob.trpc.sessions.list.query()).map((s) => s.session_id).sort()).toEqual([generated.session_id, 'sess_rag'].sort());
    expect((await bob.trpc.sessions.list.query({ status: 'paused' })).map((s) => s.session_id)).toEqual(['sess_rag']);

    const closed = await alice.trpc.sessions.close.mutate({ session_id: 'sess_rag' });
    expect(closed.status).toBe('completed');
    expect((await bob.trpc.sessions.list.query({ status: 'completed' })).map((s) => s.session_id)).toEqual(['sess_rag']);
    const reopen = await rejection(alice.trpc.sessions.update.mutate({ session_id: 'sess_rag', status: 'active' }));
    expect(reopen.data?.code).toBe('CONFLICT');
    expect(reopen.message).toBe('session sess_rag is completed and cannot be reopened');
  });

  it('refuses new messages in a completed session with CONFLICT, by send and by addMessage', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    await t.addAgent('bob');
    await alice.trpc.sessions.create.mutate({ session_id: 'done', participants: ['bob'] });
    await alice.trpc.sessions.close.mutate({ session_id: 'done' });

    const viaSend = await rejection(
      alice.trpc.messages.send.mutate({ type: 'task', to_agent: 'bob', payload: { content: 'late', context: { session_id: 'done' } } }),
    );
    expect(viaSend.data?.code).toBe('CONFLICT');
    expect(viaSend.message).toBe('session done is completed; messages can no longer be added');
    expect((await t.hub.memory.messages.inboxInfo('bob')).length).toBe(0);

    const viaAdd = await rejection(alice.trpc.sessions.addMessage.mutate({ session_id: 'done', message_id: 'm-late' }));
    expect(viaAdd.data?.code).toBe('CONFLICT');
    expect((await alice.trpc.sessions.get.query({ session_id: 'done' })).messages).toEqual([]);
  });

  it('refuses non-participants with FORBIDDEN and lets an admin in', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    const mallory = t.client(await t.addAgent('mallory'));
    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] }));
    await alice.trpc.sessions.create.mutate({ session_id: 'private', metadata: { goal: 'secret plans' } });

    const expected = 'mallory is not a participant of session private';
    const calls = [
      mallory.trpc.sessions.get.query({ session_id: 'private' }),
      mallory.trpc.sessions.update.mutate({ session_id: 'private', participants: ['mallory'] }),
      mallory.trpc.sessions.addMessage.mutate({ session_id: 'private', message_id: 'm1' }),
      mallory.trpc.sessions.close.mutate({ session_id: 'private' }),
    ];
    for (const call of calls) {
      const err = await rejection(call);
      expect(err.data?.code).toBe('FORBIDDEN');
      expect(err.message).toBe(expected);
    }
    expect(await mallory.trpc.sessions.list.query()).toEqual([]);
    const missing = await rejection(mallory.trpc.sessions.get.query({ session_id: 'nope' }));
    expect(missing.data?.code).toBe('NOT_FOUND');

    const seen = await admin.trpc.sessions.get.query({ session_id: 'private' });
    expect(seen.participants).toEqual(['alice']);
    expect(seen.status).toBe('active');
    expect((await admin.trpc.sessions.list.query()).map((s) => s.session_id)).toEqual(['private']);
  });
});

describe.each<StoreKind>(['redis', 'sqlite', 'embedded'])('presence and the registry on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('shows an agent online while its runtime is connected and offline with last_seen after it closes', async () => {
    t = await startTestHub(kind);
    await t.addAgent('gemini', { type: 'researcher' });
    const watcher = t.client(await t.addAgent('ops', { scopes: ['monitor'] }));
    const before = (await watcher.trpc.agents.list.query()).find((a) => a.agent_id === 'gemini');
    expect(before).toMatchObject({ agent_type: 'researcher', online: false, connected_since: null, last_seen: null });

    const started = Date.now();
    const gemini = await t.agent('gemini');
    // The subscription reports "started" just before the hub records presence: wait for it.
    await vi.waitFor(async () => expect((await watcher.trpc.agents.list.query()).find((a) => a.agent_id === 'gemini')?.online).toBe(true));
    const online = (await watcher.trpc.agents.list.query()).find((a) => a.agent_id === 'gemini')!;
    expect(Date.parse(online.connected_since!)).toBeGreaterThanOrEqual(started - 1000);
    expect((await watcher.trpc.agents.get.query({ agent_id: 'gemini' })).online).toBe(true);

    await gemini.close();
    await vi.waitFor(async () => expect((await watcher.trpc.agents.get.query({ agent_id: 'gemini' })).online).toBe(false));
    const offline = (await watcher.trpc.agents.list.query()).find((a) => a.agent_id === 'gemini')!;
    expect(offline.connected_since).toBeNull();
    expect(Date.parse(offline.last_seen!)).toBeGreaterThanOrEqual(Date.parse(online.connected_since!));
  });

  it('lets an admin add an agent whose token works, and remove it so the token stops working', async () => {
    t = await startTestHub(kind);
    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] }));
    const added = await admin.trpc.agents.add.mutate({ agent_id: 'codex', agent_type: 'coder', metadata: { model: 'o4' } });
    expect(added.scopes).toEqual(['agent']);
    expect(added.agent).toMatchObject({ agent_id: 'codex', agent_type: 'coder', metadata: { model: 'o4' } });

    const codex = t.client(added.token);
    expect(await codex.trpc.agents.whoami.query()).toEqual({ agent_id: 'codex', scopes: ['agent'] });
    const sent = await admin.trpc.messages.send.mutate({ type: 'broadcast', payload: { content: 'hello all' } });
    expect(sent.delivered_to).toContain('codex'); // joined the default channel

    const agentOnly = await rejection(codex.trpc.agents.add.mutate({ agent_id: 'evil' }));
    expect(agentOnly.data?.code).toBe('FORBIDDEN');

    expect(await admin.trpc.agents.remove.mutate({ agent_id: 'codex' })).toEqual({ agent_id: 'codex', tokens_revoked: 1 });
    expect((await admin.trpc.agents.list.query()).map((a) => a.agent_id)).toEqual(['root']);
    const rec = recordingWebSocket();
    const revoked = t.client(added.token, { WebSocket: rec.WebSocket });
    const err = await rejection(revoked.trpc.agents.whoami.query());
    expect(err.data?.code).toBe('UNAUTHORIZED');
    expect(err.message).toContain('invalid token');
    const again = await rejection(admin.trpc.agents.remove.mutate({ agent_id: 'codex' }));
    expect(again.data?.code).toBe('NOT_FOUND');
  });
});

describe('presence across two hubs sharing one Redis', () => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('is cluster-wide: an agent connected to one hub is online as seen from another', async () => {
    // Two nodes of one cluster: same Redis, same prefix, same at-rest key ring.
    const sealer = keyRingSealer(KeyRing.generate());
    t = await startTestHub('redis', { sealer });
    await t.addAgent('gemini');
    const ops = await t.addAgent('ops', { scopes: ['monitor'] });
    const other = await createHub({
      store: new RedisStore({ url: redisUrl(), prefix: t.prefix }),
      sealer,
      port: 0,
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    });
    const viaOther = createLinkerClient({ url: other.url, token: ops, WebSocket });
    try {
      const gemini = await t.agent('gemini');
      await vi.waitFor(async () => expect((await viaOther.trpc.agents.get.query({ agent_id: 'gemini' })).online).toBe(true));
      await gemini.close();
      await vi.waitFor(async () => expect((await viaOther.trpc.agents.get.query({ agent_id: 'gemini' })).online).toBe(false));
    } finally {
      await viaOther.close();
      await other.close();
    }
  });
});
