/**
 * End to end through the hub with the agent runtime: NaCl box (and channel secretbox) sealing, so
 * only the recipient reads the content while the monitor and history see ciphertext; Ed25519
 * signatures verified on receipt, with `requireSignatures` dropping unsigned or forged messages.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { IncomingMessage } from '../../clients/agent.js';
import type { MonitorEvent } from '../../procedures/monitor.js';
import { secretboxKey } from '../../crypto/nacl.js';
import { toBase64 } from '../../crypto/bytes.js';
import { keys } from '../../memory/keys.js';
import { deferred, startTestHub, type StoreKind, type TestHub } from './harness.js';

const SEALED_BOX = { alg: 'nacl-box', ciphertext: expect.stringMatching(/^[A-Za-z0-9+/]+=*$/) };

describe.each<StoreKind>(['redis', 'embedded'])('end-to-end sealing and signatures on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  async function recordingAgent(id: string, extra: Parameters<TestHub['agent']>[1] = {}) {
    const got: IncomingMessage[] = [];
    const errors: Error[] = [];
    const agent = await t.agent(id, { ackIntervalMs: 20, ...extra, onMessage: (m) => void got.push(m), onError: (e) => void errors.push(e) });
    return { agent, got, errors, contents: () => got.map((m) => m.content) };
  }

  it('seal: box — the recipient handler gets the clear content; the monitor stream and stored history only see { alg, ciphertext }', async () => {
    t = await startTestHub(kind);
    const opsToken = await t.addAgent('ops', { scopes: ['monitor'] });
    const monitored: MonitorEvent[] = [];
    const monitorStarted = deferred<void>();
    t.client(opsToken).trpc.monitor.stream.subscribe(undefined, {
      onStarted: () => monitorStarted.resolve(),
      onData: (e) => void monitored.push(e as MonitorEvent),
      onError: (e) => monitorStarted.reject(e),
    });
    await monitorStarted.promise;

    const alice = await recordingAgent('alice', { e2e: { box: true } });
    const bob = await recordingAgent('bob', { e2e: { box: true } });
    const secret = { plan: 'launch code 0000', steps: [1, 2, 3] };
    const sent = await alice.agent.send({ to_agent: 'bob', type: 'task', payload: { content: secret } }, { seal: 'box' });

    await vi.waitFor(() => expect(bob.contents()).toEqual([secret]));
    expect(bob.got[0]!.envelope.encrypted).toBe(true);
    expect(bob.got[0]!.envelope.payload.content).toEqual(SEALED_BOX);
    expect(bob.errors).toEqual([]);

    await vi.waitFor(() => expect(monitored.map((e) => e.message.id)).toContain(sent.id));
    const seen = monitored.find((e) => e.message.id === sent.id)!;
    expect(seen.message.encrypted).toBe(true);
    expect(seen.message.payload.content).toEqual(SEALED_BOX);
    expect(seen.delivered_to).toEqual(['bob']);
    expect(JSON.stringify(seen)).not.toContain('launch code');

    const history = await bob.agent.trpc.messages.history.query({});
    expect(history.items.map((i) => i.message.payload.content)).toEqual([SEALED_BOX]);
    expect(JSON.stringify(history)).not.toContain('launch code');
    // Stored, the content is the recipient's ciphertext. On Redis the hub also seals the envelope
    // (neither the content nor its ciphertext readable); the embedded store keeps it as it is in
    // the hub's own memory (memory/sealing.ts, inProcessValues).
    const [raw] = await t.hub.memory.store.readStream(keys.history('bob'), { count: 10 });
    expect(raw!.fields.mid).toBe(sent.id);
    expect(JSON.stringify(raw)).not.toContain('launch code');
    if (kind === 'redis') expect(JSON.stringify(raw)).not.toContain('nacl-box');
    else expect(JSON.parse(raw!.fields.m!)).toMatchObject({ id: sent.id, encrypted: true, payload: { content: SEALED_BOX } });
  });

  it('seal: box fails clearly when the recipient has no registered box key', async () => {
    t = await startTestHub(kind);
    const alice = await t.agent('alice', { e2e: { box: true } });
    await t.addAgent('bob');
    await expect(alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'x' } }, { seal: 'box' })).rejects.toThrow('bob has no registered box key');
    expect((await t.hub.memory.messages.inboxInfo('bob')).length).toBe(0);
  });

  it('seal: secretbox on a channel — members holding the channel key read it; a member without the key reports an error', async () => {
    t = await startTestHub(kind);
    const key = secretboxKey();
    const alice = await t.agent('alice', { channels: ['team'], e2e: { channelKeys: { team: key } } });
    const bob = await recordingAgent('bob', { channels: ['team'], e2e: { channelKeys: { team: key } } });
    const eve = await recordingAgent('eve', { channels: ['team'] });
    const sent = await alice.send({ channel: 'team', type: 'context_update', payload: { content: 'team secret' } }, { seal: 'secretbox' });
    expect(sent.delivered_to).toEqual(['bob', 'eve']);
    await vi.waitFor(() => expect(bob.contents()).toEqual(['team secret']));
    expect(bob.got[0]!.envelope.payload.content).toEqual({ alg: 'nacl-secretbox', ciphertext: expect.any(String) });
    await vi.waitFor(() => expect(eve.errors.map((e) => e.message)).toEqual([`cannot open message ${sent.id}: no key for channel team`]));
    expect(eve.got).toEqual([]);
  });

  it('signatures: a receiver requiring them accepts signed messages and drops unsigned or forged ones through onError', async () => {
    t = await startTestHub(kind);
    const aliceToken = await t.addAgent('alice');
    const alice = await t.agent('alice', { e2e: { sign: true } });
    const carol = await t.agent('carol'); // no signing key
    const bob = await recordingAgent('bob', { e2e: { requireSignatures: true } });

    const signed = await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'signed by alice' } });
    const unsigned = await carol.send({ to_agent: 'bob', type: 'task', payload: { content: 'from carol, unsigned' } });
    // Alice's identity, but a signature her key did not make.
    const forged = await t.client(aliceToken).trpc.messages.send.mutate({
      to_agent: 'bob',
      type: 'task',
      payload: { content: 'forged' },
      signature: toBase64(new Uint8Array(64).fill(7)),
    });
    const last = await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'signed again' } });

    await vi.waitFor(() => expect(bob.contents()).toEqual(['signed by alice', 'signed again']));
    expect(bob.got.map((m) => m.envelope.id)).toEqual([signed.id, last.id]);
    expect(bob.got[0]!.envelope.signature).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(bob.errors.map((e) => e.message)).toEqual([
      `message ${unsigned.id} from carol is not signed`,
      `message ${forged.id} from alice has an invalid signature`,
    ]);
  });

  it('signatures: without requireSignatures an unsigned message is delivered, but a bad signature is still refused', async () => {
    t = await startTestHub(kind);
    const aliceToken = await t.addAgent('alice');
    await t.agent('alice', { e2e: { sign: true } });
    const carol = await t.agent('carol');
    const bob = await recordingAgent('bob');
    await carol.send({ to_agent: 'bob', type: 'task', payload: { content: 'unsigned is fine here' } });
    const forged = await t.client(aliceToken).trpc.messages.send.mutate({
      to_agent: 'bob',
      type: 'task',
      payload: { content: 'forged' },
      signature: toBase64(new Uint8Array(64).fill(1)),
    });
    await carol.send({ to_agent: 'bob', type: 'task', payload: { content: 'marker' } });
    await vi.waitFor(() => expect(bob.contents()).toEqual(['unsigned is fine here', 'marker']));
    expect(bob.errors.map((e) => e.message)).toEqual([`message ${forged.id} from alice has an invalid signature`]);
  });

  it('seal: box and a signature together: the request is sealed and signed, and the reply comes back sealed too', async () => {
    t = await startTestHub(kind);
    const task = deferred<IncomingMessage>();
    await t.agent('gemini', {
      e2e: { box: true, sign: true, requireSignatures: true },
      onTask: (m) => {
        task.resolve(m);
        return { answer: `re: ${String(m.content)}`, verified: m.envelope.signature !== null };
      },
    });
    const claude = await t.agent('claude', { e2e: { box: true, sign: true } });
    const reply = await claude.request('gemini', 'sealed question', { seal: 'box', timeoutMs: 10_000 });
    expect((await task.promise).envelope.payload.content).toEqual(SEALED_BOX);
    expect(reply.content).toEqual({ answer: 're: sealed question', verified: true });
    expect(reply.envelope.signature).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    // The answer to a sealed question is not left readable on the hub.
    expect(reply.envelope.encrypted).toBe(true);
    expect(reply.envelope.payload.content).toEqual(SEALED_BOX);
    const stored = await t.hub.memory.messages.history('claude', undefined, 10);
    expect(JSON.stringify(stored.map((m) => m.envelope))).not.toContain('re: sealed question');
  });
});
