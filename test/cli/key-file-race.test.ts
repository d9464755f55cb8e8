/**
 * Hub nodes starting at the same moment on one fresh data directory must end up with one at-rest
 * key ring (and one key-file passphrase): otherwise a node seals with a key whose file another
 * node replaced, and what it stored can never be opened again. Several real processes race to
 * create both files; every one of them must come out with the same keys, the ones on disk.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { readKeyFile } from '../../crypto/keyfile-node.js';
import { assertBuilt, ROOT } from './helpers.js';

const SERVE = pathToFileURL(join(ROOT, 'dist', 'bin', 'serve.js')).href;
const SCRIPT = `const { loadOrCreateKeyRing } = await import(${JSON.stringify(SERVE)}); const r = await loadOrCreateKeyRing(process.argv[1]); console.log(JSON.stringify(r.ring.export()));`;

function loadInProcess(home: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT, home], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}: ${err}`))));
  });
}

describe('first start of several nodes on one data directory', () => {
  beforeAll(() => assertBuilt());

  for (const withEnvPassphrase of [false, true]) {
    it(`all get the key ring on disk (${withEnvPassphrase ? 'passphrase from SKYNET_LINKER_PASSPHRASE' : 'passphrase file created in the race too'})`, async () => {
      const home = mkdtempSync(join(tmpdir(), 'skl-race-'));
      const env = { ...process.env };
      delete env.SKYNET_LINKER_PASSPHRASE;
      if (withEnvPassphrase) env.SKYNET_LINKER_PASSPHRASE = 'race-test-passphrase';
      const rings = await Promise.all(Array.from({ length: 6 }, () => loadInProcess(home, env)));
      expect(new Set(rings).size).toBe(1);
      const passphrase = withEnvPassphrase ? 'race-test-passphrase' : readFileSync(join(home, 'passphrase'), 'utf8').trim();
      const onDisk = (await readKeyFile(join(home, '.skynet_linker.keys'), passphrase)) as { at_rest: unknown };
      expect(JSON.stringify(onDisk.at_rest)).toBe(rings[0]);
      // No temp files left behind; secrets stay 0600.
      expect(readdirSync(home).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(statSync(join(home, '.skynet_linker.keys')).mode & 0o777).toBe(0o600);
      if (!withEnvPassphrase) expect(statSync(join(home, 'passphrase')).mode & 0o777).toBe(0o600);
    });
  }
});
