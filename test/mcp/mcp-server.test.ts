/**
 * `skynet-linker mcp` as a coding CLI sees it: the built CLI spawned by the MCP SDK's Client over
 * stdio, against a real hub (`serve`), with a real runtime agent answering and messages sent by
 * other agents through the CLI.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { assertBuilt, CLI, Machine, REPLY_AGENT, type Hub } from '../cli/helpers.js';

interface Session {
  client: Client;
  transport: StdioClientTransport;
  channel: { content: string; meta: Record<string, string> }[];
  stderr: () => string;
}

type ToolResult = { content: { type: string; text: string }[]; isError?: boolean };

function textOf(r: unknown): string {
  return (r as ToolResult).content.map((c) => c.text).join('');
}
function jsonOf(r: unknown): any {
  expect((r as ToolResult).isError ?? false, textOf(r)).toBe(false);
  return JSON.parse(textOf(r));
}

describe('skynet-linker mcp', () => {
  let m: Machine;
  let hub: Hub;
  const open: Session[] = [];

  async function startMcp(agentId: string): Promise<Session> {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'mcp', '--agent-id', agentId],
      env: { PATH: process.env.PATH ?? '', SKYNET_LINKER_HOME: m.home, SKYNET_LINKER_SERVER: hub.url },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const client = new Client({ name: 'test-cli', version: '1.0.0' });
    const channel: Session['channel'] = [];
    client.fallbackNotificationHandler = async (n) => {
      if (n.method === 'notifications/claude/channel') channel.push(n.params as Session['channel'][number]);
    };
    await client.connect(transport).catch((err: Error) => {
      throw new Error(`${err.message}\n--- mcp stderr ---\n${stderr}`);
    });
    const s = { client, transport, channel, stderr: () => stderr };
    open.push(s);
    return s;
  }

  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    hub = await m.serve('embedded');
    const added = JSON.parse(await m.ok(['agents', 'add', 'researcher', '--type', 'researcher', '--format', 'json']));
    const bot = m.spawn([hub.url, added.token, 'researcher'], { script: REPLY_AGENT });
    await bot.waitForLine('ready researcher');
  }, 60_000);

  afterAll(async () => {
    await Promise.all(open.map((s) => s.client.close().catch(() => {})));
    await m?.dispose();
  });

  it('lists the bus tools with their input schemas, the instructions and the channel capability', async () => {
    const s = await startMcp('claude_code');
    const { tools } = await s.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      ['context_pull', 'context_push', 'list_agents', 'reply', 'send_message', 'session_show', 'session_start', 'wait_for_messages', 'whoami'].sort(),
    );
    const send = tools.find((t) => t.name === 'send_message')!;
    expect(send.description).toMatch(/wait_for_reply_seconds/);
    expect(send.inputSchema).toMatchObject({
      type: 'object',
      properties: { to: { type: 'string' }, content: { type: 'string' }, wait_for_reply_seconds: { type: 'integer', maximum: 600 } },
      required: ['content'],
    });
    const wait = tools.find((t) => t.name === 'wait_for_messages')!;
    expect(wait.inputSchema.properties).toMatchObject({ timeout_seconds: { default: 30, maximum: 600 }, max: { default: 10 } });
    expect(s.client.getServerCapabilities()?.experimental).toEqual({ 'claude/channel': {} });
    expect(s.client.getInstructions()).toMatch(/wait_for_messages/);
    expect(jsonOf(await s.client.callTool({ name: 'whoami', arguments: {} }))).toEqual({ agent_id: 'claude_code', agent_type: 'agent', scopes: ['agent'] });
    const agents = jsonOf(await s.client.callTool({ name: 'list_agents', arguments: {} }));
    expect(agents).toContainEqual(expect.objectContaining({ agent_id: 'researcher', agent_type: 'researcher', online: true }));
    await s.client.close();
  });

  it('asks a runtime agent with send_message and wait_for_reply_seconds and returns its reply', async () => {
    const s = await startMcp('claude_code');
    const r = jsonOf(await s.client.callTool({ name: 'send_message', arguments: { to: 'researcher', content: 'Résume RAG', wait_for_reply_seconds: 30 } }));
    expect(r.message_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.reply).toMatchObject({
      from: 'researcher',
      type: 'reply',
      parent_message_id: r.message_id,
      content: 'Voici 10 papiers récents sur: Résume RAG',
      hops: 1,
    });
    await s.client.close();
  });

  it('hands over a message another agent sent through the CLI, pushes it as a channel notification, and answers it with reply', async () => {
    const s = await startMcp('claude_code');
    const sent = (await m.ok(['send', '--agent-id', 'alice', '--to', 'claude_code', '--content', 'review PR 42', '--session', 'sess_mcp'])).trim();
    const got = jsonOf(await s.client.callTool({ name: 'wait_for_messages', arguments: { timeout_seconds: 20 } }));
    expect(got.messages).toHaveLength(1);
    expect(got.messages[0]).toMatchObject({
      message_id: sent,
      from: 'alice',
      to: 'claude_code',
      type: 'task',
      session_id: 'sess_mcp',
      content: 'review PR 42',
    });
    await vi.waitFor(
      () => expect(s.channel).toContainEqual({ content: 'review PR 42', meta: { from: 'alice', message_id: sent, type: 'task', session_id: 'sess_mcp' } }),
      { timeout: 10_000 },
    );
    const answered = jsonOf(await s.client.callTool({ name: 'reply', arguments: { message_id: sent, content: 'LGTM' } }));
    expect(answered.to).toBe('alice');
    const history = JSON.parse(await m.ok(['sessions', 'show', 'sess_mcp', '--format', 'json']));
    expect(history.messages.map((x: { from: string; type: string }) => `${x.from}:${x.type}`)).toEqual(['alice:task', 'claude_code:reply']);
    await s.client.close();
  });

  it('delivers a message that waited while the server was killed once, after a restart', async () => {
    const first = await startMcp('codex_cli');
    const sent = (await m.ok(['send', '--agent-id', 'alice', '--to', 'codex_cli', '--content', 'survive the crash'])).trim();
    // The first server has it (pushed as a notification) but the model never took it.
    await vi.waitFor(() => expect(first.channel.map((c) => c.meta.message_id)).toContain(sent), { timeout: 10_000 });
    const pid = first.transport.pid!;
    process.kill(pid, 'SIGKILL');
    await vi.waitFor(() => expect(() => process.kill(pid, 0)).toThrow(), { timeout: 10_000 });

    const second = await startMcp('codex_cli');
    const got = jsonOf(await second.client.callTool({ name: 'wait_for_messages', arguments: { timeout_seconds: 20 } }));
    expect(got.messages.map((x: { message_id: string }) => x.message_id)).toEqual([sent]);
    // The next call acknowledges it: it is not handed again, here or by the next server.
    const again = jsonOf(await second.client.callTool({ name: 'wait_for_messages', arguments: { timeout_seconds: 1 } }));
    expect(again).toEqual({ messages: [], timed_out: true });
    await second.client.close();
    const third = await startMcp('codex_cli');
    const none = jsonOf(await third.client.callTool({ name: 'wait_for_messages', arguments: { timeout_seconds: 1 } }));
    expect(none).toEqual({ messages: [], timed_out: true });
    await third.client.close();
  });

  it('answers bad input and hub refusals with tool errors, and keeps serving', async () => {
    const s = await startMcp('gemini_cli');
    const badType = (await s.client.callTool({ name: 'send_message', arguments: { to: 'researcher', content: 5 } })) as ToolResult;
    expect(badType.isError).toBe(true);
    expect(textOf(badType)).toMatch(/content/);
    const noRoute = (await s.client.callTool({ name: 'send_message', arguments: { content: 'to nobody' } })) as ToolResult;
    expect(noRoute).toMatchObject({ isError: true, content: [{ type: 'text', text: 'give `to` (an agent id) or `channel`' }] });
    const unknownReply = (await s.client.callTool({ name: 'reply', arguments: { message_id: 'nope', content: 'x' } })) as ToolResult;
    expect(unknownReply.isError).toBe(true);
    expect(textOf(unknownReply)).toMatch(/no message nope was delivered to you/);
    const unknownAgent = (await s.client.callTool({ name: 'send_message', arguments: { to: 'ghost', content: 'hello?' } })) as ToolResult;
    expect(unknownAgent.isError).toBe(true);
    expect(textOf(unknownAgent)).toMatch(/ghost/);
    const forbidden = (await s.client.callTool({ name: 'context_pull', arguments: { scope: 'agent:researcher' } })) as ToolResult;
    expect(forbidden.isError).toBe(true);
    expect(textOf(forbidden)).toMatch(/FORBIDDEN/);
    // Still serving after all that.
    expect(jsonOf(await s.client.callTool({ name: 'context_push', arguments: { scope: 'global', patch: { finding: 'x' } } }))).toMatchObject({
      scope: 'global',
    });
    expect(jsonOf(await s.client.callTool({ name: 'context_pull', arguments: { scope: 'global' } })).data).toMatchObject({ finding: 'x' });
    await s.client.close();
  });
});
