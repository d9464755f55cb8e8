/**
 * End to end through a real hub on Redis: a planner sends tasks with `request()`; an agent run by
 * the openai connector answers through a fake OpenAI server. The planner gets replies with the
 * right parent id; the session and the shared context show the exchange; the vendor saw the shared
 * context and the earlier turns of the session in its prompt; a vendor error reaches the planner
 * as a failed reply and the connector agent keeps answering.
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createConnector } from '../../clients/connectors/registry.js';
import { runConnectorAgent, type AnswerEvent } from '../../clients/connectors/runtime.js';
import type { LinkerAgent } from '../../clients/agent.js';
import { startTestHub, type TestHub } from '../hub/harness.js';
import { sendJson, startFakeVendor, type FakeVendor } from './fake-vendor.js';

function completion(text: string) {
  return {
    id: 'chatcmpl-e2e',
    object: 'chat.completion',
    created: 1741570283,
    model: 'gpt-5-mini-2025-08-07',
    choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 311, completion_tokens: 27, total_tokens: 338 },
  };
}

const userPrompt = (body: any): string => (body.messages as { role: string; content: string }[]).find((m) => m.role === 'user')!.content;

describe('a connector agent on the bus', () => {
  let t: TestHub | undefined;
  let fake: FakeVendor | undefined;
  let chatgpt: LinkerAgent | undefined;
  afterEach(async () => {
    await chatgpt?.close();
    await t?.close();
    await fake?.close();
    chatgpt = t = fake = undefined;
  });

  it('answers a planner’s tasks via the vendor, with the shared context and the session history', async () => {
    const answers = ['RAG pairs a retriever with a generator (Lewis et al., 2020).', 'Start with the 2023 survey by Gao et al.'];
    fake = await startFakeVendor((req, res, i) => {
      if (req.method !== 'POST' || req.path !== '/v1/chat/completions' || req.headers.authorization !== 'Bearer sk-e2e-key') {
        return sendJson(res, 404, { error: { message: `unexpected ${req.method} ${req.path}`, type: 'invalid_request_error', code: null } });
      }
      sendJson(res, 200, completion(answers[i] ?? 'extra'));
    });
    t = await startTestHub('redis');
    await t.addAgent('planner', { type: 'planner' });
    const token = await t.addAgent('chatgpt', { type: 'researcher' });
    const planner = await t.agent('planner');
    await planner.trpc.context.push.mutate({ scope: 'global', patch: { project: 'skynet', marker: 'GLOBAL-MARK-3301' } });
    await planner.trpc.context.push.mutate({ scope: 'session:sess_e2e', patch: { goal: 'survey RAG', marker: 'SESSION-MARK-8812' } });

    const connector = await createConnector('openai', { env: { OPENAI_API_KEY: 'sk-e2e-key', OPENAI_BASE_URL: `${fake.url}/v1` }, maxRetries: 0 });
    const events: AnswerEvent[] = [];
    chatgpt = await runConnectorAgent({
      url: t.hub.url,
      token,
      agentId: 'chatgpt',
      WebSocket,
      connector,
      pushContextSummary: true,
      onAnswer: (e) => events.push(e),
    });
    await chatgpt.ready;

    const first = await planner.request('chatgpt', 'What is RAG?', { sessionId: 'sess_e2e', timeoutMs: 15_000 });
    expect(first.envelope.type).toBe('reply');
    expect(first.envelope.from_agent).toBe('chatgpt');
    expect(first.envelope.to_agent).toBe('planner');
    expect(first.envelope.payload.context.session_id).toBe('sess_e2e');
    expect(first.content).toEqual({
      content: answers[0],
      connector: 'openai',
      usage: { model: 'gpt-5-mini-2025-08-07', input_tokens: 311, output_tokens: 27, latency_ms: expect.any(Number) },
    });

    // The session records the exchange, and the reply points at the task.
    let session = await planner.trpc.sessions.get.query({ session_id: 'sess_e2e' });
    expect(session.participants.sort()).toEqual(['chatgpt', 'planner']);
    expect(session.messages.map((m) => [m.from, m.to, m.type])).toEqual([
      ['planner', 'chatgpt', 'task'],
      ['chatgpt', 'planner', 'reply'],
    ]);
    const firstTaskId = session.messages[0]!.message_id;
    expect(first.envelope.payload.context.parent_message_id).toBe(firstTaskId);

    // The vendor saw the shared context (global and session) and the task.
    const prompt1 = userPrompt(fake.requests[0]!.body);
    for (const marker of ['GLOBAL-MARK-3301', 'SESSION-MARK-8812', 'What is RAG?', `message ${firstTaskId}`]) expect(prompt1).toContain(marker);

    // The summary was pushed into the session's context before the reply was sent.
    const ctx = await planner.trpc.context.pull.query({ scope: 'session:sess_e2e' });
    expect(ctx.data.goal).toBe('survey RAG');
    expect(ctx.data.last_answer).toMatchObject({
      agent: 'chatgpt',
      connector: 'openai',
      task_id: firstTaskId,
      from: 'planner',
      model: 'gpt-5-mini-2025-08-07',
      summary: answers[0],
    });
    expect(ctx.updated_by).toBe('chatgpt');

    // A second task in the same session: the prompt quotes the earlier turns, question and answer.
    const second = await planner.request('chatgpt', 'Which paper should I read first?', { sessionId: 'sess_e2e', timeoutMs: 15_000 });
    expect((second.content as { content: string }).content).toBe(answers[1]);
    const prompt2 = userPrompt(fake.requests[1]!.body);
    expect(prompt2).toContain('Recent messages of session sess_e2e');
    expect(prompt2).toContain('What is RAG?');
    expect(prompt2).toContain(answers[0]);
    expect(prompt2).toContain('Which paper should I read first?');
    session = await planner.trpc.sessions.get.query({ session_id: 'sess_e2e' });
    expect(session.messages).toHaveLength(4);
    expect(second.envelope.payload.context.parent_message_id).toBe(session.messages[2]!.message_id);
    // onAnswer runs once the hub has accepted the reply, which may be just after the planner has it.
    await expect
      .poll(() => events.map((e) => [e.ok, e.from, e.session_id]))
      .toEqual([
        [true, 'planner', 'sess_e2e'],
        [true, 'planner', 'sess_e2e'],
      ]);
  });

  it('a vendor error reaches the planner as a failed reply, and the agent keeps answering', async () => {
    fake = await startFakeVendor((_req, res, i) => {
      if (i === 0) {
        return sendJson(res, 401, {
          error: { message: 'Incorrect API key provided: sk-bad***key.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
        });
      }
      sendJson(res, 200, completion('back to normal'));
    });
    t = await startTestHub('redis');
    await t.addAgent('planner');
    const token = await t.addAgent('chatgpt');
    const planner = await t.agent('planner');
    chatgpt = await runConnectorAgent({
      url: t.hub.url,
      token,
      agentId: 'chatgpt',
      WebSocket,
      connector: await createConnector('openai', { env: { OPENAI_API_KEY: 'sk-bad-key', OPENAI_BASE_URL: `${fake.url}/v1` } }),
    });
    await chatgpt.ready;

    const failed = await planner.request('chatgpt', 'Anything', { timeoutMs: 15_000 });
    expect(failed.envelope.type).toBe('reply');
    expect(failed.content).toEqual({ failed: true, error: expect.stringMatching(/^openai: HTTP 401 invalid_api_key: Incorrect API key provided/) });
    expect(chatgpt.state).toBe('live');

    const ok = await planner.request('chatgpt', 'Again', { timeoutMs: 15_000 });
    expect((ok.content as { content: string }).content).toBe('back to normal');
    // No session: nothing was pushed (push is off by default) and the prompt has no history section.
    expect(userPrompt(fake.requests[1]!.body)).not.toContain('Recent messages');
  });
});
