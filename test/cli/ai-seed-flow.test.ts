/**
 * The seed's flow with AIs doing the coordinating: a human asks the planner (an OpenAI model
 * stand-in behind `connect --connector openai --bus-tools`), which decides to delegate to the
 * researcher (an Anthropic model stand-in behind its own `connect`), shares its plan and the
 * outcome in the session context with the bus tools, and answers. All as CLI processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeVendor, RecordedRequest } from '../connectors/fake-vendor.js';
import { KEY, startScriptedModel, TOOL_VENDORS, type Turn } from '../connectors/tool-vendors.js';
import { assertBuilt, Machine, type Hub } from './helpers.js';

const openai = TOOL_VENDORS.find((v) => v.name === 'openai')!;
const anthropic = TOOL_VENDORS.find((v) => v.name === 'anthropic')!;

/** The planner's model: plan, delegate and wait, record the outcome, answer. */
function plannerModel(req: RecordedRequest, i: number): Turn {
  if (i === 0) {
    return {
      calls: [
        { name: 'context_push', args: { scope: 'session:sess_123', patch: { plan: 'ask the researcher for recent papers, then summarize' } } },
        { name: 'send_message', args: { to: 'gemini', content: 'Recherche sur les LLM quantiques', wait_for_reply_seconds: 60 } },
      ],
    };
  }
  if (i === 1) {
    const [, delegated] = openai.toolResults(req);
    // A connector agent's reply content is { content, connector, usage }.
    const reply = JSON.parse(delegated!).reply;
    return { calls: [{ name: 'context_push', args: { scope: 'session:sess_123', patch: { outcome: `researcher said: ${reply.content.content}` } } }] };
  }
  return { text: 'Rapport: 10 papiers récents trouvés par gemini, résumé dans le contexte de la session.' };
}

/** The researcher's model: read the plan from the session context, add its findings, answer. */
function researcherModel(req: RecordedRequest, i: number): Turn {
  if (i === 0) return { calls: [{ name: 'context_pull', args: { scope: 'session:sess_123' } }] };
  if (i === 1) {
    const pulled = JSON.parse(anthropic.toolResults(req)[0]!);
    return { calls: [{ name: 'context_push', args: { scope: 'session:sess_123', patch: { findings: ['paper A', 'paper B'], read_plan: pulled.data.plan } } }] };
  }
  return { text: 'Voici 10 papiers récents sur les LLM quantiques' };
}

describe('the seed flow with an AI planner delegating to an AI researcher', () => {
  let m: Machine;
  let _hub: Hub;
  let plannerApi: FakeVendor;
  let researcherApi: FakeVendor;

  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    _hub = await m.serve('redis');
    plannerApi = await startScriptedModel(openai, plannerModel);
    researcherApi = await startScriptedModel(anthropic, researcherModel);
  }, 60_000);

  afterAll(async () => {
    await m?.dispose();
    await plannerApi?.close();
    await researcherApi?.close();
  });

  it('plans, delegates through the hub, shares the work in the session context and answers', async () => {
    const planner = m.spawn(['connect', '--agent-id', 'claude', '--agent-type', 'planner', '--connector', 'openai', '--bus-tools'], {
      env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: openai.baseUrl(plannerApi.url) },
    });
    const researcher = m.spawn(['connect', '--agent-id', 'gemini', '--agent-type', 'researcher', '--connector', 'anthropic', '--bus-tools'], {
      env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: anthropic.baseUrl(researcherApi.url) },
    });
    await planner.waitForLine(/^answering tasks with openai/, { stream: 'stderr' });
    await researcher.waitForLine(/^answering tasks with anthropic/, { stream: 'stderr' });

    await m.ok(['sessions', 'create', '--id', 'sess_123', '--participants', 'human,claude,gemini', '--goal', 'Analyser et générer rapport']);
    const asked = await m.run(
      [
        'send',
        '--agent-id',
        'human',
        '--to',
        'claude',
        '--content',
        'Prépare un rapport sur les LLM quantiques',
        '--session',
        'sess_123',
        '--wait-reply',
        '--timeout',
        '90s',
        '--format',
        'json',
      ],
      {
        timeoutMs: 100_000,
      },
    );
    // stderr says only which task it waits for (send --wait-reply's id line).
    expect(asked.stderr).toMatch(/^sent [0-9a-f-]{36} to \w+; waiting up to \d+s for the reply \(Ctrl-C to stop\)\n$/);
    expect(asked.code).toBe(0);
    const reply = JSON.parse(asked.stdout);
    expect(reply).toMatchObject({
      from_agent: 'claude',
      to_agent: 'human',
      type: 'reply',
      payload: { content: { content: 'Rapport: 10 papiers récents trouvés par gemini, résumé dans le contexte de la session.', connector: 'openai' } },
    });

    // The researcher's model saw the planner's delegated task (in its prompt) and the plan (through context_pull).
    expect(anthropic.promptOf(researcherApi.requests[0]!)).toContain('Recherche sur les LLM quantiques');
    // The planner's model got the researcher's answer as its tool result.
    expect(openai.toolResults(plannerApi.requests[1]!)[1]).toContain('Voici 10 papiers récents sur les LLM quantiques');

    const context = JSON.parse(await m.ok(['context', 'pull', '--scope', 'session:sess_123']));
    expect(context.data).toEqual({
      plan: 'ask the researcher for recent papers, then summarize',
      findings: ['paper A', 'paper B'],
      read_plan: 'ask the researcher for recent papers, then summarize',
      outcome: 'researcher said: Voici 10 papiers récents sur les LLM quantiques',
    });
    expect(context.version).toBe(3);

    const session = JSON.parse(await m.ok(['sessions', 'show', 'sess_123', '--format', 'json']));
    expect(session.messages.map((x: { from: string; to: string; type: string }) => `${x.from}→${x.to}:${x.type}`)).toEqual([
      'human→claude:task',
      'claude→gemini:task',
      'gemini→claude:reply',
      'claude→human:reply',
    ]);
    expect(plannerApi.requests).toHaveLength(3);
    expect(researcherApi.requests).toHaveLength(3);
  }, 120_000);
});
