/**
 * Function calling in the API connectors: a planner agent whose model (a vendor stand-in that
 * answers with tool calls in the vendor's real shape) delegates to a researcher agent through
 * the hub with send_message + wait_for_reply_seconds, reads the reply from the tool result and
 * answers; bad tool calls come back to the model as errors; the round limit ends a model that
 * never stops calling tools.
 */
import { afterEach, describe, expect, it } from 'vitest';
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
    const agent = await runConnectorAgent({ url: t.hub.url, token, agentId: 'planner', WebSocket: (await import('ws')).default, connector, busTools: maxRounds ? { maxRounds } : true });
    await agent.ready;
    return agent;
  }

  it('delegates to another agent through the hub and answers with what it replied', async () => {
    t = await startTestHub('embedded');
    const researcherSeen: { content: unknown; caused_by?: string | null; hops?: number; session?: string | null }[] = [];
    await t.agent('researcher', {
      onTask: (m) => {
        researcherSeen.push({ content: m.content, caused_by: m.envelope.payload.context.caused_by, hops: m.envelope.hops, session: m.envelope.payload.context.session_id });
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
    expect(answer.content).toMatchObject({ content: 'Plan based on: RAG-PAPERS-5521: Lewis 2020, Gao 2023', connector: vendor.name, usage: { input_tokens: 240, output_tokens: 60 } });

    // The model saw the bus tools for API models (not the MCP-only ones), with their schemas.
    const first = fake.requests[0]!;
    expect(vendor.toolNames(first).sort()).toEqual(['context_pull', 'context_push', 'list_agents', 'send_message', 'session_show', 'session_start', 'whoami']);
    expect(vendor.toolSchema(first, 'send_message')).toMatchObject({ type: 'object', properties: { to: { type: 'string' }, wait_for_reply_seconds: { type: 'integer' } }, required: ['content'] });
    expect(vendor.promptOf(first)).toContain('plan a RAG survey');
    expect(fake.requests).toHaveLength(2);
    // The delegated task is caused by the planner's task (the hub counts it as hop 1), in its session.
    expect(researcherSeen).toEqual([{ content: 'find the key RAG papers', caused_by: answer.envelope.payload.context.parent_message_id, hops: 1, session: 'sess_plan' }]);
  });

  it('gives bad tool calls back to the model as errors, and hub refusals too', async () => {
    t = await startTestHub('embedded');
    const results: string[][] = [];
    fake = await startScriptedModel(vendor, (req, i) => {
      if (i > 0) results.push(vendor.toolResults(req));
      if (i === 0) return { calls: [{ name: 'send_message', args: { to: 'ghost', content: 'anyone?' } }, { name: 'no_such_tool', args: {} }] };
      if (i === 1) return { calls: [{ name: 'context_push', args: { scope: 'agent:someone_else', patch: { x: 1 } } }, { name: 'send_message', args: { content: 5 } }] };
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
    expect(answer.content).toMatchObject({ failed: true, error: `${vendor.name}: the model was still calling tools after 3 rounds (the limit per task); no answer` });
    // The first request and three rounds of answered calls: four requests, no more.
    expect(fake.requests).toHaveLength(4);
    expect(JSON.parse(vendor.toolResults(fake.requests[3]!)[0]!)).toEqual({ agent_id: 'planner', agent_type: 'planner', scopes: ['agent'] });
  });
});
