/**
 * The connectors through the built CLI (`node dist/bin/skynet-linker.js`, `npm run build` first):
 * `connectors list` (keys never printed), a missing key refused at start, and `connect
 * --connector` answering `send --wait-reply` through a fake vendor and through a program.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, jsonLines, Machine, type Hub } from '../cli/helpers.js';
import { sendJson, startFakeVendor, type FakeVendor } from './fake-vendor.js';

const ECHO = fileURLToPath(new URL('../fixtures/connectors/echo-prompt.mjs', import.meta.url));

describe('connectors through the CLI', () => {
  let m: Machine;
  let hub: Hub;
  let fake: FakeVendor;

  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    fake = await startFakeVendor((req, res) => {
      const prompt = (req.body?.messages ?? []).map((x: { content: string }) => x.content).join('\n');
      sendJson(res, 200, {
        id: 'chatcmpl-cli',
        object: 'chat.completion',
        created: 1741570283,
        model: req.body?.model ?? '?',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: `seen ${prompt.includes('CLI-CTX-6610') ? 'the shared context' : 'no context'}` },
            finish_reason: 'stop',
          },
        ],
        usage: { prompt_tokens: 90, completion_tokens: 5, total_tokens: 95 },
      });
    });
    hub = await m.serve('redis');
  });
  afterAll(async () => {
    if (hub?.proc.running) await hub.proc.stop('SIGTERM');
    await m?.dispose();
    await fake?.close();
  });

  it('connectors list says which keys are set without printing them', async () => {
    const secret = 'sk-cli-secret-value-31337';
    const text = await m.ok(['connectors', 'list'], { env: { OPENAI_API_KEY: secret, ANTHROPIC_API_KEY: undefined } });
    expect(text).toMatch(/^openai\s+ready\s+ChatGPT/m);
    expect(text).toContain('OPENAI_API_KEY is set');
    expect(text).toMatch(/^anthropic\s+not ready/m);
    expect(text).toContain('ANTHROPIC_API_KEY is not set');
    expect(text).toMatch(/^codex\s+/m);
    expect(text).not.toContain(secret);
    const rows = jsonLines(await m.ok(['connectors', 'list', '--format', 'json'], { env: { OPENAI_API_KEY: secret } }));
    expect(rows.map((r) => r.name)).toEqual(['anthropic', 'openai', 'gemini', 'perplexity', 'command', 'codex', 'claude-cli', 'gemini-cli']);
    expect(rows.find((r) => r.name === 'openai')).toMatchObject({ ready: true, kind: 'api', default: 'gpt-5-mini' });
    expect(JSON.stringify(rows)).not.toContain(secret);
  });

  it('connect --connector refuses to start without the key (exit 2, one line)', async () => {
    const r = await m.run(['connect', '--agent-id', 'chatgpt', '--connector', 'openai'], { env: { OPENAI_API_KEY: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: openai: no API key: OPENAI_API_KEY is not set (export OPENAI_API_KEY=..., or name another variable with api_key_env under connectors.openai in config.yaml)\n',
    );
  });

  it('connect --connector openai answers send --wait-reply with the shared context, and pushes its summary', async () => {
    await m.ok(['context', 'push', '--scope', 'global', '--context-file', m.file('ctx.json', { marker: 'CLI-CTX-6610' })]);
    const agent = m.spawn(
      ['connect', '--agent-id', 'chatgpt', '--agent-type', 'researcher', '--connector', 'openai', '--model', 'gpt-test', '--timeout', '20s', '--push-context'],
      {
        env: { OPENAI_API_KEY: 'sk-cli-key', OPENAI_BASE_URL: `${fake.url}/v1` },
      },
    );
    await agent.waitForLine(/^answering tasks with openai \(model gpt-test at http:\/\/127\.0\.0\.1:\d+\/v1, timeout 20000 ms/, { stream: 'stderr' });
    const out = await m.ok(
      ['send', '--agent-id', 'planner', '--to', 'chatgpt', '--content', 'What is RAG?', '--session', 'sess_cli', '--wait-reply', '--format', 'json'],
      { allowStderr: true },
    );
    const reply = jsonLines(out)[0];
    expect(reply.type).toBe('reply');
    expect(reply.from_agent).toBe('chatgpt');
    expect(reply.payload.content).toMatchObject({
      content: 'seen the shared context',
      connector: 'openai',
      usage: { model: 'gpt-test', input_tokens: 90, output_tokens: 5 },
    });
    await agent.waitForLine(/^answered task [0-9a-f-]{36} from planner in \d+\.\d s \(gpt-test, 90 in \/ 5 out tokens\)$/, { stream: 'stderr' });
    const ctx = JSON.parse(await m.ok(['context', 'pull', '--scope', 'session:sess_cli'])) as { data: { last_answer: { agent: string; summary: string } } };
    expect(ctx.data.last_answer).toMatchObject({ agent: 'chatgpt', summary: 'seen the shared context' });
    expect(fake.requests.at(-1)!.body.model).toBe('gpt-test');
  });

  it('connect --exec runs a program per task', async () => {
    const agent = m.spawn([
      'connect',
      '--agent-id',
      'codex',
      '--agent-type',
      'coder',
      '--connector',
      'codex',
      '--exec',
      `'${process.execPath}' '${ECHO}' exec {prompt}`,
    ]);
    await agent.waitForLine(/^answering tasks with codex \(runs /, { stream: 'stderr' });
    const out = await m.ok(['send', '--agent-id', 'planner', '--to', 'codex', '--content', 'Fix the flaky test', '--wait-reply', '--format', 'json'], {
      allowStderr: true,
    });
    const answer = JSON.parse(jsonLines(out)[0].payload.content.content) as { argv: string[]; env: { from: string } };
    expect(answer.argv[0]).toBe('exec');
    expect(answer.argv[1]).toContain('Fix the flaky test');
    expect(answer.argv[1]).toContain('CLI-CTX-6610');
    expect(answer.env.from).toBe('planner');
  });
});
