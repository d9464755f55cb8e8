/**
 * The `command` connector and its presets, running real small programs
 * (test/fixtures/connectors/): success with the prompt as one argument or on stdin, non-zero exit
 * (stderr in the message), timeout (the process group is killed, SIGKILL after an ignored
 * SIGTERM), huge output (bounded), and the checks made at start.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { commandConnector, renderArgs, splitTemplate } from '../../clients/connectors/command.js';
import { codexConnector } from '../../clients/connectors/codex.js';
import { claudeCliConnector } from '../../clients/connectors/claude-cli.js';
import { geminiCliConnector } from '../../clients/connectors/gemini-cli.js';
import { simpleTask } from '../../clients/connectors/prompt.js';
import { createConnector } from '../../clients/connectors/registry.js';
import { ConnectorConfigError, type ConnectorTask } from '../../clients/connectors/types.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/connectors/', import.meta.url));
const NODE = process.execPath;
const script = (name: string) => `'${NODE}' '${FIXTURES}${name}'`;

function task(content: string): ConnectorTask {
  return simpleTask(content, {
    id: 'b7d1c0de-0000-4000-8000-000000000001',
    from: 'claude_cli',
    agentId: 'codex',
    sessionId: 'sess_42',
    context: { global: { scope: 'global', version: 1, data: { repo: 'skynet-linker', marker: 'CTX-5521' } }, session: null },
  });
}

/** Running (a zombie left for an init that does not reap counts as gone: it was killed). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('template parsing', () => {
  it('splits like a shell without expanding anything', () => {
    expect(splitTemplate('codex exec {prompt}')).toEqual(['codex', 'exec', '{prompt}']);
    expect(splitTemplate(`prog --flag 'two words' "double \\"q\\"" a\\ b '' $HOME`)).toEqual(['prog', '--flag', 'two words', 'double "q"', 'a b', '', '$HOME']);
    expect(() => splitTemplate("prog 'open")).toThrow(ConnectorConfigError);
  });

  it('substitutes placeholders inside each argument only', () => {
    const vars = { prompt: 'P; rm -rf / $(x)', task: 'T', session_id: 'S', from: 'F', message_id: 'M', agent_id: 'A' };
    expect(renderArgs(['run', '--msg={prompt}', '{from}/{session_id}', '{unknown}', '{"json":1}'], vars)).toEqual([
      'run',
      '--msg=P; rm -rf / $(x)',
      'F/S',
      '{unknown}',
      '{"json":1}',
    ]);
  });
});

describe('command connector', () => {
  it('passes the whole prompt as one argument and answers with stdout', async () => {
    const connector = await commandConnector.create({ exec: `${script('echo-prompt.mjs')} exec {prompt} --from={from}` });
    expect(connector.describe()).toContain('prompt on the command line');
    const reply = await connector.answer(task(`Refactor "auth" && echo $(whoami); it's urgent`));
    const seen = JSON.parse(reply.content) as { argv: string[]; stdin: string; env: Record<string, string | null> };
    expect(seen.argv).toHaveLength(3);
    expect(seen.argv[0]).toBe('exec');
    expect(seen.argv[1]).toContain(`Refactor "auth" && echo $(whoami); it's urgent`);
    expect(seen.argv[1]).toContain('CTX-5521'); // the shared context is in the prompt
    expect(seen.argv[2]).toBe('--from=claude_cli');
    expect(seen.stdin).toBe('');
    expect(seen.env).toEqual({ task: 'b7d1c0de-0000-4000-8000-000000000001', from: 'claude_cli', session: 'sess_42', token: null });
    expect(reply.usage.latency_ms).toBeGreaterThanOrEqual(0);
  });

  it('sends the prompt on stdin when the template has no {prompt}, and never passes the agent token on', async () => {
    const connector = await commandConnector.create({ exec: script('echo-prompt.mjs'), env: { ...process.env, SKYNET_LINKER_TOKEN: 'secret-token' } });
    expect(connector.describe()).toContain('prompt on stdin');
    const seen = JSON.parse((await connector.answer(task('Summarise the diff'))).content) as {
      argv: string[];
      stdin: string;
      env: Record<string, string | null>;
    };
    expect(seen.argv).toEqual([]);
    expect(seen.stdin).toContain('Summarise the diff');
    expect(seen.stdin).toContain('CTX-5521');
    expect(seen.env.token).toBeNull();
  });

  it('a non-zero exit fails with the code and the stderr', async () => {
    const connector = await commandConnector.create({ exec: `${script('fail.mjs')} {prompt}` });
    await expect(connector.answer(task('go'))).rejects.toThrow(
      /command: `.*fail\.mjs' \{prompt\}` exited with code 3; stderr: error: model "o9" is not available for this account/,
    );
  });

  it('a program that runs too long is killed (SIGTERM) with everything it started', async () => {
    const connector = await commandConnector.create({ exec: `${script('hang.mjs')} with-child`, timeoutMs: 500 });
    const err = (await connector.answer(task('wait')).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(/command: `.*hang\.mjs' with-child` timed out after 500 ms \(killed with SIGTERM\); stderr: pid=\d+ child=\d+/);
    const [, pid, child] = /pid=(\d+) child=(\d+)/.exec(err.message)!;
    expect(alive(Number(pid))).toBe(false);
    await expect.poll(() => alive(Number(child))).toBe(false);
  });

  it('a program that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    const connector = await commandConnector.create({ exec: `${script('hang.mjs')} ignore-term`, timeoutMs: 400, killGraceMs: 300 });
    const err = (await connector.answer(task('wait')).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(/timed out after 400 ms \(killed with SIGKILL\)/);
    expect(err.message).toContain('ignoring SIGTERM');
    expect(alive(Number(/pid=(\d+)/.exec(err.message)![1]))).toBe(false);
  });

  it('stdout beyond the limit is an error, and the program is stopped', async () => {
    const connector = await commandConnector.create({ exec: script('flood.mjs'), maxOutputBytes: 256 * 1024 });
    await expect(connector.answer(task('talk'))).rejects.toThrow(
      /command: `.*flood\.mjs'` wrote more than 262144 bytes on stdout \(the output limit, max_output_bytes\); it was stopped/,
    );
  });

  it('the default output limit is 1 MiB', async () => {
    const connector = await commandConnector.create({ exec: script('flood.mjs') });
    await expect(connector.answer(task('talk'))).rejects.toThrow('wrote more than 1048576 bytes');
  });

  it('a prompt too long for one argument says to use stdin', async () => {
    const connector = await commandConnector.create({ exec: `${script('echo-prompt.mjs')} {prompt}` });
    await expect(connector.answer(task('x'.repeat(200 * 1024)))).rejects.toThrow(/over the 131072 bytes one argument may hold; pass the prompt on stdin/);
  });

  it('a prompt the system cannot pass as an argument (a NUL character) fails cleanly', async () => {
    const connector = await commandConnector.create({ exec: `${script('echo-prompt.mjs')} {prompt}` });
    await expect(connector.answer(task('before\u0000after'))).rejects.toThrow(/^command: cannot run `.*echo-prompt\.mjs' \{prompt\}`: .*null bytes/);
  });

  it('closing the connector kills a running program', async () => {
    const connector = await commandConnector.create({ exec: script('hang.mjs'), timeoutMs: 60_000 });
    const controller = new AbortController();
    const pending = connector.answer({ ...task('wait'), signal: controller.signal }).catch((e: Error) => e);
    controller.abort();
    await connector.close?.();
    expect(((await pending) as Error).message).toMatch(/was stopped: the agent is closing/);
  });

  it('refuses to start without a template, or when the program is not on PATH', async () => {
    await expect(commandConnector.create({})).rejects.toThrow(/command: no program to run: pass --exec/);
    await expect(commandConnector.create({ exec: 'skynet-no-such-program-xyz {prompt}' })).rejects.toThrow(
      /program "skynet-no-such-program-xyz" not found on PATH/,
    );
    await expect(commandConnector.create({ exec: './missing/tool {prompt}' })).rejects.toThrow(/does not exist or is not executable/);
  });
});

describe('presets', () => {
  it('codex, claude-cli and gemini-cli are command templates', () => {
    expect(codexConnector.defaultExec).toBe('codex exec {prompt}');
    expect(claudeCliConnector.defaultExec).toBe('claude -p {prompt}');
    expect(geminiCliConnector.defaultExec).toBe('gemini -p {prompt}');
  });

  it('a preset says at start when its program is missing', async () => {
    await expect(createConnector('codex', { env: { PATH: '/nonexistent' } })).rejects.toThrow(/codex: program "codex" not found on PATH/);
  });

  it('--exec overrides a preset template', async () => {
    const connector = await createConnector('codex', { exec: `${script('echo-prompt.mjs')} exec {prompt}` });
    expect(connector.name).toBe('codex');
    const seen = JSON.parse((await connector.answer(task('hello codex'))).content) as { argv: string[] };
    expect(seen.argv[0]).toBe('exec');
    expect(seen.argv[1]).toContain('hello codex');
  });

  it('an unknown connector name lists the known ones', async () => {
    await expect(createConnector('nope')).rejects.toThrow(
      /unknown connector "nope"; available: anthropic, openai, gemini, perplexity, command, codex, claude-cli, gemini-cli/,
    );
  });
});
