/** buildPrompt: the one prompt all connectors send (task, shared context, session history), bounded. */
import { describe, expect, it } from 'vitest';
import { buildPrompt, promptText, simpleTask } from '../../clients/connectors/prompt.js';

describe('buildPrompt', () => {
  const task = simpleTask(
    { action: 'review', file: 'auth.ts' },
    {
      id: 'task-1',
      from: 'claude_cli',
      agentId: 'codex',
      sessionId: 'sess_9',
      context: {
        global: { scope: 'global', version: 4, data: { project: 'skynet', rules: ['no sleeps in tests'] } },
        session: { scope: 'session:sess_9', version: 2, data: { goal: 'harden auth' } },
      },
      history: [
        { message_id: 'a', from: 'claude_cli', to: 'codex', type: 'task', timestamp: '2025-01-01T10:00:00.000Z', content: 'Read auth.ts' },
        { message_id: 'b', from: 'codex', to: 'claude_cli', type: 'reply', timestamp: '2025-01-01T10:01:00.000Z', content: { content: 'Done: 3 issues' } },
        { message_id: 'c', from: 'gemini', to: 'claude_cli', type: 'reply', timestamp: '2025-01-01T10:02:00.000Z' },
      ],
    },
  );

  it('puts the shared context, the session history and the task in order', () => {
    const p = buildPrompt(task);
    expect(p.system).toContain('You are codex');
    expect(p.system).toContain('Agent claude_cli sent you the task');
    const u = p.user;
    const order = [
      '## Shared context (scope global, version 4)',
      '"no sleeps in tests"',
      '## Session context of sess_9 (scope session:sess_9, version 2)',
      '"harden auth"',
      '## Recent messages of session sess_9',
      'Read auth.ts',
      'Done: 3 issues',
      'gemini -> claude_cli [reply] (content not available to this agent)',
      '## Task from claude_cli in session sess_9 (message task-1)',
      '"action": "review"',
    ];
    let at = -1;
    for (const piece of order) {
      const i = u.indexOf(piece);
      expect(i, piece).toBeGreaterThan(at);
      at = i;
    }
    expect(promptText(p)).toBe(`${p.system}\n\n${p.user}`);
  });

  it('leaves out empty sections and honours a custom system prompt', () => {
    const p = buildPrompt(simpleTask('plain question'), { system: 'Be brief.' });
    expect(p.system).toBe('Be brief.');
    expect(p.user).not.toContain('Shared context');
    expect(p.user).not.toContain('Recent messages');
    expect(p.user).toContain('plain question');
  });

  it('bounds big contexts, long turns and long histories', () => {
    const big = simpleTask('q', {
      context: { global: { scope: 'global', version: 1, data: { blob: 'x'.repeat(50_000) } }, session: null },
      sessionId: 's',
      history: Array.from({ length: 30 }, (_, i) => ({
        message_id: `m${i}`,
        from: 'a',
        to: 'b',
        type: 'task' as const,
        timestamp: 't',
        content: `turn-${i} ${'y'.repeat(5_000)}`,
      })),
    });
    const u = buildPrompt(big, { maxContextChars: 1_000, maxTurnChars: 100, maxTurns: 5 }).user;
    expect(u).toMatch(/\[\.\.\. cut: \d+ more characters\]/);
    expect(u).toContain('25 older not shown');
    expect(u).not.toContain('turn-24 ');
    expect(u).toContain('turn-25 ');
    expect(u.length).toBeLessThan(3_000);
  });
});
