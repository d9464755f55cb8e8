/**
 * Failures of the built CLI: one `error: ...` line on stderr (no stack trace), nothing on stdout,
 * and the documented exit code: 2 usage (bad flags, bad config), 3 auth, 4 not found, 5 hub
 * unreachable, 6 timeout.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../setup/redis-process.js';
import { assertBuilt, Machine, type Hub, type RunResult } from './helpers.js';

const UUID_RE = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const HINT = 'run `skynet-linker --help` for the commands and `skynet-linker <command> --help` for their flags\n';

/** A failed run: exit `code`, empty stdout, exactly `stderr`, and never a stack trace. */
function failed(r: RunResult, code: number, stderr: string | RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  if (typeof stderr === 'string') expect(r.stderr).toBe(stderr);
  else expect(r.stderr).toMatch(stderr);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

describe('usage errors (exit 2), no hub needed', () => {
  let m: Machine;
  beforeAll(() => {
    assertBuilt();
    m = new Machine();
  });
  afterAll(async () => m?.dispose());

  it('an unknown option', async () => {
    failed(await m.run(['agents', 'list', '--bogus']), 2, `error: unknown option --bogus for \`skynet-linker agents list\`\n${HINT}`);
  });

  it('a mistyped option suggests the nearest one', async () => {
    const [list, serve] = await Promise.all([m.run(['agents', 'list', '--formt', 'json']), m.run(['serve', '--prot', '8021'])]);
    failed(list, 2, `error: unknown option --formt for \`skynet-linker agents list\`; did you mean --format?\n${HINT}`);
    failed(serve, 2, `error: unknown option --prot for \`skynet-linker serve\`; did you mean --port?\n${HINT}`);
  });

  it('unknown commands, missing values and required options, bad flag values', async () => {
    const [unknown, typo, missingValue, missingRequired, priority, format, duration, sendNoTarget, connectNoId] = await Promise.all([
      m.run(['frobnicate']),
      m.run(['agents', 'lst']),
      m.run(['send', '--to']),
      m.run(['context', 'push', '--agent-id', 'claude_cli']),
      m.run(['send', '--to', 'gemini', '--content', 'x', '--priority', '11']),
      m.run(['agents', 'list', '--format', 'xml']),
      m.run(['send', '--to', 'gemini', '--content', 'x', '--wait-reply', '--timeout', 'soon']),
      m.run(['send', '--content', 'x']),
      m.run(['connect', '--agent-type', 'planner']),
    ]);
    failed(unknown, 2, `error: unknown command \`skynet-linker frobnicate\`\n${HINT}`);
    failed(
      typo,
      2,
      `error: unknown command \`skynet-linker agents lst\`; did you mean one of: skynet-linker agents add, skynet-linker agents list, skynet-linker agents remove?\n${HINT}`,
    );
    failed(missingValue, 2, `error: Not enough arguments to option --to.\n${HINT}`);
    failed(missingRequired, 2, `error: \`skynet-linker context push\` needs --context-file\n${HINT}`);
    failed(priority, 2, `error: Invalid value for --priority: expected to be in the [1; 10] range (got 11)\n${HINT}`);
    failed(format, 2, `error: Invalid value for --format: expected one of "text" or "json" (got "xml")\n${HINT}`);
    failed(duration, 2, 'error: --timeout: "soon" is not a duration (examples: 500ms, 60s, 5m)\n');
    failed(sendNoTarget, 2, 'error: give --to <agent> or --channel <name> (or --type broadcast)\n');
    failed(connectNoId, 2, 'error: --agent-id is required (or set SKYNET_LINKER_AGENT_ID)\n');
  });

  it('serve with a bad port', async () => {
    const [flag, env] = await Promise.all([m.run(['serve', '--port', 'abc']), m.run(['serve'], { env: { SKYNET_LINKER_PORT: '70000' } })]);
    failed(flag, 2, `error: Invalid value for --port: expected a number (got "abc")\n${HINT}`);
    failed(env, 2, 'error: SKYNET_LINKER_PORT must be an integer between 0 and 65535 (got "70000")\n');
  });

  it('serve flags that reach files, Redis and the logger are checked first, each with a message to act on', async () => {
    // One after the other: nine processes at once on two shared cores starve each other.
    const runs: [string[], Record<string, string>?][] = [
      [['serve', '--log-level', 'loud']],
      [['serve', '--port', '0'], { LOG_LEVEL: 'loud' }],
      [['serve', '--port', '0', '--tls-cert', '/nope.pem', '--tls-key', '/nope.pem']],
      [['serve', '--port', '0', '--redis', 'notaurl']],
      [['serve', '--port', '0'], { SKYNET_LINKER_REDIS_URL: 'localhost:6379' }],
      [['serve', '--snapshot-interval', 'abc']],
      [['serve', '--drain-timeout=-1']],
      [['agents', 'list', '--server', 'foo']],
      [['agents', 'list', '--server', 'ftp://localhost:8000']],
    ];
    const results: RunResult[] = [];
    for (const [args, env] of runs) results.push(await m.run(args, { env }));
    const [level, levelEnv, cert, redis, redisEnv, interval, drain, server, scheme] = results as [
      RunResult,
      RunResult,
      RunResult,
      RunResult,
      RunResult,
      RunResult,
      RunResult,
      RunResult,
      RunResult,
    ];
    failed(
      level,
      2,
      `error: Invalid value for --log-level: expected one of "fatal", "error", "warn", "info", "debug", "trace", or "silent" (got "loud")\n${HINT}`,
    );
    failed(levelEnv, 2, 'error: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")\n');
    failed(cert, 2, 'error: --tls-cert /nope.pem: no such file\n');
    failed(redis, 2, 'error: --redis: "notaurl" is not a Redis URL (expected redis://host:6379, rediss://… for TLS, or redis://:password@host:6379/0)\n');
    failed(
      redisEnv,
      2,
      'error: SKYNET_LINKER_REDIS_URL: "localhost:6379" is not a Redis URL (expected redis://host:6379, rediss://… for TLS, or redis://:password@host:6379/0)\n',
    );
    failed(interval, 2, `error: Invalid value for --snapshot-interval: expected a number (got "abc")\n${HINT}`);
    failed(drain, 2, `error: Invalid value for --drain-timeout: expected to be at least 0 (got -1)\n${HINT}`);
    failed(server, 2, 'error: --server: "foo" is not a URL (expected e.g. ws://localhost:8000/ws or http://localhost:8000)\n');
    failed(scheme, 2, 'error: --server: "ftp://localhost:8000" must start with ws://, wss://, http:// or https:// (e.g. ws://localhost:8000/ws)\n');
  }, 90_000);

  it('help names the value of each option instead of #0', async () => {
    const help = await m.run(['serve', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--port <port>');
    expect(help.stdout).toContain('--redis <url>');
    expect(help.stdout).not.toContain('#0');
  });

  it('a config.yaml with a bad value or an unknown field names the field', async () => {
    m.file('config.yaml', 'server:\n  port: "abc"\n');
    m.file('unknown-field.yaml', 'server:\n  port: 8000\n  colour: red\n');
    m.file('unknown-section.yaml', 'servr:\n  port: 8000\n');
    const [clientCmd, serve, unknownField, unknownSection, missing] = await Promise.all([
      m.run(['agents', 'list']),
      m.run(['serve', '--port', '0']),
      m.run(['agents', 'list', '--config', 'unknown-field.yaml']),
      m.run(['serve', '--port', '0', '--config', 'unknown-section.yaml']),
      m.run(['agents', 'list', '--config', 'nope.yaml']),
    ]);
    failed(clientCmd, 2, 'error: config.yaml: server.port: Invalid input: expected number, received string\n');
    failed(serve, 2, 'error: config.yaml: server.port: Invalid input: expected number, received string\n');
    failed(unknownField, 2, 'error: unknown-field.yaml: server: unknown field "colour"\n');
    failed(unknownSection, 2, 'error: unknown-section.yaml: (top level): unknown field "servr"\n');
    failed(missing, 2, 'error: config file not found: nope.yaml\n');
  });
});

describe('errors against a running hub', () => {
  let m: Machine;
  let hub: Hub;
  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    hub = await m.serve('redis');
    await m.ok(['agents', 'add', 'silent_bob', '--type', 'researcher']);
  });
  afterAll(async () => {
    if (hub?.proc.running) await hub.proc.stop('SIGTERM');
    await m?.dispose();
  });

  it('a bad token exits 3 and says the token is invalid (flag or SKYNET_LINKER_TOKEN)', async () => {
    const invalid = 'error: UNAUTHORIZED: invalid token: this hub does not know it (revoked, mistyped, or issued by another hub)\n';
    const [flag, env, connect] = await Promise.all([
      m.run(['agents', 'list', '--token', 'nope']),
      m.run(['send', '--to', 'silent_bob', '--content', 'hi'], { env: { SKYNET_LINKER_TOKEN: 'nope' } }),
      m.run(['connect', '--agent-id', 'silent_bob', '--token', 'nope']),
    ]);
    failed(flag, 3, invalid);
    failed(env, 3, invalid);
    // connect gives up at once on a refused token: no reconnect loop.
    failed(connect, 3, invalid);
  });

  it('a second serve on the same port exits 2 and says the port is taken', async () => {
    failed(
      await m.run(['serve', '--port', String(hub.port)]),
      2,
      `error: port ${hub.port} on 127.0.0.1 is already in use (another hub?); pick another with --port\n`,
    );
  });

  it('https:// or wss:// against a plain hub says the TLS handshake failed and what to use instead', async () => {
    const https = `https://localhost:${hub.port}`;
    failed(
      await m.run(['agents', 'list', '--server', https]),
      5,
      new RegExp(
        `^error: cannot reach the hub at ${https}: the TLS handshake failed \\(.+\\); the hub serves plain ws:// and http:// unless started with --tls-cert: try http://localhost:${hub.port}\n$`,
      ),
    );
  });

  it('an unknown recipient exits 4', async () => {
    failed(
      await m.run(['send', '--agent-id', 'claude_cli', '--to', 'nobody', '--content', 'hi']),
      4,
      'error: NOT_FOUND: unknown agent nobody: no such agent is registered (skynet-linker agents add nobody)\n',
    );
  });

  it('--wait-reply with nobody answering exits 6 after --timeout', async () => {
    failed(
      await m.run(['send', '--agent-id', 'claude_cli', '--to', 'silent_bob', '--content', 'hello?', '--wait-reply', '--timeout', '1s']),
      6,
      new RegExp(
        `^sent (${UUID_RE}) to silent_bob; waiting up to 1s for the reply \\(Ctrl-C to stop\\)\nerror: no reply from silent_bob within 1s \\(task \\1\\)\n$`,
      ),
    );
  });
});

describe.concurrent('an unreachable hub exits 5 within seconds', () => {
  let m: Machine;
  let silent: Server;
  let silentPort: number;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    // A port that accepts TCP connections and never answers: the hang case.
    silent = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    await m?.dispose();
  });

  it('nothing listening, with --server (client commands, connect, and the local credential path)', async () => {
    const url = `ws://127.0.0.1:${await freePort()}/ws`;
    const unreachable = `error: cannot reach the hub at ${url}: ECONNREFUSED (is \`skynet-linker serve\` running? set --server or SKYNET_LINKER_SERVER)\n`;
    // This machine has a local admin credential (as after `serve` ran here once).
    m.homeFile('admin.json', { agent_id: 'admin', token: 'skl_stale_local_admin_credential', server: url });
    const opts = { timeoutMs: 8_000 };
    const [list, send, connect, monitor, viaEnv] = await Promise.all([
      m.run(['agents', 'list', '--server', url], opts),
      m.run(['send', '--agent-id', 'claude_cli', '--to', 'gemini', '--content', 'hi', '--server', url], opts),
      m.run(['connect', '--agent-id', 'claude_cli', '--server', url, '--token', 'skl_whatever_token_value'], opts),
      m.run(['monitor', '--server', url], opts),
      m.run(['agents', 'list'], { ...opts, env: { SKYNET_LINKER_SERVER: url } }),
    ]);
    for (const r of [list, send, connect, monitor, viaEnv]) failed(r, 5, unreachable);
  });

  it('serve with an unreachable Redis exits 5', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    failed(await m.run(['serve', '--port', '0', '--redis', url], { timeoutMs: 10_000 }), 5, new RegExp(`^error: cannot reach Redis at ${url}: .*\n$`));
  });

  it('a port that never answers: exit 5 after the 4 s probe, not a hang', async () => {
    const url = `ws://127.0.0.1:${silentPort}/ws`;
    failed(
      // 4 s of probe plus a process start on two cores shared with the other concurrent cases.
      await m.run(['agents', 'list', '--server', url, '--token', 'skl_whatever_token_value'], { timeoutMs: 15_000 }),
      5,
      `error: cannot reach the hub at ${url}: no answer within 4000 ms (is \`skynet-linker serve\` running? set --server or SKYNET_LINKER_SERVER)\n`,
    );
  });
});
