/**
 * An inbox subscription stopped while the hub is still setting it up (the client's stop arrives
 * while the procedure awaits the store) is never iterated by tRPC: its stream and presence must be
 * ended anyway, or the agent stays "online" on that node for good. Found under fuzzing (a
 * subscription stopped right after it was sent); here made deterministic by holding the presence
 * write until the stop has arrived.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deferred, openRawSocket, startTestHub, type RawSocket, type StoreKind, type TestHub } from '../hub/harness.js';

describe.each<StoreKind>(['redis', 'embedded'])('an inbox subscription stopped during its setup on %s', (kind) => {
  let t: TestHub | undefined;
  let bob: RawSocket | undefined;
  afterEach(async () => {
    await bob?.close();
    await t?.close();
    t = bob = undefined;
  });

  it('ends its stream and its presence although it never started', async () => {
    t = await startTestHub(kind);
    const token = await t.addAgent('bob');
    const presence = t.hub.services.presence;
    const live = (presence as unknown as { live: Map<string, unknown> }).live;
    const bus = t.hub.services.bus as unknown as { inbox: { size: number } };
    const listenersBefore = bus.inbox.size;
    const held = deferred<void>();
    const entered = deferred<void>();
    const add = presence.add.bind(presence);
    presence.add = async (agentId, connectionId) => {
      entered.resolve();
      await held.promise;
      return add(agentId, connectionId);
    };

    bob = await openRawSocket(t.hub.url, { connectionParams: { token } });
    bob.send({ id: 1, method: 'subscription', params: { path: 'messages.inbox', input: { json: {} } } });
    await entered.promise; // the procedure is inside presence.add
    bob.send({ id: 1, method: 'subscription.stop' });
    // Frames are handled in order and a stop synchronously: once this answers, bob's stop is in.
    bob.send({ id: 2, method: 'query', params: { path: 'health' } });
    expect((await bob.reply(2)).result.type).toBe('data');
    held.resolve();
    expect((await bob.reply(1)).result).toEqual({ type: 'stopped' });

    await vi.waitFor(() => expect(live.size).toBe(0));
    await vi.waitFor(() => expect(bus.inbox.size).toBe(listenersBefore));
    const record = (await t.hub.memory.agents.list()).find((a) => a.agent_id === 'bob');
    expect(record?.online).toBe(false);
  });
});
