/** The seed's "Flux de données typique", end to end through the real hub and typed client. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTestHub, type StoreKind, type TestHub } from './harness.js';

describe.each<StoreKind>(['redis', 'embedded'])('seed scenario on %s', (kind) => {
  let t: TestHub;
  afterEach(async () => t?.close());

  it('claude_cli asks gemini for research in sess_123; gemini replies; session and context record it', async () => {
    t = await startTestHub(kind);
    await t.addAgent('claude_cli', { type: 'planner' });
    await t.addAgent('gemini', { type: 'researcher' });
    const gemini = await t.agent('gemini', {
      onTask: async (m) => {
        await gemini.trpc.context.push.mutate({ scope: 'agent:gemini', patch: { last_search: 'RAG papers' } });
        return `Voici 10 papiers récents... (re: ${String(m.content)})`;
      },
    });
    const claude = await t.agent('claude_cli');

    const reply = await claude.request('gemini', 'Recherche les derniers papiers sur RAG', { sessionId: 'sess_123', timeoutMs: 10_000 });
    expect(reply.envelope.type).toBe('reply');
    expect(reply.envelope.from_agent).toBe('gemini');
    expect(reply.envelope.to_agent).toBe('claude_cli');
    expect(reply.content).toBe('Voici 10 papiers récents... (re: Recherche les derniers papiers sur RAG)');
    expect(reply.envelope.payload.context.session_id).toBe('sess_123');

    await claude.trpc.context.push.mutate({ scope: 'agent:claude_cli', patch: { last_task: 'RAG research' } });
    const session = await claude.trpc.sessions.get.query({ session_id: 'sess_123' });
    expect(session.participants.sort()).toEqual(['claude_cli', 'gemini']);
    expect(session.messages.map((m) => [m.from, m.to, m.type])).toEqual([
      ['claude_cli', 'gemini', 'task'],
      ['gemini', 'claude_cli', 'reply'],
    ]);
    expect((await claude.trpc.context.pull.query({ scope: 'agent:claude_cli' })).data).toEqual({ last_task: 'RAG research' });
    await vi.waitFor(async () => expect((await gemini.trpc.context.pull.query({ scope: 'agent:gemini' })).data).toEqual({ last_search: 'RAG papers' }));
  });
});
