/**
 * The client entry names the types a panel handles (issue 15), so nobody unwraps
 * `inferRouterOutputs<AppRouter>` by hand. Checked by the type checker (`npm test` typechecks
 * test/) and at run time against what a real hub answers.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type {
  AgentStatus,
  ContextDocument,
  Envelope,
  HistoryPage,
  InboxEvent,
  MonitorEvent,
  RouterOutputs,
  SendReceipt,
  Session,
  WhoAmI,
} from '../../index.js';
import { createLinkerClient } from '../../index.js';
import { startTestHub, type TestHub } from '../hub/harness.js';

describe('public types of the client entry', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub('embedded');
  });
  afterAll(async () => t?.close());

  it('match what the procedures return and the subscriptions yield', async () => {
    expectTypeOf<MonitorEvent['message']>().toEqualTypeOf<Envelope>();
    expectTypeOf<MonitorEvent['delivered_to']>().toEqualTypeOf<string[]>();
    expectTypeOf<InboxEvent['message']>().toEqualTypeOf<Envelope>();
    expectTypeOf<InboxEvent['stream_id']>().toEqualTypeOf<string>();
    expectTypeOf<SendReceipt['id']>().toEqualTypeOf<string>();
    expectTypeOf<RouterOutputs['agents']['list']>().toEqualTypeOf<AgentStatus[]>();
    expectTypeOf<RouterOutputs['context']['pull']>().toEqualTypeOf<ContextDocument>();
    expectTypeOf<HistoryPage['items'][number]['message']>().toEqualTypeOf<Envelope>();

    const adminToken = await t.addAgent('panel', { scopes: ['admin', 'monitor', 'agent'] });
    await t.addAgent('gemini');
    const { trpc, close } = createLinkerClient({ url: t.hub.url, token: adminToken, WebSocket });
    try {
      const events: MonitorEvent[] = [];
      let started!: () => void;
      const live = new Promise<void>((r) => (started = r));
      const sub = trpc.monitor.stream.subscribe({}, { onStarted: () => started(), onData: (e) => events.push(e) });
      await live;
      const me: WhoAmI = await trpc.agents.whoami.query();
      expect(me.agent_id).toBe('panel');
      const receipt: SendReceipt = await trpc.messages.send.mutate({ to_agent: 'gemini', type: 'task', payload: { content: 'typed' } });
      await expect.poll(() => events.length).toBeGreaterThan(0);
      expect(events[0]!.message.id).toBe(receipt.id);
      const agents: AgentStatus[] = await trpc.agents.list.query();
      expect(agents.map((a) => a.agent_id)).toEqual(expect.arrayContaining(['panel', 'gemini']));
      const session: Session = await trpc.sessions.create.mutate({ session_id: 'typed_sess', participants: ['panel', 'gemini'] });
      expect(session.participants).toEqual(['panel', 'gemini']);
      sub.unsubscribe();
    } finally {
      await close();
    }
  });
});
