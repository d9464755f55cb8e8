/**
 * The seed's "Flux de données typique" with the built CLI, every command its own process, against
 * a `serve` process on Redis and on the embedded store: two `connect` terminals, `send`, `send
 * --wait-reply` answered by a scripted agent, `monitor --format json`, `agents list`
 * online/offline, `context push`/`pull`, `snapshot create`/`restore`.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { assertBuilt, jsonLines, Machine, REPLY_AGENT, type Hub, type StoreKind } from './helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CLOCK = String.raw`\[\d\d:\d\d:\d\d\]`;
const ISO = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`;

describe.each<StoreKind>(['redis', 'embedded'])('the seed scenario with the CLI, on the %s store', (kind) => {
  let m: Machine;
  let hub: Hub;

  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    hub = await m.serve(kind);
  });
  // Connections, monitors and scripted agents started by a test end with it; the hub stays.
  afterEach(async () => m.killAll({ except: [hub.proc] }));
  afterAll(async () => {
    if (hub?.proc.running) expect((await hub.proc.stop('SIGTERM')).code).toBe(0);
    await m?.dispose();
  });

  it('serve says which store it runs on and creates a 0600 admin credential', () => {
    const storeText =
      kind === 'redis'
        ? `Redis store at ${inject('redisUrl')}`
        : `embedded store (no Redis; SQLite database ${join(m.home, 'data', 'skynet-linker.db')}, each write committed before it is acknowledged; durability: killed process)`;
    expect(hub.banner).toEqual([
      `Skynet Linker hub on ws://localhost:${hub.port}/ws — ${storeText}`,
      `sealing at rest: on (keys in ${join(m.home, '.skynet_linker.keys')})`,
      `created an admin credential in ${join(m.home, 'admin.json')} (mode 0600); CLI commands on this machine use it automatically`,
    ]);
    expect(statSync(join(m.home, 'admin.json')).mode & 0o777).toBe(0o600);
  });

  it('claude_cli sends gemini a task; gemini answers with --wait-reply; monitor sees both; presence follows the connections', async () => {
    // Terminal 3: the monitor, one JSON object per line.
    const monitor = m.spawn(['monitor', '--format', 'json']);
    await monitor.waitForLine(`monitoring ${hub.url} (Ctrl-C to quit)`, { stream: 'stderr' });

    // Terminals 1 and 2: the two agents of the seed.
    const claude = m.spawn(['connect', '--agent-id', 'claude_cli', '--agent-type', 'planner']);
    const gemini = m.spawn(['connect', '--agent-id', 'gemini', '--agent-type', 'researcher', '--format', 'json']);
    await claude.waitForLine(`connected as claude_cli (planner) to ${hub.url}; channels: skynet_core. Ctrl-C to quit.`, { stream: 'stderr' });
    await gemini.waitForLine(`connected as gemini (researcher) to ${hub.url}; channels: skynet_core. Ctrl-C to quit.`, { stream: 'stderr' });

    expect(await m.ok(['agents', 'list'])).toBe(
      ['- admin (operator) - offline (never seen)', '- claude_cli (planner) - online', '- gemini (researcher) - online', ''].join('\n'),
    );

    // Step 3: claude_cli's task, with the seed's exact content and session.
    const sent = await m.ok([
      'send',
      '--agent-id',
      'claude_cli',
      '--to',
      'gemini',
      '--type',
      'task',
      '--content',
      'Recherche les derniers papiers sur RAG',
      '--session',
      'sess_123',
    ]);
    expect(sent).toMatch(/^[0-9a-f-]{36}\n$/);
    const taskId = sent.trim();
    expect(taskId).toMatch(UUID);

    // Step 5: gemini receives it on its connection, as one JSON object per line.
    const received = JSON.parse(await gemini.waitForLine(taskId));
    expect(received).toEqual({
      stream_id: expect.stringMatching(/^\d+-\d+$/),
      replayed: false,
      message: {
        id: taskId,
        from_agent: 'claude_cli',
        to_agent: 'gemini',
        type: 'task',
        channel: null,
        payload: {
          content: 'Recherche les derniers papiers sur RAG',
          context: { session_id: 'sess_123', parent_message_id: null, priority: 5 },
          meta: { timestamp: expect.stringMatching(new RegExp(`^${ISO}$`)), ttl: null, requires_ack: false },
        },
        timestamp: expect.stringMatching(new RegExp(`^${ISO}$`)),
        trace_id: taskId,
        encrypted: false,
        signature: null,
      },
    });
    expect(gemini.lines()).toHaveLength(1);
    expect(claude.stdout).toBe('');

    // Ctrl-C on gemini's terminal: a clean exit, and the registry says offline with a last-seen time.
    const geminiExit = await gemini.stop('SIGINT');
    expect(geminiExit.code).toBe(0);
    expect(geminiExit.stderr).toBe(`connected as gemini (researcher) to ${hub.url}; channels: skynet_core. Ctrl-C to quit.\ndisconnected\n`);
    await vi.waitFor(
      async () => {
        const lines = (await m.ok(['agents', 'list'])).split('\n');
        expect(lines).toContain('- claude_cli (planner) - online');
        expect(lines.find((l) => l.startsWith('- gemini '))).toMatch(/^- gemini \(researcher\) - offline \(last seen: \d+s ago\)$/);
      },
      { timeout: 10_000, interval: 100 },
    );

    // Steps 5-7 scripted: an agent with a token from `agents add --format json` answers tasks.
    const added = JSON.parse(await m.ok(['agents', 'add', 'gemini', '--type', 'researcher', '--format', 'json']));
    expect(added).toEqual({
      agent_id: 'gemini',
      agent_type: 'researcher',
      scopes: ['agent'],
      token: expect.stringMatching(/^skl_[A-Za-z0-9_-]{20,}$/),
      existed: true,
    });
    const bot = m.spawn([hub.url, added.token, 'gemini'], { script: REPLY_AGENT });
    await bot.waitForLine('ready gemini');

    const asked = await m.run([
      'send',
      '--agent-id',
      'claude_cli',
      '--to',
      'gemini',
      '--content',
      'Résume RAG',
      '--session',
      'sess_123',
      '--wait-reply',
      '--timeout',
      '60s',
    ]);
    expect(asked).toEqual({
      code: 0,
      signal: null,
      stdout: 'Voici 10 papiers récents sur: Résume RAG\n',
      stderr: expect.stringMatching(/^sent [0-9a-f-]{36} to gemini; waiting up to 60s for the reply \(Ctrl-C to stop\)\n$/),
    });

    // claude_cli's own terminal shows the reply too (seed step 7), in the seed's line format.
    const replyLine = await claude.waitForLine('reply');
    expect(replyLine).toMatch(new RegExp(`^${CLOCK} gemini → claude_cli: reply "Voici 10 papiers récents sur: Résume RAG" \\(id [0-9a-f-]{36}\\)$`));

    // The monitor saw the task, the second task and the reply, in order, as JSON lines.
    await monitor.waitForLine((l) => l.includes('"type":"reply"'));
    const events = jsonLines(monitor.stdout);
    for (const e of events) {
      expect(Object.keys(e).sort()).toEqual(['at', 'delivered_to', 'message', 'node']);
      expect(e).toHaveProperty('message.type');
    }
    expect(events.map((e) => [e.message.from_agent, e.message.to_agent, e.message.type, e.message.payload.content, e.delivered_to])).toEqual([
      ['claude_cli', 'gemini', 'task', 'Recherche les derniers papiers sur RAG', ['gemini']],
      ['claude_cli', 'gemini', 'task', 'Résume RAG', ['gemini']],
      ['gemini', 'claude_cli', 'reply', 'Voici 10 papiers récents sur: Résume RAG', ['claude_cli']],
    ]);
    expect(events[0].message.id).toBe(taskId);
    expect(events[2].message.payload.context).toEqual({ session_id: 'sess_123', parent_message_id: events[1].message.id, priority: 5 });

    // The session recorded all three (seed step 4: stored in history).
    const show = (await m.ok(['sessions', 'show', 'sess_123'])).split('\n');
    expect(show[0]).toMatch(new RegExp(`^sess_123 \\[active\\] created by claude_cli at ${ISO}$`));
    expect(show[1]).toBe('participants: claude_cli, gemini');
    expect(show.slice(2, 5)).toEqual([
      expect.stringMatching(new RegExp(`^  ${ISO} claude_cli → gemini: task \\(${taskId}\\)$`)),
      expect.stringMatching(new RegExp(`^  ${ISO} claude_cli → gemini: task \\(${events[1].message.id}\\)$`)),
      expect.stringMatching(new RegExp(`^  ${ISO} gemini → claude_cli: reply \\(${events[2].message.id}\\)$`)),
    ]);

    // Everyone exits cleanly on Ctrl-C.
    const claudeExit = await claude.stop('SIGINT');
    expect(claudeExit.code).toBe(0);
    expect(claudeExit.stderr).toBe(`connected as claude_cli (planner) to ${hub.url}; channels: skynet_core. Ctrl-C to quit.\ndisconnected\n`);
    const monitorExit = await monitor.stop('SIGINT');
    expect(monitorExit).toMatchObject({ code: 0, stderr: `monitoring ${hub.url} (Ctrl-C to quit)\n` });
    expect((await bot.stop('SIGINT')).code).toBe(0);
  }, 60_000);

  it('a human answers a --wait-reply task by hand with send --reply-to (the README walkthrough)', async () => {
    const gemini = m.spawn(['connect', '--agent-id', 'gemini', '--agent-type', 'researcher', '--format', 'json']);
    await gemini.waitForLine(/^connected as gemini/, { stream: 'stderr' });
    const asking = m.spawn([
      'send',
      '--agent-id',
      'claude_cli',
      '--to',
      'gemini',
      '--content',
      'Recherche RAG à la main',
      '--session',
      'sess_hand',
      '--wait-reply',
      '--timeout',
      '30s',
    ]);
    const task = JSON.parse(await gemini.waitForLine('Recherche RAG à la main')) as { message: { id: string; type: string } };
    expect(task.message.type).toBe('task');
    const shown = await m.ok(['sessions', 'show', 'sess_hand']);
    expect(shown).toContain(`claude_cli → gemini: task (${task.message.id})`);
    const replyId = (
      await m.ok([
        'send',
        '--agent-id',
        'gemini',
        '--to',
        'claude_cli',
        '--reply-to',
        task.message.id,
        '--content',
        'Voici 10 papiers récents...',
        '--session',
        'sess_hand',
      ])
    ).trim();
    expect(replyId).toMatch(UUID);
    const answered = await asking.exited;
    expect(answered).toEqual({
      code: 0,
      signal: null,
      stdout: 'Voici 10 papiers récents...\n',
      stderr: `sent ${task.message.id} to gemini; waiting up to 30s for the reply (Ctrl-C to stop)\n`,
    });
    expect((await gemini.stop('SIGINT')).code).toBe(0);
  });

  it('the walkthrough shares context through the session both agents are in, and gemini reads it', async () => {
    // The README's "share context" step: a scope both can read (agent:claude_cli is claude_cli's own).
    expect(await m.ok(['sessions', 'create', '--id', 'sess_share', '--participants', 'claude_cli,gemini', '--goal', 'RAG research'])).toContain('sess_share');
    m.file('share.json', { last_task: 'RAG research', shared_knowledge: { facts: ['RAG = retrieval + generation'] } });
    expect(await m.ok(['context', 'push', '--agent-id', 'claude_cli', '--scope', 'session:sess_share', '--context-file', 'share.json'])).toBe(
      'session:sess_share is now at version 1\n',
    );
    expect(JSON.parse(await m.ok(['context', 'pull', '--agent-id', 'gemini', '--scope', 'session:sess_share', '--data-only']))).toEqual({
      last_task: 'RAG research',
      shared_knowledge: { facts: ['RAG = retrieval + generation'] },
    });
  });

  it('context push then pull round-trips the file, and a second push merges', async () => {
    const context = { project: 'RAG survey', shared_knowledge: { facts: ['RAG = retrieval-augmented generation'] } };
    m.file('context.json', context);
    expect(await m.ok(['context', 'push', '--agent-id', 'claude_cli', '--context-file', 'context.json'])).toBe('agent:claude_cli is now at version 1\n');

    const pulled = await m.run(['context', 'pull', '--agent-id', 'claude_cli', '--output', 'context_local.json']);
    expect(pulled).toEqual({ code: 0, signal: null, stdout: '', stderr: 'wrote agent:claude_cli (version 1) to context_local.json\n' });
    expect(JSON.parse(readFileSync(m.path('context_local.json'), 'utf8'))).toEqual({
      scope: 'agent:claude_cli',
      version: 1,
      data: context,
      updated_by: 'claude_cli',
      updated_at: expect.stringMatching(new RegExp(`^${ISO}$`)),
    });

    m.file('more.json', { project: null, shared_knowledge: { facts: ['RAG = retrieval-augmented generation', 'HyDE helps recall'] } });
    expect(await m.ok(['context', 'push', '--agent-id', 'claude_cli', '--context-file', 'more.json'])).toBe('agent:claude_cli is now at version 2\n');
    expect(JSON.parse(await m.ok(['context', 'pull', '--agent-id', 'claude_cli', '--data-only']))).toEqual({
      shared_knowledge: { facts: ['RAG = retrieval-augmented generation', 'HyDE helps recall'] },
    });
  });

  it('snapshot create, a change, snapshot restore: the change is gone', async () => {
    const name = (await m.ok(['snapshot', 'create'])).trim();
    expect(name).toMatch(/^\d{8}T\d{9}Z$/);
    expect((await m.ok(['snapshot', 'list'])).split('\n')).toContainEqual(expect.stringMatching(new RegExp(`^- ${name} \\(${ISO}, \\d+ bytes\\)$`)));

    // The change: a new agent and a new version of claude_cli's context.
    await m.ok(['agents', 'add', 'snap_probe', '--type', 'coder']);
    m.file('later.json', { later: true });
    expect(await m.ok(['context', 'push', '--agent-id', 'claude_cli', '--context-file', 'later.json'])).toBe('agent:claude_cli is now at version 3\n');
    expect(await m.ok(['agents', 'list'])).toContain('- snap_probe (coder) - offline (never seen)\n');

    expect(await m.ok(['snapshot', 'restore', name])).toBe(`restored ${name}\n`);

    const agents = await m.ok(['agents', 'list']);
    expect(agents).not.toContain('snap_probe');
    expect(agents).toContain('- gemini (researcher) - ');
    const doc = JSON.parse(await m.ok(['context', 'pull', '--agent-id', 'claude_cli']));
    expect(doc).toMatchObject({
      scope: 'agent:claude_cli',
      version: 2,
      data: { shared_knowledge: { facts: ['RAG = retrieval-augmented generation', 'HyDE helps recall'] } },
    });
    expect(doc.data).not.toHaveProperty('later');
  });
});
