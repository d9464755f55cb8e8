import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as api from '../../crypto/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cryptoFiles = readdirSync(`${root}crypto`).filter((f) => f.endsWith('.ts'));
const source = (path: string) => readFileSync(`${root}${path}`, 'utf8');
// Comments may talk about Buffer or Node; only code counts.
const code = (path: string) =>
  source(path)
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');

describe('the crypto layer stays isomorphic', () => {
  it.each([...cryptoFiles.filter((f) => f !== 'keyfile-node.ts').map((f) => `crypto/${f}`), 'protocol/canonical.ts'])(
    '%s uses no Node built-ins, Buffer or require',
    (path) => {
      const text = code(path);
      expect(text).not.toMatch(/from\s+['"]node:|import\(\s*['"]node:|\brequire\(/);
      expect(text).not.toMatch(/\bBuffer\b|\bprocess\./);
      // Every import is a relative .js file or a noble subpath with .js.
      for (const [, spec] of text.matchAll(/from\s+['"]([^'"]+)['"]/g)) {
        expect(spec).toMatch(/^(\.{1,2}\/.+|@noble\/(ciphers|curves|hashes)\/.+)\.js$/);
      }
    },
  );

  it('index.ts exports names one by one and not the Node-only key-file I/O', () => {
    const index = source('crypto/index.ts');
    expect(index).not.toMatch(/export \*/);
    expect(index).not.toMatch(/from\s+['"]\.\/keyfile-node/);
    expect(Object.keys(api)).not.toContain('writeKeyFile');
    for (const name of [
      'secretboxSeal',
      'secretboxOpen',
      'secretboxKey',
      'boxKeyPair',
      'boxSeal',
      'boxOpen',
      'signingKeyPair',
      'sign',
      'verify',
      'signEnvelope',
      'verifyEnvelope',
      'KeyRing',
      'CryptoError',
      'encryptKeyFile',
      'decryptKeyFile',
    ]) {
      expect(api).toHaveProperty(name);
    }
  });
});
