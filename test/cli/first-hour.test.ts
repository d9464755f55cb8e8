/**
 * A newcomer's first hour with the built CLI (issue 15): client commands find the hub `serve`
 * started on this machine, a closed stdout ends a command quietly, a Redis outage is reported the
 * same way by every command, `send --wait-reply` says what it sent and how it ended, `connect`
 * prints ids and says when the hub goes and comes back, Ctrl-C on a lone hub does not wait out
 * its drain and says what it saved, `agents add` on an existing agent keeps its type, and `serve`
 * on a terminal logs readable lines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedis, type RedisProcess } from '../setup/redis-process.js';
import { assertBuilt, jsonLines, Machine, type Hub } from './helpers.js';

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const NO_STACK = /^\s+at /m;

describe('the CLI on one machine', () => {
  let m: Machine;
  let hub: Hub;
  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    hub = await m.serve('embedded');
  });
  afterEach(async () => m.killAll({ except: [hub.proc] }));
  afterAll(async () => {
    if (hub?.proc.running) await hub.proc.stop('SIGTERM');
    await m?.dispose();
  });

  it('client commands find the hub serve started on a non-default port, without --server', async () => {
    // No SKYNET_LINKER_SERVER: the URL comes from the admin credential serve wrote.
    const list = await m.run(['agents', 'list'], { env: { SKYNET_LINKER_SERVER: undefined } });
    expect(list).toEqual({ code: 0, signal: null, stdout: '- admin (operator) - offline (never seen)\n', stderr: '' });
    // config.yaml's server.port says otherwise, and wins: nothing listens there.
    const port = await freePort();
    m.file('elsewhere.yaml', `server:\n  port: ${port}\n`);
    const elsewhere = await m.run(['agents', 'list', '--config', 'elsewhere.yaml'], { env: { SKYNET_LINKER_SERVER: undefined } });
    expect(elsewhere.code).toBe(5);
    expect(elsewhere.stderr).toBe(
      `error: cannot reach the hub at ws://localhost:${port}/ws (from config.yaml): ECONNREFUSED (is \`skynet-linker serve\` running? set --server or SKYNET_LINKER_SERVER)\n`,
    );
  });

  it('a hub that is gone: the error says the URL came from the last serve on this machine', async () => {
    const other = new Machine();
    try {
      const port = await freePort();
      other.homeFile('admin.json', { agent_id: 'admin', token: 'skl_a_credential_of_a_stopped_hub', server: `ws://localhost:${port}/ws` });
      const r = await other.run(['agents', 'list']);
      expect(r.code).toBe(5);
      expect(r.stderr).toBe(
        `error: cannot reach the hub at ws://localhost:${port}/ws (the URL the last \`skynet-linker serve\` on this machine recorded in ${join(other.home, 'admin.json')}): ECONNREFUSED (is \`skynet-linker serve\` running? set --server or SKYNET_LINKER_SERVER)\n`,
      );
    } finally {
      await other.dispose();
    }
  });

  it('monitor and connect end quietly with exit 0 when the reader of their stdout goes away (| head)', async () => {
    await m.ok(['agents', 'add', 'reader', '--type', 'researcher']);
    const monitor = m.spawn(['monitor', '--format', 'json']);
    const connect = m.spawn(['connect', '--agent-id', 'reader', '--format', 'json']);
    await monitor.waitForLine(/^monitoring /, { stream: 'stderr' });
    await connect.waitForLine(/^connected as reader/, { stream: 'stderr' });
    await m.ok(['send', '--agent-id', 'writer', '--to', 'reader', '--content', 'first']);
    await monitor.waitForLine('"first"');
    await connect.waitForLine('"first"');
    // `| head -1`: the reader has its line and closes the pipe.
    monitor.child.stdout!.destroy();
    connect.child.stdout!.destroy();
    // Each gets more to print until a write fails.
    for (let i = 0; i < 3 && (monitor.running || connect.running); i++) {
      await m.ok(['send', '--agent-id', 'writer', '--to', 'reader', '--content', `more ${i}`]);
    }
    const [mon, con] = await Promise.all([monitor.exited, connect.exited]);
    expect({ code: mon.code, signal: mon.signal }).toEqual({ code: 0, signal: null });
    expect({ code: con.code, signal: con.signal }).toEqual({ code: 0, signal: null });
    expect(mon.stderr).not.toMatch(/EPIPE|Error/);
    expect(con.stderr).not.toMatch(/EPIPE|Error/);
  });

  it('send --wait-reply: prints the id it sent, exits 8 on a failed reply, 130 on Ctrl-C saying what stopped', async () => {
    await m.ok(['agents', 'add', 'helper', '--type', 'coder']);
    const asking = m.spawn(['send', '--agent-id', 'boss', '--to', 'helper', '--content', 'do it', '--wait-reply', '--timeout', '30s']);
    const sentLine = await asking.waitForLine(/^sent /, { stream: 'stderr' });
    const id = new RegExp(`^sent (${UUID}) to helper; waiting up to 30s for the reply \\(Ctrl-C to stop\\)$`).exec(sentLine)?.[1];
    expect(id).toBeDefined();
    m.file('failed.json', { content: { failed: true, error: 'helper: HTTP 429 rate_limit_error (gave up after 2 retries)' } });
    await m.ok(['send', '--agent-id', 'helper', '--to', 'boss', '--reply-to', id!, '--payload-file', 'failed.json']);
    const failed = await asking.exited;
    expect(failed.code).toBe(8);
    expect(JSON.parse(failed.stdout)).toEqual({ failed: true, error: 'helper: HTTP 429 rate_limit_error (gave up after 2 retries)' });
    expect(failed.stderr).toBe(`${sentLine}\nerror: helper answered that the task failed: helper: HTTP 429 rate_limit_error (gave up after 2 retries)\n`);

    const waiting = m.spawn(['send', '--agent-id', 'boss', '--to', 'helper', '--content', 'again', '--wait-reply']);
    const second = await waiting.waitForLine(/^sent /, { stream: 'stderr' });
    const secondId = new RegExp(`^sent (${UUID}) to helper`).exec(second)![1];
    const interrupted = await waiting.stop('SIGINT');
    expect(interrupted.code).toBe(130);
    expect(interrupted.stdout).toBe('');
    expect(interrupted.stderr).toBe(
      `${second}\nerror: interrupted: stopped waiting for the reply to ${secondId} from helper (the task was sent; the reply will still reach boss's inbox)\n`,
    );
  });

  it('agents add on an existing agent keeps its type and says it existed', async () => {
    expect(await m.ok(['agents', 'add', 'gemini', '--type', 'researcher'])).toMatch(
      /^added gemini \(researcher\) with scopes agent\ntoken \(shown once\): skl_/,
    );
    const again = await m.ok(['agents', 'add', 'gemini']);
    expect(again).toMatch(
      /^gemini already existed \(type researcher kept\): issued another token with scopes agent; its earlier tokens keep working \(`agents remove` revokes them all\)\ntoken \(shown once\): skl_/,
    );
    expect(await m.ok(['agents', 'list'])).toContain('- gemini (researcher) - offline (never seen)\n');
    const retyped = JSON.parse(await m.ok(['agents', 'add', 'gemini', '--type', 'planner', '--format', 'json']));
    expect(retyped).toMatchObject({ agent_id: 'gemini', agent_type: 'planner', existed: true });
  });
});

describe('the hub goes away and comes back', () => {
  let m: Machine;
  beforeAll(() => {
    assertBuilt();
    m = new Machine();
  });
  afterAll(async () => m?.dispose());

  it('connect prints one line when the hub is gone and one when it is back; Ctrl-C on the lone hub saves and says so', async () => {
    const port = await freePort();
    const url = `ws://localhost:${port}/ws`;
    m.server = url;
    // A drain timeout far beyond the test's: a lone hub that waited it out would fail the test.
    const startHub = async () => {
      const proc = m.spawn(['serve', '--port', String(port), '--drain-timeout', '600', '--log-format', 'json'], { env: { SKYNET_LINKER_SERVER: undefined } });
      await proc.waitForLine(/admin credential/);
      return proc;
    };
    const first = await startHub();
    const connect = m.spawn(['connect', '--agent-id', 'gemini', '--agent-type', 'researcher']);
    await connect.waitForLine(/^connected as gemini/, { stream: 'stderr' });

    const stopped = await first.stop('SIGINT', 30_000);
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toContain('SIGINT: shutting down (clients are told to reconnect)\n');
    expect(stopped.stdout).toContain(`hub stopped; everything it acknowledged is in its database in ${join(m.home, 'data')} (restored at the next start)\n`);
    // No other node to move to: no drain.
    expect(jsonLines(stopped.stderr).map((l) => l.event)).not.toContain('hub_draining');
    await connect.waitForLine(`connection to ${url} lost; reconnecting...`, { stream: 'stderr' });

    const second = await startHub();
    await connect.waitForLine(`reconnected to ${url}; resuming from the last message received`, { stream: 'stderr', timeoutMs: 20_000 });
    // The restored hub still knows gemini, and messages reach it with their id printed.
    const id = (await m.ok(['send', '--agent-id', 'claude_cli', '--to', 'gemini', '--content', 'still there?'])).trim();
    const line = await connect.waitForLine('still there?');
    expect(line).toMatch(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] claude_cli → gemini: task "still there\\?" \\(id ${id}\\)$`));
    expect(connect.stderr).not.toMatch(NO_STACK);
    await connect.stop('SIGINT');
    expect((await second.stop('SIGINT', 30_000)).code).toBe(0);
  }, 90_000);
});

describe('serve logs', () => {
  let m: Machine;
  beforeAll(() => {
    assertBuilt();
    m = new Machine();
  });
  afterEach(async () => m.killAll());
  afterAll(async () => m?.dispose());

  it('JSON lines when stderr is not a terminal; readable lines with --log-format text, routed messages with --verbose', async () => {
    const json = await m.serve('embedded');
    await m.ok(['agents', 'add', 'gemini']);
    const c1 = m.spawn(['connect', '--agent-id', 'gemini']);
    await json.proc.waitForLine((l) => l.includes('"event":"agent_online"'), { stream: 'stderr' });
    await c1.stop('SIGINT');
    expect(JSON.parse(json.proc.lines('stderr').find((l) => l.includes('agent_online'))!)).toMatchObject({ event: 'agent_online', agent_id: 'gemini' });
    await json.proc.stop('SIGINT');

    const text = await m.serve('embedded', ['--log-format', 'text', '--verbose']);
    const c2 = m.spawn(['connect', '--agent-id', 'gemini']);
    await text.proc.waitForLine(/^\d\d:\d\d:\d\d gemini connected$/, { stream: 'stderr' });
    const id = (await m.ok(['send', '--agent-id', 'claude_cli', '--to', 'gemini', '--content', 'hi'])).trim();
    await text.proc.waitForLine(new RegExp(`^\\d\\d:\\d\\d:\\d\\d claude_cli sent task ${id} to 1 recipient$`), { stream: 'stderr' });
    await c2.stop('SIGINT');
    await text.proc.waitForLine(/^\d\d:\d\d:\d\d gemini disconnected$/, { stream: 'stderr' });
    expect(text.proc.stderr).not.toContain('{"level"');
  });
});

describe('Redis goes down under a running hub', () => {
  let m: Machine;
  let redis: RedisProcess;
  let dir: string;
  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    dir = mkdtempSync(join(tmpdir(), 'skynet-redis-'));
    redis = await startRedis({ dir });
  });
  afterAll(async () => {
    await m?.dispose();
    // stop() waits for an exit: only while it has not exited yet (the test stops it).
    if (redis && redis.child.exitCode === null && redis.child.signalCode === null) await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every command reports SERVICE_UNAVAILABLE with exit 5, the same way', async () => {
    const proc = m.spawn(['serve', '--port', '0', '--redis', redis.url], { env: { SKYNET_LINKER_SERVER: undefined } });
    const first = await proc.waitForLine(/^Skynet Linker hub on /);
    await proc.waitForLine(/admin credential/);
    m.server = /^Skynet Linker hub on (\S+) /.exec(first)![1];
    await m.ok(['agents', 'add', 'gemini']);
    await redis.stop();
    const expected = `error: SERVICE_UNAVAILABLE: the hub at ${m.server} is up but its store (redis) is unreachable; retry once it is back\n`;
    for (const args of [
      ['send', '--to', 'gemini', '--content', 'hi'],
      ['send', '--agent-id', 'claude_cli', '--to', 'gemini', '--content', 'hi'],
      ['agents', 'list'],
      ['context', 'pull', '--scope', 'global'],
    ]) {
      const r = await m.run(args);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 5, stdout: '', stderr: expected });
    }
    await proc.stop('SIGKILL');
  }, 60_000);
});
