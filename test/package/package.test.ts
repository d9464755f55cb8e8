/**
 * What a user installs: the dependency list (vendor SDKs are optional peers, so a Next.js panel
 * does not pull them), the files npm would publish (no benchmarks, a LICENSE), the built package
 * running where no SDK is installed (the client loads; the CLI says which package a connector
 * needs), and `npm start` (no rebuild when the build is current; Ctrl-C exits 0 like `serve`).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema, loadConfig } from '../../bin/config.js';
import { resolveConnector } from '../../bin/connector-settings.js';
import { assertBuilt, Proc, ROOT } from '../cli/helpers.js';

const SDKS = ['@anthropic-ai/sdk', '@google/genai', 'openai'];
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  license: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  scripts: Record<string, string>;
};

describe('the package', () => {
  it('lists the vendor SDKs as optional peer dependencies only (tests get them as dev dependencies)', () => {
    for (const sdk of SDKS) {
      expect(pkg.dependencies, sdk).not.toHaveProperty(sdk);
      expect(pkg.peerDependencies?.[sdk], sdk).toMatch(/^\^\d+\.\d+\.\d+$/);
      expect(pkg.peerDependenciesMeta?.[sdk], sdk).toEqual({ optional: true });
      // The peer range accepts the version the tests run against.
      expect(pkg.peerDependencies![sdk]!.slice(1), sdk).toBe(pkg.devDependencies[sdk]);
    }
  });

  it('publishes dist without the benchmarks, and the LICENSE package.json names', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining(['LICENSE', 'package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/bin/skynet-linker.js', 'protocol/schema.json']),
    );
    expect(files.filter((f) => f.startsWith('dist/bench/') || f.startsWith('bench/') || f.startsWith('test/'))).toEqual([]);
    expect(pkg.license).toBe('MIT');
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n/);
  });

  it('config.example.yaml is valid and names every setting', () => {
    const path = join(ROOT, 'config.example.yaml');
    const config = loadConfig(path);
    for (const name of Object.keys(config.connectors ?? {})) expect(() => resolveConnector(name, config), name).not.toThrow();
    const text = readFileSync(path, 'utf8');
    const shape = ConfigSchema.shape;
    const sections: Record<string, string[]> = {
      '': Object.keys(shape),
      server: Object.keys(shape.server.unwrap().shape),
      redis: Object.keys(shape.redis.unwrap().shape),
      auth: Object.keys(shape.auth.unwrap().shape),
      sealing: Object.keys(shape.sealing.unwrap().shape),
      store: Object.keys(shape.store.unwrap().shape),
      guards: Object.keys(shape.guards.unwrap().shape),
      limits: Object.keys(shape.limits.unwrap().shape),
    };
    // Commented-out settings count: they show the name and the default without taking effect.
    for (const [section, keys] of Object.entries(sections))
      for (const key of keys) expect(text, `${section}.${key}`).toMatch(new RegExp(`^\\s*#?\\s*${key}:`, 'm'));
  });

  it('builds once at install (prepare) and starts the built CLI', () => {
    expect(pkg.scripts.prepare).toBe('npm run build');
    expect(pkg.scripts.start).toBe('exec node scripts/start.mjs');
  });
});

describe('installed without any vendor SDK (a Next.js panel)', () => {
  let farm: string;
  beforeAll(() => {
    assertBuilt();
    // The built package beside a node_modules holding every installed package but the SDKs;
    // --preserve-symlinks makes Node resolve from here rather than from the real tree.
    farm = mkdtempSync(join(tmpdir(), 'skynet-nosdk-'));
    symlinkSync(join(ROOT, 'dist'), join(farm, 'dist'));
    symlinkSync(join(ROOT, 'package.json'), join(farm, 'package.json'));
    const modules = join(farm, 'node_modules');
    mkdirSync(modules);
    for (const name of readdirSync(join(ROOT, 'node_modules'))) {
      if (name.startsWith('.')) continue;
      if (name.startsWith('@')) {
        mkdirSync(join(modules, name));
        for (const sub of readdirSync(join(ROOT, 'node_modules', name))) {
          if (!SDKS.includes(`${name}/${sub}`)) symlinkSync(join(ROOT, 'node_modules', name, sub), join(modules, name, sub));
        }
      } else if (!SDKS.includes(name)) symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
    }
  });
  afterAll(() => {
    if (farm) rmSync(farm, { recursive: true, force: true });
  });

  const run = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--preserve-symlinks', '--preserve-symlinks-main', ...args], {
        cwd: farm,
        env: { PATH: process.env.PATH ?? '', HOME: farm, SKYNET_LINKER_HOME: join(farm, 'home'), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const proc = new Proc(child, args.join(' '));
      void proc.exited.then((r) => resolve({ code: r.code, stdout: r.stdout, stderr: r.stderr }));
    });

  it('the SDKs really are absent there', async () => {
    const r = await run(['--input-type=module', '-e', "await import('openai').then(() => console.log('found'), (e) => console.log(e.code))"]);
    expect(r.stdout).toBe('ERR_MODULE_NOT_FOUND\n');
  });

  it('the client entry and the connectors entry load', async () => {
    const r = await run([
      '--input-type=module',
      '-e',
      "const c = await import('./dist/index.js'); const k = await import('./dist/clients/connectors/index.js'); console.log(typeof c.createLinkerClient, typeof c.connectAgent, typeof k.createConnector)",
    ]);
    expect(r).toEqual({ code: 0, stdout: 'function function function\n', stderr: '' });
  });

  it('connectors list says which package is missing; connect --connector names the package to install (exit 2)', async () => {
    const list = await run(['dist/bin/skynet-linker.js', 'connectors', 'list'], {
      OPENAI_API_KEY: 'sk-test',
      ANTHROPIC_API_KEY: 'sk-ant-test',
      GEMINI_API_KEY: 'g-test',
    });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^openai\s+not ready/m);
    expect(list.stdout).toContain(
      'OPENAI_API_KEY is set (base URL from OPENAI_BASE_URL when set); the openai package is not installed (npm install openai@6.49.0)',
    );
    expect(list.stdout).toContain('the @anthropic-ai/sdk package is not installed (npm install @anthropic-ai/sdk@1.13.0)');
    expect(list.stdout).toContain('the @google/genai package is not installed (npm install @google/genai@1.52.0)');
    // A program connector needs no SDK.
    expect(list.stdout).toMatch(/^command\s+/m);

    const connect = await run(['dist/bin/skynet-linker.js', 'connect', '--agent-id', 'chatgpt', '--connector', 'openai'], { OPENAI_API_KEY: 'sk-test' });
    expect(connect).toEqual({
      code: 2,
      stdout: '',
      stderr: 'error: openai: the openai package is not installed (it is an optional peer dependency of skynet-linker): npm install openai@6.49.0\n',
    });
  });
});

describe('npm start', () => {
  it('starts the built CLI without rebuilding, and Ctrl-C (SIGINT to the process group, as a terminal sends it) exits 0', async () => {
    assertBuilt();
    const home = mkdtempSync(join(tmpdir(), 'skynet-start-'));
    try {
      const child = spawn('npm', ['start', '--', '--port', '0', '--log-format', 'json'], {
        cwd: ROOT,
        env: { ...process.env, SKYNET_LINKER_HOME: home, SKYNET_LINKER_SERVER: undefined },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const proc = new Proc(child, 'npm start');
      await proc.waitForLine(/admin credential/, { timeoutMs: 30_000 });
      process.kill(-child.pid!, 'SIGINT');
      const r = await proc.exited;
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`hub stopped; everything it acknowledged is in its database in ${join(home, 'data')} (restored at the next start)`);
      expect(r.stderr).not.toMatch(/rebuilding|building/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);
});
