/**
 * The README's TypeScript snippet, taken from README.md (so the two cannot drift) and run as
 * written, as its own Node process, against a real `serve` hub with tokens from `agents add`: it
 * prints the reply and exits by itself. Run with a token variable unset, it fails at connect and
 * says why.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, Machine, ROOT, type Hub } from './cli/helpers.js';

const MARKER = '<!-- readme-snippet: agents -->';

function snippet(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(MARKER);
  if (at < 0) throw new Error(`README.md has no ${MARKER} block`);
  const m = /^```ts\n([\s\S]*?)\n```$/m.exec(readme.slice(at + MARKER.length));
  if (!m) throw new Error(`no \`\`\`ts block after ${MARKER}`);
  return m[1]!;
}

describe('the README snippet', () => {
  let m: Machine;
  let hub: Hub;
  let dir: string;
  let file: string;
  let tokens: { gemini: string; claude: string };
  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    hub = await m.serve('embedded');
    const add = async (id: string, type: string) => JSON.parse(await m.ok(['agents', 'add', id, '--type', type, '--format', 'json'])).token as string;
    tokens = { gemini: await add('gemini', 'researcher'), claude: await add('claude_cli', 'planner') };
    // Inside the package folder, so `import ... from 'skynet-linker'` resolves to this build.
    dir = mkdtempSync(join(ROOT, '.snippet-'));
    file = join(dir, 'agents.mjs');
    writeFileSync(file, snippet());
  });
  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    await m?.dispose();
  });

  it('runs as written: prints the reply, shares the context, and exits 0 by itself', async () => {
    const r = await m.run([], {
      env: { GEMINI_TOKEN: tokens.gemini, CLAUDE_TOKEN: tokens.claude, SKYNET_LINKER_SERVER: hub.url },
      timeoutMs: 30_000,
      script: file,
    });
    expect(r).toEqual({ code: 0, signal: null, stdout: 'Voici 10 papiers récents sur RAG\n', stderr: '' });
    expect(JSON.parse(await m.ok(['context', 'pull', '--scope', 'session:sess_123', '--data-only']))).toEqual({
      shared_knowledge: { facts: ['RAG = retrieval + generation'] },
    });
  });

  it('with a token variable unset, fails at connect and says the token is missing', async () => {
    const r = await m.run([], { env: { CLAUDE_TOKEN: tokens.claude, SKYNET_LINKER_SERVER: hub.url }, timeoutMs: 30_000, script: file });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      'connectAgent(gemini): no token (token is undefined: is its environment variable set?) and the hub requires one; issue one with `skynet-linker agents add gemini`',
    );
  });
});
