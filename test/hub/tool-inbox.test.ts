/**
 * The tool inbox (clients/bus-tools/inbox.ts) against a real hub: bounded while the model does
 * not take its messages, nothing lost or repeated across the pause, the cursor moved only past
 * what was handed, and a reply handed ahead of older messages without skipping them.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ToolInbox } from '../../clients/bus-tools/inbox.js';
import { startTestHub, type TestHub } from './harness.js';

describe('the tool inbox', () => {
  let t: TestHub;
  const inboxes: ToolInbox[] = [];
  afterEach(async () => {
    await Promise.all(inboxes.splice(0).map((i) => i.close()));
    await t?.close();
  });

  async function inboxOf(agentId: string, maxBuffered?: number) {
    const token = await t.addAgent(agentId);
    const inbox = new ToolInbox(t.client(token).trpc, { maxBuffered });
    inboxes.push(inbox);
    await inbox.started;
    return inbox;
  }

  it('holds at most maxBuffered messages, pauses, and resumes after a commit without loss or repeats', async () => {
    t = await startTestHub('embedded');
    const sender = await t.agent('sender');
    const inbox = await inboxOf('reader', 4);
    for (let i = 0; i < 12; i++) await sender.send({ to_agent: 'reader', type: 'task', payload: { content: `m${i}` } });
    const seen: string[] = [];
    while (seen.length < 12) {
      const batch = await inbox.take(3, 5_000);
      expect(batch.length).toBeGreaterThan(0);
      seen.push(...batch.map((e) => String(e.payload.content)));
      await inbox.commit();
    }
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`));
    expect(await inbox.take(10, 200)).toEqual([]);
    // The cursor is past all twelve: a new inbox for the agent starts empty.
    await inbox.close();
    const again = new ToolInbox(t.client(await t.addAgent('reader')).trpc);
    inboxes.push(again);
    await again.started;
    expect(await again.take(10, 300)).toEqual([]);
  });

  it('hands a waited-for reply ahead of older messages, and keeps the cursor before the ones not taken', async () => {
    t = await startTestHub('embedded');
    const peer = await t.agent('peer');
    const inbox = await inboxOf('asker');
    await peer.send({ to_agent: 'asker', type: 'task', payload: { content: 'older task' } });
    await vi.waitFor(async () => expect((await t.hub.memory.messages.inboxInfo('asker')).length).toBe(1));
    // A real question from asker to peer: the hub takes only replies to messages delivered to the replier.
    const asker = t.client(await t.addAgent('asker')).trpc;
    const question = (await asker.messages.send.mutate({ to_agent: 'peer', type: 'task', payload: { content: 'the question' } })).id;
    const waiting = inbox.expectReply(question, 5_000);
    await peer.send({ to_agent: 'asker', type: 'reply', payload: { content: 'the answer', context: { parent_message_id: question } } });
    expect((await waiting.reply)?.payload.content).toBe('the answer');
    await inbox.commit();
    // The older task was never taken: a restarted inbox still has it, and not the reply.
    await inbox.close();
    const restarted = new ToolInbox(t.client(await t.addAgent('asker')).trpc);
    inboxes.push(restarted);
    await restarted.started;
    const batch = await restarted.take(10, 5_000);
    expect(batch.map((e) => e.payload.content)).toEqual(['older task', 'the answer']);
  });
});
