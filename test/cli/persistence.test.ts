/**
 * The embedded store survives a restart: `serve` saves a sealed snapshot at shutdown (SIGTERM
 * exits 0) and restores it at the next start with the same data directory.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, Machine } from './helpers.js';

describe('embedded store persistence across serve restarts', () => {
  let m: Machine;
  beforeAll(() => {
    assertBuilt();
    m = new Machine();
  });
  afterAll(async () => m?.dispose());

  it('agents, tokens, contexts and queued messages are back after SIGTERM and a new serve', async () => {
    const first = await m.serve('embedded');
    expect(first.banner[2]).toBe(`created an admin credential in ${join(m.home, 'admin.json')} (mode 0600); CLI commands on this machine use it automatically`);

    m.file('context.json', { project: 'RAG survey', shared_knowledge: { decisions: ['use hybrid search'] } });
    const [added, pushed] = await Promise.all([
      m.ok(['agents', 'add', 'gemini', '--type', 'researcher', '--format', 'json']),
      m.ok(['context', 'push', '--agent-id', 'claude_cli', '--context-file', 'context.json']),
    ]);
    expect(pushed).toBe('agent:claude_cli is now at version 1\n');
    const { token } = JSON.parse(added) as { token: string };
    // A message for gemini, who is not connected: it waits in gemini's inbox.
    const queuedId = (await m.ok(['send', '--agent-id', 'claude_cli', '--to', 'gemini', '--type', 'task', '--content', 'pendant ton absence'])).trim();

    const stopped = await first.proc.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain('"event":"shutdown"');

    const second = await m.serve('embedded');
    expect(second.banner).toEqual([
      `Skynet Linker hub on ws://localhost:${second.port}/ws — embedded store (no Redis; state saved in ${join(m.home, 'data')})`,
      `sealing at rest: on (keys in ${join(m.home, '.skynet_linker.keys')})`,
      `admin credential: ${join(m.home, 'admin.json')}`,
    ]);
    expect(second.proc.stderr).toContain('"event":"snapshot_restored"');

    const [agents, context] = await Promise.all([m.ok(['agents', 'list']), m.ok(['context', 'pull', '--agent-id', 'claude_cli'])]);
    expect(agents).toBe(
      [
        '- admin (operator) - offline (never seen)',
        '- claude_cli (agent) - offline (never seen)',
        '- gemini (researcher) - offline (never seen)',
        '',
      ].join('\n'),
    );
    expect(JSON.parse(context)).toMatchObject({
      scope: 'agent:claude_cli',
      version: 1,
      data: { project: 'RAG survey', shared_knowledge: { decisions: ['use hybrid search'] } },
      updated_by: 'claude_cli',
    });

    // gemini's token still works, and the queued message arrives when gemini connects.
    const gemini = m.spawn(['connect', '--agent-id', 'gemini', '--token', token, '--format', 'json']);
    const event = JSON.parse(await gemini.waitForLine(queuedId));
    expect(event).toMatchObject({ message: { id: queuedId, from_agent: 'claude_cli', to_agent: 'gemini', type: 'task', payload: { content: 'pendant ton absence' } } });
    expect((await gemini.stop('SIGINT')).code).toBe(0);

    expect((await second.proc.stop('SIGTERM')).code).toBe(0);
  }, 60_000);
});
