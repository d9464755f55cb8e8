/**
 * The trust limits as a user sets them: config.yaml `limits:` read by `serve`, the errors a
 * client command then prints, and `context reset` (admin) on a real `serve` process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, Machine, type Hub } from './helpers.js';

describe('limits from config.yaml and context reset, through the CLI', () => {
  let m: Machine;
  let hub: Hub;

  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    const config = m.file('config.yaml', 'limits:\n  max_context_bytes: 2048\n  max_metadata_bytes: 512\n');
    hub = await m.serve('embedded', ['--config', config]);
  });
  afterAll(async () => {
    if (hub?.proc.running) expect((await hub.proc.stop('SIGTERM')).code).toBe(0);
    await m?.dispose();
  });

  it('a push past limits.max_context_bytes fails with exit 2 naming the limit; nothing is written', async () => {
    const small = m.file('small.json', { note: 'fits' });
    const big = m.file('big.json', { blob: 'x'.repeat(4096) });
    expect(await m.ok(['context', 'push', '--scope', 'global', '--context-file', small])).toBe('global is now at version 1\n');
    const r = await m.run(['context', 'push', '--scope', 'global', '--context-file', big]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^error: PAYLOAD_TOO_LARGE: context global would be \d+ bytes after this push, over the limit of 2048 bytes \(limits.max_context_bytes\)\n$/,
    );
    expect(JSON.parse(await m.ok(['context', 'pull', '--scope', 'global']))).toMatchObject({ version: 1, data: { note: 'fits' } });
  });

  it('context reset empties a scope as the next version (admin)', async () => {
    expect(await m.ok(['context', 'reset', '--scope', 'global'])).toBe('global reset: now empty at version 2\n');
    expect(JSON.parse(await m.ok(['context', 'pull', '--scope', 'global']))).toMatchObject({ version: 2, data: {}, updated_by: 'admin' });
    // An ordinary agent may not.
    const r = await m.run(['context', 'reset', '--scope', 'global', '--agent-id', 'alice']);
    expect(r.code).toBe(3);
  });
});
