/**
 * Function calling in the API connectors: a planner agent whose model (a vendor stand-in that
 * answers with tool calls in the vendor's real shape) delegates to a researcher agent through
 * the hub with send_message + wait_for_reply_seconds, reads the reply from the tool result and
 * answers; bad tool calls come back to the model as errors; the round limit ends a model that
 * never stops calling tools.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runConnectorAgent } from '../../clients/connectors/runtime.js';
import { startTestHub, type TestHub } from '../hub/harness.js';
import type { FakeVendor } from './fake-vendor.js';
import { connectorEnv, startScriptedModel, TOOL_VENDORS } from './tool-vendors.js';

describe.each(TOOL_VENDORS)('$name connector with the bus tools', (vendor) => {
  let t: TestHub;
  let fake: FakeVendor | undefined;
  afterEach(async () => {
    await t?.close();
    await fake?.close();
    fake = undefined;
  });

  async function planner(maxRounds?: number) {
    const token = await t.addAgent('planner', { type: 'planner' });
    const connector = await vendor.def.create({ env: connectorEnv(vendor, fake!.url) });
    const agent = await runConnectorAgent({
      url: t.hub.url,
      token,
      agentId: 'planner',
      WebSocket: (await import('ws')).default,
      connector,
      busTools: maxRounds ? { maxRounds } : true,
    });
    await agent.ready;
    return agent;
  }

  it('delegates to another agent through the hub and answers with what it replied', async () => {
    t = await startTestHub('embedded');
    const researcherSeen: { content: unknown; caused_by?: string | null; hops?: number; session?: string | null }[] = [];
    await t.agent('researcher', {
      onTask: (m) => {
        researcherSeen.push({
          content: m.content,
          caused_by: m.envelope.payload.context.caused_by,
          hops: m.envelope.hops,
          session: m.envelope.payload.context.session_id,
        });
        return 'RAG-PAPERS-5521: Lewis 2020, Gao 2023';
      },
    });
    fake = await startScriptedModel(vendor, (req, i) => {
      if (i === 0) return { calls: [{ name: 'send_message', args: { to: 'researcher', content: 'find the key RAG papers', wait_for_reply_seconds: 20 } }] };
      const [result] = vendor.toolResults(req);
      const parsed = JSON.parse(result!);
      return { text: `Plan based on: ${parsed.reply.content}` };
    });
    await planner();
    const human = await t.agent('human');
    const answer = await human.request('planner', 'plan a RAG survey', { sessionId: 'sess_plan', timeoutMs: 20_000 });
    expect(answer.content).toMatchObject({
      content: 'Plan based on: RAG-PAPERS-5521: Lewis 2020, Gao 2023',
      connector: vendor.name,
      usage: { input_tokens: 240, output_tokens: 60 },
    });

    // The model saw the bus tools for API models (not the MCP-only ones), with their schemas.
    const first = fake.requests[0]!;
    expect(vendor.toolNames(first).sort()).toEqual(['context_pull', 'context_push', 'list_agents', 'send_message', 'session_show', 'session_start', 'whoami']);
    expect(vendor.toolSchema(first, 'send_message')).toMatchObject({
      type: 'object',
      properties: { to: { type: 'string' }, wait_for_reply_seconds: { type: 'integer' } },
      required: ['content'],
    });
    expect(vendor.promptOf(first)).toContain('plan a RAG survey');
    expect(fake.requests).toHaveLength(2);
    // The delegated task is caused by the planner's task (the hub counts it as hop 1), in its session.
    expect(researcherSeen).toEqual([
      { content: 'find the key RAG papers', caused_by: answer.envelope.payload.context.parent_message_id, hops: 1, session: 'sess_plan' },
    ]);
  });

  it('gives bad tool calls back to the model as errors, and hub refusals too', async () => {
    t = await startTestHub('embedded');
    const results: string[][] = [];
    fake = await startScriptedModel(vendor, (req, i) => {
      if (i > 0) results.push(vendor.toolResults(req));
      if (i === 0)
        return {
          calls: [
            { name: 'send_message', args: { to: 'ghost', content: 'anyone?' } },
            { name: 'no_such_tool', args: {} },
          ],
        };
      if (i === 1)
        return {
          calls: [
            { name: 'context_push', args: { scope: 'agent:someone_else', patch: { x: 1 } } },
            { name: 'send_message', args: { content: 5 } },
          ],
        };
      return { text: 'gave up politely' };
    });
    await planner();
    const human = await t.agent('human');
    const answer = await human.request('planner', 'try things', { timeoutMs: 20_000 });
    expect(answer.content).toMatchObject({ content: 'gave up politely' });
    expect(results[0]![0]).toMatch(/^error: NOT_FOUND: .*ghost/);
    expect(results[0]![1]).toMatch(/^error: unknown tool "no_such_tool"; the tools are whoami, list_agents, send_message/);
    expect(results[1]![0]).toMatch(/^error: FORBIDDEN: writing the context of someone_else needs the admin scope/);
    expect(results[1]![1]).toMatch(/^error: bad arguments for send_message: .*content/);
  });

  it('stops a model that keeps calling tools after the round limit and replies with the failure', async () => {
    t = await startTestHub('embedded');
    fake = await startScriptedModel(vendor, () => ({ calls: [{ name: 'whoami', args: {} }] }));
    await planner(3);
    const human = await t.agent('human');
    const answer = await human.request('planner', 'loop forever', { timeoutMs: 20_000 });
    expect(answer.content).toMatchObject({
      failed: true,
      error: `${vendor.name}: the model was still calling tools after 3 rounds (the limit per task); no answer`,
    });
    // The first request and three rounds of answered calls: four requests, no more.
    expect(fake.requests).toHaveLength(4);
    expect(JSON.parse(vendor.toolResults(fake.requests[3]!)[0]!)).toEqual({ agent_id: 'planner', agent_type: 'planner', scopes: ['agent'] });
  });
});

describe('a looping pair of API connectors', () => {
  let t: TestHub;
  const fakes: FakeVendor[] = [];
  afterEach(async () => {
    await t?.close();
    await Promise.all(fakes.splice(0).map((f) => f.close()));
  });

  /** Two openai-model agents whose models answer every task by sending a new task to the other. */
  async function pair(sessionId?: string) {
    const openai = TOOL_VENDORS.find((v) => v.name === 'openai')!;
    const refusals: string[] = [];
    const WebSocket = (await import('ws')).default;
    for (const [self, other] of [
      ['ping', 'pong'],
      ['pong', 'ping'],
    ] as const) {
      const fake = await startScriptedModel(openai, (req) => {
        const results = openai.toolResults(req);
        if (results.length === 0)
          return { calls: [{ name: 'send_message', args: { to: other, content: `your turn, ${other}`, ...(sessionId ? { session_id: sessionId } : {}) } }] };
        if (results[0]!.startsWith('error: ')) refusals.push(`${self}: ${results[0]}`);
        return { text: results[0]!.startsWith('error: ') ? 'the hub stopped us' : 'sent' };
      });
      fakes.push(fake);
      const token = await t.addAgent(self);
      const connector = await openai.def.create({ env: connectorEnv(openai, fake.url) });
      const agent = await runConnectorAgent({ url: t.hub.url, token, agentId: self, WebSocket, connector, busTools: true });
      await agent.ready;
    }
    return refusals;
  }

  it('is stopped at max_hops: each new task is caused by the one in hand', async () => {
    t = await startTestHub('embedded', { guards: { maxHops: 4 } });
    const refusals = await pair();
    const starter = await t.agent('starter');
    await starter.send({ to_agent: 'ping', type: 'task', payload: { content: 'go' } });
    await vi.waitFor(() => expect(refusals).toHaveLength(1), { timeout: 20_000 });
    expect(refusals[0]).toMatch(/^ping: error: CONFLICT: LOOP_DETECTED: this message would be hop 5 of a chain/);
    const ops = t.client(await t.addAgent('ops', { scopes: ['agent', 'admin'] })).trpc;
    const hopsIn = async (agent: string) =>
      (await ops.messages.history.query({ agent_id: agent })).items
        .filter((i) => i.message.type === 'task')
        .map((i) => i.message.hops ?? 0)
        .sort();
    expect(await hopsIn('ping')).toEqual([0, 2, 4]);
    expect(await hopsIn('pong')).toEqual([1, 3]);
  });

  it('pauses their session at the pair limit, before max_hops', async () => {
    t = await startTestHub('embedded', { guards: { maxHops: 1000, pairMaxMessages: 5 } });
    const refusals = await pair('sess_pingpong');
    const starter = await t.agent('starter');
    await starter.send({ to_agent: 'ping', type: 'task', payload: { content: 'go', context: { session_id: 'sess_pingpong' } } });
    await vi.waitFor(() => expect(refusals).toHaveLength(1), { timeout: 20_000 });
    expect(refusals[0]).toMatch(/SESSION_PAUSED: session sess_pingpong is paused by a loop guard \(ping and pong exchanged more than 5 messages/);
    const session = await t.hub.memory.sessions.require('sess_pingpong');
    expect(session.status).toBe('paused');
  });
});
