/**
 * Authentication and authorization through the real hub: tokens on WebSocket (connectionParams)
 * and HTTP (Authorization: Bearer), scopes, the stamped sender, the insecure dev mode, and tokens
 * stored hashed. A failed authentication must answer each call with a typed error and must not
 * make the client reconnect over and over (trpc #4774).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import { hashToken } from '../../memory/tokens.js';
import { dumpPrefix } from '../setup/stores.js';
import { capturedLogger, deferred, recordingWebSocket, rejection, startTestHub, type StoreKind, type TestHub } from './harness.js';

const MISSING_TOKEN = 'authentication required: pass a token (connectionParams { token } on WebSocket, Authorization: Bearer <token> on HTTP)';
const UNKNOWN_TOKEN = 'invalid token: this hub does not know it (revoked, mistyped, or issued by another hub)';

describe.each<StoreKind>(['redis', 'embedded'])('authentication on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('answers a call without a token with UNAUTHORIZED and keeps the one connection (no reconnect loop)', async () => {
    t = await startTestHub(kind);
    const rec = recordingWebSocket();
    let closes = 0;
    const c = t.client(undefined, { WebSocket: rec.WebSocket, onClose: () => closes++ });

    const err = await rejection(c.trpc.agents.whoami.query());
    expect(err.data?.code).toBe('UNAUTHORIZED');
    expect(err.data?.httpStatus).toBe(401);
    expect(err.message).toBe(MISSING_TOKEN);
    // A second call goes over the same socket and fails the same way: the hub did not drop it.
    const again = await rejection(c.trpc.messages.send.mutate({ type: 'task', to_agent: 'x', payload: { content: 'hi' } }));
    expect(again.data?.code).toBe('UNAUTHORIZED');

    expect(rec.record).toEqual({ constructed: 1, opened: 1 });
    expect(closes).toBe(0);
  });

  it('answers a call with an unknown token with UNAUTHORIZED naming the problem, without reconnecting', async () => {
    t = await startTestHub(kind);
    await t.addAgent('alice');
    const rec = recordingWebSocket();
    let opens = 0;
    const c = t.client('skl_not-a-token-this-hub-issued', { WebSocket: rec.WebSocket, onOpen: () => opens++ });

    const err = await rejection(c.trpc.agents.whoami.query());
    expect(err.data?.code).toBe('UNAUTHORIZED');
    expect(err.message).toBe(UNKNOWN_TOKEN);
    const again = await rejection(c.trpc.context.pull.query({ scope: 'global' }));
    expect(again.message).toBe(UNKNOWN_TOKEN);

    expect(rec.record).toEqual({ constructed: 1, opened: 1 });
    expect(opens).toBe(1);
  });

  it('resolves a valid token to its agent and scopes', async () => {
    t = await startTestHub(kind);
    const token = await t.addAgent('alice', { scopes: ['agent', 'monitor'] });
    const c = t.client(token);
    expect(await c.trpc.agents.whoami.query()).toEqual({ agent_id: 'alice', scopes: ['agent', 'monitor'] });
  });

  it('refuses admin.snapshotCreate to an agent token with FORBIDDEN naming the missing scope', async () => {
    t = await startTestHub(kind);
    const c = t.client(await t.addAgent('alice'));
    const err = await rejection(c.trpc.admin.snapshotCreate.mutate());
    expect(err.data?.code).toBe('FORBIDDEN');
    expect(err.data?.httpStatus).toBe(403);
    expect(err.message).toBe('this call needs the admin scope; token of alice has agent');
    expect(await t.hub.memory.snapshots.list()).toEqual([]);

    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] }));
    const snap = await admin.trpc.admin.snapshotCreate.mutate();
    expect((await t.hub.memory.snapshots.list()).map((s) => s.name)).toEqual([snap.name]);
  });

  it('refuses monitor.stream to an agent token with FORBIDDEN, and streams to a monitor token', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    await t.addAgent('bob');
    const failed = deferred<unknown>();
    const sub = alice.trpc.monitor.stream.subscribe(undefined, {
      onData: () => failed.reject(new Error('agent token got monitor data')),
      onError: failed.resolve,
    });
    const err = (await failed.promise) as TRPCClientError<any>;
    sub.unsubscribe();
    expect(err).toBeInstanceOf(TRPCClientError);
    expect(err.data?.code).toBe('FORBIDDEN');
    expect(err.message).toBe('this call needs the monitor or admin scope; token of alice has agent');

    const watcher = t.client(await t.addAgent('ops', { scopes: ['monitor'] }));
    const seen = deferred<{ message: { from_agent: string; payload: { content: unknown } }; delivered_to: string[] }>();
    const started = deferred<void>();
    const msub = watcher.trpc.monitor.stream.subscribe(undefined, { onStarted: () => started.resolve(), onData: seen.resolve, onError: seen.reject });
    await started.promise;
    await alice.trpc.messages.send.mutate({ type: 'task', to_agent: 'bob', payload: { content: 'watched' } });
    const event = await seen.promise;
    msub.unsubscribe();
    expect(event.message.from_agent).toBe('alice');
    expect(event.message.payload.content).toBe('watched');
    expect(event.delivered_to).toEqual(['bob']);
    // A monitor-only token may watch but not send.
    const send = await rejection(watcher.trpc.messages.send.mutate({ type: 'task', to_agent: 'bob', payload: { content: 'x' } }));
    expect(send.data?.code).toBe('FORBIDDEN');
    expect(send.message).toBe('this call needs the agent or admin scope; token of ops has monitor');
  });

  it('refuses a message whose from_agent is another agent (FORBIDDEN) and stamps the authenticated sender', async () => {
    t = await startTestHub(kind);
    const alice = t.client(await t.addAgent('alice'));
    await t.addAgent('bob');
    const err = await rejection(alice.trpc.messages.send.mutate({ type: 'task', from_agent: 'bob', to_agent: 'bob', payload: { content: 'spoofed' } }));
    expect(err.data?.code).toBe('FORBIDDEN');
    expect(err.message).toBe('from_agent is bob but this connection is authenticated as alice');
    expect((await t.hub.memory.messages.inboxInfo('bob')).length).toBe(0);

    const ok = await alice.trpc.messages.send.mutate({ type: 'task', from_agent: 'alice', to_agent: 'bob', payload: { content: 'honest' } });
    const [stored] = await t.hub.memory.messages.readInbox('bob', undefined, 10);
    expect(stored?.envelope.id).toBe(ok.id);
    expect(stored?.envelope.from_agent).toBe('alice');
  });

  it('accepts Authorization: Bearer on HTTP and answers 401 with a typed error without or with a bad one', async () => {
    t = await startTestHub(kind);
    const token = await t.addAgent('alice');
    const url = `${t.hub.httpUrl}/trpc/agents.whoami`;

    const ok = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ result: { data: { json: { agent_id: 'alice', scopes: ['agent'] } } } });
    const lower = await fetch(url, { headers: { authorization: `bearer ${token}` } });
    expect(lower.status).toBe(200);

    const none = await fetch(url);
    expect(none.status).toBe(401);
    const noneBody = (await none.json()) as { error: { json: { message: string; data: Record<string, unknown> } } };
    expect(noneBody.error.json.message).toBe(MISSING_TOKEN);
    expect(noneBody.error.json.data.code).toBe('UNAUTHORIZED');

    const wrong = await fetch(url, { headers: { authorization: 'Bearer skl_wrong' } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { json: { message: string } } }).error.json.message).toBe(UNKNOWN_TOKEN);

    const basic = await fetch(url, { headers: { authorization: `Basic ${btoa('alice:' + token)}` } });
    expect(basic.status).toBe(401);
  });

  it('cuts off an open connection whose agent an admin removed, on its next call', async () => {
    t = await startTestHub(kind, { tokenRecheckMs: 0 });
    const admin = t.client(await t.addAgent('root', { scopes: ['admin'] }));
    await t.addAgent('bob');
    const { token } = await admin.trpc.agents.add.mutate({ agent_id: 'codex' });
    const rec = recordingWebSocket();
    const codex = t.client(token, { WebSocket: rec.WebSocket });
    expect((await codex.trpc.messages.send.mutate({ type: 'task', to_agent: 'bob', payload: { content: 'before' } })).delivered_to).toEqual(['bob']);

    await admin.trpc.agents.remove.mutate({ agent_id: 'codex' });
    const err = await rejection(codex.trpc.messages.send.mutate({ type: 'task', to_agent: 'bob', payload: { content: 'after' } }));
    expect(err.data?.code).toBe('UNAUTHORIZED');
    expect(err.message).toBe('the token of codex was revoked; get a new one from an admin');
    const again = await rejection(codex.trpc.agents.whoami.query());
    expect(again.message).toBe('the token of codex was revoked; get a new one from an admin');
    expect((await t.hub.memory.messages.inboxInfo('bob')).length).toBe(1);
    expect(rec.record).toEqual({ constructed: 1, opened: 1 });
  });

  it('stores tokens hashed: the clear token is nowhere in the store, its SHA-256 is', async () => {
    t = await startTestHub(kind);
    const agentToken = await t.addAgent('alice');
    const adminToken = await t.addAgent('root', { scopes: ['admin'] });
    const admin = t.client(adminToken);
    const added = await admin.trpc.agents.add.mutate({ agent_id: 'bob', scopes: ['agent'] });
    expect(added.token).toMatch(/^skl_[A-Za-z0-9_-]{43}$/);

    const dump = JSON.stringify(await t.hub.memory.store.exportState());
    for (const token of [agentToken, adminToken, added.token]) {
      expect(dump).not.toContain(token);
      expect(dump).not.toContain(token.slice(4)); // not even without the prefix
      expect(dump).toContain(hashToken(token));
    }
    const listed = await admin.trpc.agents.tokens.query();
    expect(listed.map((r) => r.agent_id).sort()).toEqual(['alice', 'bob', 'root']);
    expect(listed.find((r) => r.agent_id === 'bob')?.hint).toBe(added.token.slice(0, 8));

    if (kind === 'redis') {
      const raw = (await dumpPrefix(t.prefix)).flatMap((k) => [k.key, ...k.texts]).join('\n');
      expect(raw).toContain(hashToken(added.token));
      for (const token of [agentToken, adminToken, added.token]) expect(raw).not.toContain(token.slice(4));
    }
  });
});

describe.each<StoreKind>(['redis', 'embedded'])('insecure no-auth mode on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('says loudly at start that auth is off', async () => {
    const { logger, lines } = capturedLogger();
    t = await startTestHub(kind, { insecureNoAuth: true, logger });
    const warning = lines.find((l) => l.event === 'insecure_no_auth');
    expect(warning?.level).toBe(40); // pino "warn"
    expect(warning?.msg).toContain('AUTH IS OFF (--insecure-no-auth)');
    expect(warning?.msg).toContain('anyone who can reach this port can act as any agent');
    const health = await t.client(undefined, { agentId: 'probe' }).trpc.health.query();
    expect(health.auth).toBe(false);
  });

  it('takes the identity from connectionParams.agent_id and registers the agent', async () => {
    t = await startTestHub(kind, { insecureNoAuth: true });
    const carol = t.client(undefined, { agentId: 'carol', agentType: 'planner' });
    const dave = t.client(undefined, { agentId: 'dave' });
    expect(await carol.trpc.agents.whoami.query()).toEqual({ agent_id: 'carol', scopes: ['agent', 'monitor', 'admin'] });
    await dave.trpc.agents.whoami.query();
    const sent = await carol.trpc.messages.send.mutate({ type: 'task', to_agent: 'dave', payload: { content: 'no tokens here' } });
    expect(sent.delivered_to).toEqual(['dave']);
    const [stored] = await t.hub.memory.messages.readInbox('dave', undefined, 10);
    expect(stored?.envelope.from_agent).toBe('carol');
    expect((await t.hub.memory.agents.get('carol'))?.agent_type).toBe('planner');
  });

  it('answers UNAUTHORIZED when the caller does not say who it is', async () => {
    t = await startTestHub(kind, { insecureNoAuth: true });
    const rec = recordingWebSocket();
    const anon = t.client(undefined, { WebSocket: rec.WebSocket });
    const err = await rejection(anon.trpc.agents.whoami.query());
    expect(err.data?.code).toBe('UNAUTHORIZED');
    expect(err.message).toBe('insecure mode: say who you are with connectionParams { agent_id } (or the X-Agent-Id header)');
    const bad = await rejection(t.client(undefined, { agentId: 'not an id!' }).trpc.agents.whoami.query());
    expect(bad.data?.code).toBe('UNAUTHORIZED');
    expect(rec.record).toEqual({ constructed: 1, opened: 1 });
  });
});
