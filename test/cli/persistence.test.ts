/**
 * The embedded store survives a restart: `serve` saves a sealed snapshot at shutdown (SIGTERM
 * exits 0) and restores it at the next start with the same data directory.
 */
import { readdirSync, readFileSync } from 'node:fs';
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
    // A key rotation before the restart: the snapshot saved at shutdown is sealed with the new key,
    // and the key file keeps both.
    const rotated = /^active at-rest key is now (\S+) \(2 keys in the ring\)\n$/.exec(await m.ok(['keys', 'rotate']));
    expect(rotated).not.toBeNull();

    const stopped = await first.proc.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain('"event":"shutdown"');
    // What reached the disk is sealed: the snapshot file holds neither the context nor the message.
    const snapshots = readdirSync(join(m.home, 'data', 'snapshots'));
    expect(snapshots.length).toBeGreaterThan(0);
    for (const name of snapshots) {
      const text = readFileSync(join(m.home, 'data', 'snapshots', name), 'utf8');
      expect(text.length).toBeGreaterThan(100);
      for (const clear of ['RAG survey', 'pendant ton absence', 'gemini']) expect(text).not.toContain(clear);
    }

    const second = await m.serve('embedded');
    expect(second.banner).toEqual([
      `Skynet Linker hub on ws://localhost:${second.port}/ws — embedded store (no Redis; state saved in ${join(m.home, 'data')})`,
      `sealing at rest: on (keys in ${join(m.home, '.skynet_linker.keys')}; embedded store: snapshot files sealed)`,
      `admin credential: ${join(m.home, 'admin.json')}`,
    ]);
    expect(second.proc.stderr).toContain('"event":"snapshot_restored"');
    const shown = JSON.parse(await m.ok(['keys', 'show', '--format', 'json'])) as { at_rest: { active_key_id: string; key_ids: string[] } };
    expect(shown.at_rest.active_key_id).toBe(rotated![1]);
    expect(shown.at_rest.key_ids).toHaveLength(2);

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

  it('sealing: { in_memory: true } (each value sealed in memory, see test/memory/in-process-sealing.test.ts): the banner says plain "on", the state survives a restart', async () => {
    const sealed = new Machine();
    try {
      const config = join(sealed.cwd, sealed.file('config.yaml', 'sealing: { enabled: true, in_memory: true }\n'));
      const first = await sealed.serve('embedded', ['--config', config]);
      expect(first.banner[1]).toBe(`sealing at rest: on (keys in ${join(sealed.home, '.skynet_linker.keys')})`);
      sealed.file('context.json', { note: 'kept sealed' });
      await sealed.ok(['context', 'push', '--agent-id', 'claude_cli', '--context-file', 'context.json']);
      expect((await first.proc.stop('SIGTERM')).code).toBe(0);
      const second = await sealed.serve('embedded', ['--config', config]);
      expect(second.proc.stderr).toContain('"event":"snapshot_restored"');
      expect(JSON.parse(await sealed.ok(['context', 'pull', '--agent-id', 'claude_cli']))).toMatchObject({ version: 1, data: { note: 'kept sealed' } });
      expect((await second.proc.stop('SIGTERM')).code).toBe(0);
    } finally {
      await sealed.dispose();
    }
  }, 60_000);
});
