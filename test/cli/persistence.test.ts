/**
 * The embedded store is a SQLite database in the data directory: the state survives a restart
 * (nothing to save at shutdown), what rests in the file is sealed, one hub holds a data directory
 * at a time, and a data directory of the previous build (snapshot files only) is imported once.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFilePassphrase } from '../../bin/home.js';
import { createKeyFile, DEFAULT_KEY_FILE_NAME } from '../../crypto/keyfile-node.js';
import { KeyRing } from '../../crypto/keyring.js';
import { EmbeddedStore } from '../../memory/embedded/store.js';
import { createSharedMemory } from '../../memory/index.js';
import { keyRingSealer } from '../../memory/sealing.js';
import { DATABASE_FILE } from '../../memory/sqlite/store.js';
import { send } from '../memory/helpers.js';
import { assertBuilt, Machine } from './helpers.js';

/** The database file and its WAL as bytes (latin1, so any byte sequence is searchable). */
function databaseBytes(home: string): string {
  const db = join(home, 'data', DATABASE_FILE);
  return [db, `${db}-wal`]
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f).toString('latin1'))
    .join('');
}

describe('embedded (SQLite) store persistence across serve restarts', () => {
  let m: Machine;
  beforeAll(() => {
    assertBuilt();
    m = new Machine();
  });
  afterAll(async () => m?.dispose());

  it('agents, tokens, contexts and queued messages are back after SIGTERM and a new serve; the file holds them sealed', async () => {
    const db = join(m.home, 'data', DATABASE_FILE);
    const first = await m.serve('embedded');
    expect(first.banner).toEqual([
      `Skynet Linker hub on ws://localhost:${first.port}/ws — embedded store (no Redis; SQLite database ${db}, each write committed before it is acknowledged; durability: killed process)`,
      `sealing at rest: on (keys in ${join(m.home, '.skynet_linker.keys')})`,
      `created an admin credential in ${join(m.home, 'admin.json')} (mode 0600); CLI commands on this machine use it automatically`,
    ]);

    m.file('context.json', { project: 'RAG survey', shared_knowledge: { decisions: ['use hybrid search'] } });
    const [added, pushed] = await Promise.all([
      m.ok(['agents', 'add', 'gemini', '--type', 'researcher', '--format', 'json']),
      m.ok(['context', 'push', '--agent-id', 'claude_cli', '--context-file', 'context.json']),
    ]);
    expect(pushed).toBe('agent:claude_cli is now at version 1\n');
    const { token } = JSON.parse(added) as { token: string };
    // A message for gemini, who is not connected: it waits in gemini's inbox.
    const queuedId = (await m.ok(['send', '--agent-id', 'claude_cli', '--to', 'gemini', '--type', 'task', '--content', 'pendant ton absence'])).trim();
    const rotated = /^active at-rest key is now (\S+) \(2 keys in the ring\)\n$/.exec(await m.ok(['keys', 'rotate']));
    expect(rotated).not.toBeNull();

    // While the hub runs, the database file and its WAL hold no value in clear text, though the
    // keys (agent ids) are there: the search is not vacuous.
    const live = databaseBytes(m.home);
    expect(live).toContain('history:{gemini}');
    for (const clear of ['RAG survey', 'use hybrid search', 'pendant ton absence', 'researcher']) expect(live).not.toContain(clear);

    const stopped = await first.proc.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain('"event":"shutdown"');
    // Nothing is saved at shutdown: the database already has everything.
    expect(existsSync(join(m.home, 'data', 'snapshots', 'autosave.json'))).toBe(false);
    for (const clear of ['RAG survey', 'pendant ton absence', 'researcher']) expect(databaseBytes(m.home)).not.toContain(clear);

    const second = await m.serve('embedded');
    expect(second.banner.slice(1)).toEqual([
      `sealing at rest: on (keys in ${join(m.home, '.skynet_linker.keys')})`,
      `admin credential: ${join(m.home, 'admin.json')}`,
    ]);
    const shown = JSON.parse(await m.ok(['keys', 'show', '--format', 'json'])) as { at_rest: { active_key_id: string; key_ids: string[] } };
    expect(shown.at_rest.active_key_id).toBe(rotated![1]);
    expect(shown.at_rest.key_ids).toHaveLength(2);

    const [agents, context] = await Promise.all([m.ok(['agents', 'list']), m.ok(['context', 'pull', '--agent-id', 'claude_cli'])]);
    expect(agents).toBe(
      ['- admin (operator) - offline (never seen)', '- claude_cli (agent) - offline (never seen)', '- gemini (researcher) - offline (never seen)', ''].join(
        '\n',
      ),
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
    expect(event).toMatchObject({
      message: { id: queuedId, from_agent: 'claude_cli', to_agent: 'gemini', type: 'task', payload: { content: 'pendant ton absence' } },
    });
    expect((await gemini.stop('SIGINT')).code).toBe(0);

    // A second hub on the same data directory is refused, and says who holds it.
    const intruder = await m.run(['serve', '--port', '0'], { env: { SKYNET_LINKER_SERVER: undefined } });
    expect(intruder.code).toBe(7);
    expect(intruder.stderr).toBe(
      `error: data directory ${join(m.home, 'data')} is in use by pid ${second.proc.child.pid}: one hub per data directory (stop it, or give this one another --data-dir)\n`,
    );
    // The first hub did not notice.
    expect(JSON.parse(await m.ok(['context', 'pull', '--agent-id', 'claude_cli']))).toMatchObject({ version: 1 });

    expect((await second.proc.stop('SIGTERM')).code).toBe(0);
  }, 90_000);

  it('a data directory of the previous build (its autosave snapshot) is imported at the first start, once, and sealed value by value', async () => {
    const old = new Machine();
    try {
      // What the previous build's `serve` left: the key file, and the in-memory store's autosave
      // snapshot (values kept as they are inside, the file sealed whole), written by that code.
      // As the previous build's first start made them: the passphrase file, then the key file.
      const saved = process.env.SKYNET_LINKER_PASSPHRASE;
      delete process.env.SKYNET_LINKER_PASSPHRASE;
      let passphrase: string;
      try {
        passphrase = keyFilePassphrase(old.home).passphrase;
      } finally {
        if (saved !== undefined) process.env.SKYNET_LINKER_PASSPHRASE = saved;
      }
      const ring = KeyRing.generate();
      expect(await createKeyFile(join(old.home, DEFAULT_KEY_FILE_NAME), { at_rest: ring.export() }, passphrase)).toBe(true);
      const memory = createSharedMemory({ store: new EmbeddedStore({ dataDir: join(old.home, 'data') }), sealer: keyRingSealer(ring, { offThread: false }) });
      await memory.agents.upsert({ agent_id: 'gemini', agent_type: 'researcher', metadata: { bio: 'old-bio-canary' } });
      const { token } = await memory.tokens.issue('gemini', ['agent']);
      await memory.agents.upsert({ agent_id: 'claude_cli', agent_type: 'agent' });
      await memory.contexts.push('agent:claude_cli', { project: 'old-context-canary' }, 'claude_cli');
      const queued = await send(memory, { from: 'claude_cli', to: 'gemini', content: 'old-message-canary' });
      const snapshot = await memory.snapshots.create(new Date(), 'autosave');
      expect(readFileSync(join(old.home, 'data', 'snapshots', 'autosave.json'), 'utf8')).not.toContain('old-message-canary');

      const first = await old.serve('embedded');
      // (The time is the file's, as `snapshot list` shows it.)
      expect(first.banner[2]).toMatch(
        /^imported the state of the previous build \(snapshot autosave of \d{4}-\d\d-\d\dT[\d:.]+Z\) into (\S+); done once, the snapshot files stay$/,
      );
      expect(first.banner[2]).toContain(` into ${join(old.home, 'data', DATABASE_FILE)};`);
      expect(snapshot.name).toBe('autosave');
      // The log line too (pino writes stderr asynchronously: it may come after the banner).
      await first.proc.waitForLine('"event":"previous_build_imported"', { stream: 'stderr' });
      expect(JSON.parse(await old.ok(['context', 'pull', '--agent-id', 'claude_cli']))).toMatchObject({ version: 1, data: { project: 'old-context-canary' } });
      // Imported values are sealed one by one in the database, like any new one.
      for (const clear of ['old-bio-canary', 'old-context-canary', 'old-message-canary']) expect(databaseBytes(old.home)).not.toContain(clear);
      const gemini = old.spawn(['connect', '--agent-id', 'gemini', '--token', token, '--format', 'json']);
      expect(JSON.parse(await gemini.waitForLine(queued.envelope.id))).toMatchObject({ message: { payload: { content: 'old-message-canary' } } });
      expect((await gemini.stop('SIGINT')).code).toBe(0);
      // A change after the import, then a restart: no second import (it would undo the change).
      old.file('next.json', { project: 'after the upgrade' });
      await old.ok(['context', 'push', '--agent-id', 'claude_cli', '--context-file', 'next.json']);
      expect((await first.proc.stop('SIGTERM')).code).toBe(0);

      const second = await old.serve('embedded');
      expect(second.banner.join('\n')).not.toContain('imported');
      expect(second.proc.stderr).not.toContain('previous_build_imported');
      expect(JSON.parse(await old.ok(['context', 'pull', '--agent-id', 'claude_cli']))).toMatchObject({ version: 2, data: { project: 'after the upgrade' } });
      // The old snapshot stays listed and restorable like any other.
      expect(await old.ok(['snapshot', 'list'])).toContain('autosave');
      expect((await second.proc.stop('SIGTERM')).code).toBe(0);
    } finally {
      await old.dispose();
    }
  }, 90_000);
});
