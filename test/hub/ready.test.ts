/** The inbox subscription is set up before it reports started: online and listening at `ready`. */
import { afterEach, describe, expect, it } from 'vitest';
import { deferred, startTestHub, type StoreKind, type TestHub } from './harness.js';
import type { IncomingMessage } from '../../clients/agent.js';

describe.each<StoreKind>(['redis', 'embedded'])('inbox start on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('shows the agent online and delivers live as soon as the runtime is ready', async () => {
    t = await startTestHub(kind);
    await t.addAgent('sender');
    const got = deferred<IncomingMessage>();
    const receiver = await t.agent('receiver', { onMessage: (m) => got.resolve(m) });
    const sender = await t.agent('sender');
    const status = await sender.trpc.agents.get.query({ agent_id: 'receiver' });
    expect(status.online).toBe(true);
    expect(status.connected_since).not.toBeNull();
    await sender.send({ to_agent: 'receiver', type: 'task', payload: { content: 'right after ready' } });
    const m = await got.promise;
    expect(m.content).toBe('right after ready');
    expect(m.replayed).toBe(false);
    expect(receiver.state).toBe('live');
  });
});
