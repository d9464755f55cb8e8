/**
 * The rest of the command set, each command its own process against a `serve` process: agents
 * add/remove and `--token`, sessions, keys; and `--help`/`--version`, which need no hub.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, Machine, type Hub, type StoreKind } from './helpers.js';

const ISO = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`;
const B64_32 = /^[A-Za-z0-9+/]{43}=$/;
const HINT = 'run `skynet-linker --help` for the commands and `skynet-linker <command> --help` for their flags\n';

describe.each<StoreKind>(['redis', 'embedded'])('agents, sessions and keys commands on the %s store', (kind) => {
  let m: Machine;
  let hub: Hub;

  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    hub = await m.serve(kind);
  });
  afterAll(async () => {
    if (hub?.proc.running) expect((await hub.proc.stop('SIGTERM')).code).toBe(0);
    await m?.dispose();
  });

  it('agents add gives a token that works with --token, as that agent; agents remove revokes it', async () => {
    const [added, ops] = await Promise.all([
      m.ok(['agents', 'add', 'coder_bot', '--type', 'coder', '--format', 'json']),
      m.ok(['agents', 'add', 'ops', '--type', 'operator', '--scopes', 'monitor']),
    ]);
    const { token } = JSON.parse(added) as { token: string };
    expect(JSON.parse(added)).toEqual({ agent_id: 'coder_bot', agent_type: 'coder', scopes: ['agent'], token: expect.stringMatching(/^skl_/), existed: false });
    expect(ops).toMatch(/^added ops \(operator\) with scopes monitor\ntoken \(shown once\): skl_[A-Za-z0-9_-]+\n$/);

    // The acting agent is the token's agent: the session records coder_bot as the sender.
    const id = (await m.ok(['send', '--token', token, '--to', 'ops', '--type', 'task', '--content', 'build it', '--session', 'sess_tok'])).trim();
    const show = (await m.ok(['sessions', 'show', 'sess_tok'])).split('\n');
    expect(show[0]).toMatch(new RegExp(`^sess_tok \\[active\\] created by coder_bot at ${ISO}$`));
    expect(show[2]).toMatch(new RegExp(`^  ${ISO} coder_bot → ops: task \\(${id}\\)$`));

    const listed = JSON.parse(await m.ok(['agents', 'list', '--format', 'json'])) as { agent_id: string; agent_type: string; online: boolean }[];
    expect(listed.find((a) => a.agent_id === 'coder_bot')).toMatchObject({ agent_id: 'coder_bot', agent_type: 'coder', online: false });

    expect(await m.ok(['agents', 'remove', 'coder_bot'])).toBe('removed coder_bot (1 token revoked)\n');
    expect(await m.run(['send', '--token', token, '--to', 'ops', '--content', 'still there?'])).toEqual({
      code: 3,
      signal: null,
      stdout: '',
      stderr: 'error: UNAUTHORIZED: invalid token: this hub does not know it (revoked, mistyped, or issued by another hub)\n',
    });
    expect(await m.ok(['agents', 'list'])).not.toContain('coder_bot');
    expect(await m.run(['agents', 'remove', 'coder_bot'])).toMatchObject({ code: 4, stdout: '', stderr: 'error: NOT_FOUND: unknown agent coder_bot\n' });
  });

  it('an agent removed and added again can be used again from the hub machine (the cached token is renewed)', async () => {
    expect(await m.ok(['send', '--agent-id', 'phoenix', '--to', 'ops', '--content', 'first life'])).toMatch(/^[0-9a-f-]{36}\n$/);
    expect(await m.ok(['agents', 'remove', 'phoenix'])).toBe('removed phoenix (1 token revoked)\n');
    expect(await m.ok(['send', '--agent-id', 'phoenix', '--to', 'ops', '--content', 'second life'])).toMatch(/^[0-9a-f-]{36}\n$/);
  });

  it('sessions create, list, show, close', async () => {
    const created = await m.ok([
      'sessions',
      'create',
      '--agent-id',
      'claude_cli',
      '--id',
      'sess_cmd',
      '--participants',
      'claude_cli,gemini',
      '--goal',
      'Analyser et générer rapport',
    ]);
    expect(created).toBe('sess_cmd\n');
    expect((await m.ok(['sessions', 'list', '--agent-id', 'claude_cli'])).split('\n')).toContain('- sess_cmd [active] claude_cli, gemini');

    const show = (await m.ok(['sessions', 'show', 'sess_cmd', '--agent-id', 'claude_cli'])).split('\n');
    expect(show).toEqual([
      expect.stringMatching(new RegExp(`^sess_cmd \\[active\\] created by claude_cli at ${ISO}$`)),
      'participants: claude_cli, gemini',
      'goal: Analyser et générer rapport',
      '',
    ]);

    expect(await m.ok(['sessions', 'close', 'sess_cmd', '--agent-id', 'claude_cli'])).toBe('sess_cmd is completed\n');
    const [completed, json] = await Promise.all([
      m.ok(['sessions', 'list', '--status', 'completed']),
      m.ok(['sessions', 'show', 'sess_cmd', '--format', 'json']),
    ]);
    expect(completed.split('\n')).toContain('- sess_cmd [completed] claude_cli, gemini');
    expect(JSON.parse(json)).toMatchObject({
      session_id: 'sess_cmd',
      status: 'completed',
      created_by: 'claude_cli',
      participants: ['claude_cli', 'gemini'],
      metadata: { goal: 'Analyser et générer rapport' },
    });
    expect(await m.run(['sessions', 'show', 'sess_nope'])).toMatchObject({
      code: 4,
      stdout: '',
      stderr: expect.stringMatching(/^error: NOT_FOUND: .*sess_nope.*\n$/),
    });
  });

  it('keys generate --publish writes the key file and registers the public keys; keys show prints them', async () => {
    const keyFile = join(m.home, '.skynet_linker.keys');
    const generated = (await m.ok(['keys', 'generate', '--agent-id', 'a', '--publish'])).split('\n');
    expect(generated[0]).toBe(`keys for a written to ${keyFile} and published on the hub`);
    const box = /^box public key: {2}(\S+)$/.exec(generated[1] ?? '')?.[1];
    const sign = /^sign public key: (\S+)$/.exec(generated[2] ?? '')?.[1];
    expect(box).toMatch(B64_32);
    expect(sign).toMatch(B64_32);
    expect(generated[3]).toBe('');

    const [shown, json, registered] = await Promise.all([
      m.ok(['keys', 'show']),
      m.ok(['keys', 'show', '--agent-id', 'a', '--format', 'json']),
      m.ok(['agents', 'list', '--format', 'json']),
    ]);
    const lines = shown.split('\n');
    expect(lines[0]).toBe(`key file: ${keyFile}`);
    // serve keeps its at-rest key ring in the same file.
    expect(lines[1]).toMatch(/^at-rest keys: (\S+) \(active \1\)$/);
    expect(lines.slice(2)).toEqual([`- a: box ${box} sign ${sign}`, '']);
    expect(JSON.parse(json)).toEqual({
      key_file: keyFile,
      at_rest: { active_key_id: expect.any(String), key_ids: [expect.any(String)] },
      agents: [{ agent_id: 'a', box, sign, created_at: expect.stringMatching(new RegExp(`^${ISO}$`)) }],
    });
    const agentA = (JSON.parse(registered) as { agent_id: string; public_keys?: unknown }[]).find((x) => x.agent_id === 'a');
    expect(agentA?.public_keys).toEqual({ box, sign });

    expect(await m.run(['keys', 'generate', '--agent-id', 'a'])).toMatchObject({
      code: 7,
      stdout: '',
      stderr: `error: ${keyFile} already holds keys for a (use --force to replace them)\n`,
    });
    expect(await m.run(['keys', 'show', '--agent-id', 'nobody'])).toMatchObject({ code: 4, stderr: `error: no keys for nobody in ${keyFile}\n` });
  });
});

describe('--version and --help', () => {
  let m: Machine;
  beforeAll(() => {
    assertBuilt();
    m = new Machine();
  });
  afterAll(async () => m?.dispose());

  it('--version prints the package version', async () => {
    expect(await m.run(['--version'])).toEqual({ code: 0, signal: null, stdout: '0.1.0\n', stderr: '' });
  });

  it('--help on the root lists every command, without colours when not on a terminal', async () => {
    const r = await m.run(['--help']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).not.toMatch(/\x1b\[/);
    expect(r.stdout.split('\n').slice(0, 3)).toEqual(['Skynet Linker - 0.1.0', '', '  $ skynet-linker <command>']);
    const commands: [string, string][] = [
      ['serve', 'Start the hub'],
      ['connect', 'Connect as an agent and print incoming messages'],
      ['send', 'Send a message (prints its id, or the reply with --wait-reply)'],
      ['context push', 'Merge a JSON file into a shared context'],
      ['context pull', 'Fetch a shared context as JSON'],
      ['agents add', 'Register an agent and issue its token'],
      ['agents list', 'List agents with presence (cluster-wide)'],
      ['agents remove', 'Remove an agent and revoke its tokens'],
      ['monitor', 'Stream every routed message in real time'],
      ['sessions create', 'Create a collaboration session'],
      ['keys generate', "Generate an agent's end-to-end key pairs (NaCl box + Ed25519)"],
      ['snapshot restore', 'Replace the whole state with a snapshot'],
    ];
    for (const [command, description] of commands) {
      expect(r.stdout).toMatch(new RegExp(`^  skynet-linker ${command} .*\\n    ${description.replace(/[()+]/g, '\\$&')}$`, 'm'));
    }
  });

  it('--help on a command shows its flags and examples', async () => {
    const [connect, send, push, agentsList] = await Promise.all([
      m.run(['connect', '--help']),
      m.run(['send', '--help']),
      m.run(['context', 'push', '--help']),
      m.run(['agents', 'list', '--help']),
    ]);
    for (const r of [connect, send, push, agentsList]) expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(connect.stdout).toContain(
      '$ skynet-linker connect --agent-id claude_cli --agent-type planner --server ws://localhost:8000/ws --channel skynet_core\n',
    );
    expect(connect.stdout).toMatch(/^ {2}--agent-type <agent-type> +Agent type announced to the hub$/m);
    expect(send.stdout).toContain('$ skynet-linker send --agent-id claude_cli --to gemini --type task --content "Recherche sur les LLM quantiques"\n');
    expect(send.stdout).toContain('$ skynet-linker send --to gemini --type task --payload-file task.json\n');
    expect(send.stdout).toMatch(/^ {2}--wait-reply +Wait for the reply and print it$/m);
    expect(push.stdout).toContain('$ skynet-linker context push --agent-id claude_cli --context-file context.json\n');
    expect(agentsList.stdout).toContain('$ skynet-linker agents list\n');
  });

  it('--help on a command group lists its commands', async () => {
    expect(await m.run(['agents', '--help'])).toEqual({
      code: 0,
      signal: null,
      stdout: [
        'skynet-linker agents <command>; run `skynet-linker agents <command> --help` for its flags and examples',
        '',
        '  skynet-linker agents add <agent-id>',
        '    Register an agent and issue its token',
        '',
        '  skynet-linker agents list',
        '    List agents with presence (cluster-wide)',
        '',
        '  skynet-linker agents remove <agent-id>',
        '    Remove an agent and revoke its tokens',
        '',
      ].join('\n'),
      stderr: '',
    });
    expect(await m.run(['agents'])).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr: `error: \`skynet-linker agents\` needs a subcommand: add, list, remove\n${HINT}`,
    });
  });
});
