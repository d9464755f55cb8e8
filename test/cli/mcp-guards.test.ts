/**
 * The CLI around the bus tools and the guards: `mcp config` for the three coding CLIs (printed
 * and written, never with a token), `mcp` refusing bad starts, config.yaml `guards:` applied by
 * `serve`, and `sessions resume`.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, Machine, type Hub } from './helpers.js';

describe('skynet-linker mcp config', () => {
  let m: Machine;
  beforeAll(() => {
    assertBuilt();
    m = new Machine();
  });
  afterAll(async () => m?.dispose());

  it('prints the Claude Code .mcp.json entry', async () => {
    const out = JSON.parse(await m.ok(['mcp', 'config', '--client', 'claude-code', '--agent-id', 'claude_code', '--server', 'ws://hub.lan:8000/ws']));
    expect(out).toEqual({
      mcpServers: { skynet: { type: 'stdio', command: 'skynet-linker', args: ['mcp', '--agent-id', 'claude_code', '--server', 'ws://hub.lan:8000/ws'] } },
    });
  });

  it('prints the Codex table with a tool timeout over the longest wait, and names the token variable only', async () => {
    const out = await m.ok(['mcp', 'config', '--client', 'codex', '--agent-id', 'codex', '--token-env', 'SKYNET_CODEX_TOKEN', '--name', 'bus']);
    expect(out).toBe(
      '[mcp_servers.bus]\ncommand = "skynet-linker"\nargs = ["mcp", "--agent-id", "codex", "--token-env", "SKYNET_CODEX_TOKEN"]\ntool_timeout_sec = 660\nenv_vars = ["SKYNET_CODEX_TOKEN"]\n',
    );
  });

  it('prints the Gemini CLI entry with the variable expanded by the CLI, never its value', async () => {
    const out = JSON.parse(
      await m.ok(['mcp', 'config', '--client', 'gemini-cli', '--agent-id', 'gemini_cli', '--token-env', 'SKYNET_GEMINI_TOKEN'], {
        env: { SKYNET_GEMINI_TOKEN: 'skl_secret_value_123456' },
      }),
    );
    expect(out.mcpServers.skynet).toEqual({
      command: 'skynet-linker',
      args: ['mcp', '--agent-id', 'gemini_cli', '--token-env', 'SKYNET_GEMINI_TOKEN'],
      env: { SKYNET_GEMINI_TOKEN: '$SKYNET_GEMINI_TOKEN' },
      timeout: 660_000,
    });
    expect(JSON.stringify(out)).not.toContain('skl_secret');
  });

  it('writes into an existing file keeping the other entries, and refuses to overwrite without --force', async () => {
    m.file('.mcp.json', { mcpServers: { other: { command: 'other-server' } }, keep: true });
    expect(await m.ok(['mcp', 'config', '--client', 'claude-code', '--agent-id', 'claude_code', '--write', '--file', m.path('.mcp.json')])).toMatch(
      /^wrote mcpServers\.skynet to /,
    );
    const written = JSON.parse(readFileSync(m.path('.mcp.json'), 'utf8'));
    expect(written).toEqual({
      mcpServers: { other: { command: 'other-server' }, skynet: { type: 'stdio', command: 'skynet-linker', args: ['mcp', '--agent-id', 'claude_code'] } },
      keep: true,
    });
    const again = await m.run(['mcp', 'config', '--client', 'claude-code', '--agent-id', 'someone_else', '--write', '--file', m.path('.mcp.json')]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already has mcpServers\.skynet; pass --force to replace it/);
    expect(JSON.parse(readFileSync(m.path('.mcp.json'), 'utf8'))).toEqual(written);

    m.file('config.toml', 'model = "gpt-5"\n\n[mcp_servers.skynet]\ncommand = "old"\n\n[profiles.x]\nmodel = "o3"\n');
    await m.ok(['mcp', 'config', '--client', 'codex', '--agent-id', 'codex', '--write', '--force', '--file', m.path('config.toml')]);
    expect(readFileSync(m.path('config.toml'), 'utf8')).toBe(
      'model = "gpt-5"\n\n[mcp_servers.skynet]\ncommand = "skynet-linker"\nargs = ["mcp", "--agent-id", "codex"]\ntool_timeout_sec = 660\n\n[profiles.x]\nmodel = "o3"\n',
    );
  });

  it('refuses bad flags with one line', async () => {
    const r = await m.run(['mcp', 'config', '--client', 'vscode', '--agent-id', 'x']);
    expect(r).toMatchObject({ code: 2, stdout: '', stderr: 'error: --client must be one of claude-code, codex, gemini-cli (got "vscode")\n' });
    const bad = await m.run(['mcp', 'config', '--client', 'codex', '--agent-id', 'x', '--token-env', 'not a name']);
    expect(bad).toMatchObject({ code: 2, stderr: 'error: --token-env must be an environment variable name (got "not a name")\n' });
  });
});

describe('guards from config.yaml, and sessions resume', () => {
  let m: Machine;
  let hub: Hub;
  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    m.file('config.yaml', 'guards:\n  max_hops: 1\n  pair_max_messages: 2\n');
    hub = await m.serve('embedded', ['--config', m.path('config.yaml')]);
    for (const id of ['a', 'b', 'c', 'd']) await m.ok(['agents', 'add', id]);
  }, 60_000);
  afterAll(async () => m?.dispose());

  it('refuses a chain longer than max_hops with LOOP_DETECTED', async () => {
    const first = (await m.ok(['send', '--agent-id', 'a', '--to', 'b', '--content', 'one'])).trim();
    const second = (await m.ok(['send', '--agent-id', 'b', '--to', 'a', '--reply-to', first, '--content', 'two'])).trim();
    const third = await m.run(['send', '--agent-id', 'a', '--to', 'b', '--reply-to', second, '--content', 'three']);
    expect(third.code).not.toBe(0);
    expect(third.stderr).toMatch(/^error: .*LOOP_DETECTED: this message would be hop 2 of a chain .* the hub allows 1/);
  });

  it('pauses a session at the pair limit and `sessions resume` reopens it', async () => {
    const send = () => m.run(['send', '--agent-id', 'c', '--to', 'd', '--content', 'again', '--session', 'sess_cli_loop']);
    expect((await send()).code).toBe(0);
    expect((await send()).code).toBe(0);
    const refused = await send();
    expect(refused.stderr).toMatch(/SESSION_PAUSED: session sess_cli_loop is paused by a loop guard \(c and d exchanged more than 2 messages/);
    expect(refused.stderr).toMatch(/skynet-linker sessions resume sess_cli_loop/);
    const shown = JSON.parse(await m.ok(['sessions', 'show', 'sess_cli_loop', '--format', 'json']));
    expect(shown.status).toBe('paused');
    const resumed = await m.ok(['sessions', 'resume', 'sess_cli_loop']);
    expect(resumed).toMatch(/^sess_cli_loop is active \(had been paused: c and d exchanged more than 2 messages/);
    expect((await send()).code).toBe(0);
    expect(hub.banner[0]).toMatch(/^Skynet Linker hub on /);
  });
});
