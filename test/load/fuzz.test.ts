/**
 * Fuzzed input at a running hub over raw WebSockets (fast-check): at least 100 000 random and
 * mutated frames and envelopes, pipelined over several authenticated sockets by a client in a
 * child process (fuzz-client.ts), while the hub runs here, in process. The hub never crashes,
 * every request frame gets its reply (an error reply always carries `error.data.code`; a frame
 * that cannot be read as a request gets the `id: null` PARSE_ERROR the wire protocol documents),
 * bad input never causes an INTERNAL_SERVER_ERROR, its heap after GC stays flat, nothing pollutes
 * Object.prototype, and a well-behaved pair of agents keeps doing request/reply during and after.
 *
 * FUZZ_FRAMES (default 100 000), FUZZ_SEED and FUZZ_STORE (redis | embedded) reproduce a run;
 * LOAD_FIGURES=1 prints figures.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import ts from 'typescript';
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance } from 'node:perf_hooks';
import { capturedLogger, startTestHub, type TestHub } from '../hub/harness.js';
import { appRouter } from '../../router/app.js';
import { predictorTransformer, TRANSFORMER_PROBES } from './fuzz-frames.js';
import type { FromClient, FuzzClientConfig, FuzzSummary } from './fuzz-client.js';

const TOTAL = Number(process.env.FUZZ_FRAMES ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const STORE = (process.env.FUZZ_STORE ?? 'redis') as 'redis' | 'embedded';
const figures = process.env.LOAD_FIGURES === '1';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Procedures that return stored user JSON other than messages (see the known issue below). */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Transpiles the client and its frames module (project TypeScript, no build step) into a cache dir. */
function buildClient(): { dir: string; entry: string } {
  const dir = join(ROOT, 'node_modules', '.cache', `skynet-linker-fuzz-${randomUUID()}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  for (const name of ['fuzz-client', 'fuzz-frames']) {
    const source = readFileSync(fileURLToPath(new URL(`./${name}.ts`, import.meta.url)), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      fileName: `${name}.ts`,
    });
    writeFileSync(join(dir, `${name}.js`), outputText);
  }
  return { dir, entry: join(dir, 'fuzz-client.js') };
}

function outcome(fn: () => unknown): string {
  try {
    return `ok ${JSON.stringify(fn()) ?? 'undefined'}`;
  } catch (err) {
    return `throws ${(err as Error).constructor.name}`;
  }
}

describe('fuzzed input at a running hub', () => {
  let t: TestHub | undefined;
  let child: ChildProcess | undefined;
  let buildDir: string | undefined;
  const raw: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
    if (buildDir) rmSync(buildDir, { recursive: true, force: true });
    buildDir = undefined;
    await Promise.all(raw.splice(0).map((s) => s.close()));
    await t?.close();
    t = undefined;
  });

  it('the frame predictor reads inputs exactly as the hub does', () => {
    const hub = appRouter._def._config.transformer.input;
    for (const probe of TRANSFORMER_PROBES) {
      expect(
        outcome(() => predictorTransformer.input.deserialize(probe)),
        JSON.stringify(probe),
      ).toBe(outcome(() => hub.deserialize(probe)));
    }
  });

  it(`${TOTAL} random and mutated frames: no crash, a typed reply for every request (no internal error but the known one), flat heap, other agents served`, async () => {
    // As in production (NODE_ENV=production): tRPC then skips reading each error's stack, which
    // our error formatter drops anyway (under vitest, a source-mapped stack costs ~25% of a reply).
    (appRouter._def._config as { isDev: boolean }).isDev = false;
    const log = capturedLogger('error');
    t = await startTestHub(STORE, { logger: log.logger, limits: { inboxMaxLen: 200, channelMaxLen: 200 }, rateLimit: { perSecond: 5000, burst: 10_000 } });
    const fuzzers = Array.from({ length: 4 }, (_, i) => `fuzz-${i}`);
    const agents = await Promise.all(fuzzers.map(async (id) => ({ id, token: await t!.addAgent(id) })));
    await t.addAgent('sink');
    const goodA = await t.agent('good-a');
    await t.agent('good-b', { onTask: (m) => ({ echo: m.content }) });
    // The good pair is not in the default channel, so fuzzed broadcasts do not reach it.
    for (const a of ['good-a', 'good-b']) await t.hub.memory.channels.leave('skynet_core', a);

    // The well-behaved pair: request/reply in a loop the whole time.
    let fuzzing = true;
    let served = 0;
    const latencies: number[] = [];
    const goodLoop = (async () => {
      while (fuzzing) {
        const started = performance.now();
        const reply = await goodA.request('good-b', { n: served }, { timeoutMs: 15_000 });
        expect(reply.content).toEqual({ echo: { n: served } });
        latencies.push(performance.now() - started);
        served++;
      }
    })();
    goodLoop.catch(() => {}); // awaited below; must not surface early as an unhandled rejection

    const build = buildClient();
    buildDir = build.dir;
    const config: FuzzClientConfig = {
      url: t.hub.url,
      agents,
      sinks: ['sink'],
      channels: ['fuzz-chan', 'fuzz-chan-2', 'skynet_core'],
      seed: SEED,
      total: TOTAL,
      perChunk: 500,
      drainTimeoutMs: 30_000,
    };
    let heapBefore = 0;
    let rssBefore = 0;
    let externalBefore = 0;
    const baselineAt = Math.min(10_000, TOTAL / 4);
    const started = performance.now();
    child = fork(build.entry, [], { execArgv: [], env: { ...process.env, SKYNET_FUZZ_CHILD: '1' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const summary = await new Promise<FuzzSummary>((resolve, reject) => {
      child!.on('message', (m: FromClient) => {
        if (m.type === 'progress' && heapBefore === 0 && m.sent >= baselineAt) {
          // Baseline after warm-up (JIT, caches, the first keys and subscriptions).
          heapBefore = heapAfterGc();
          ({ rss: rssBefore, external: externalBefore } = process.memoryUsage());
        }
        if (m.type === 'done') resolve(m.summary);
      });
      child!.once('exit', (code) => reject(new Error(`the fuzz client exited with ${code} before reporting`)));
      child!.send(config);
    });
    const elapsed = performance.now() - started;
    const servedDuring = served;
    fuzzing = false;
    await goodLoop;
    const heapAfter = heapAfterGc();
    const { rss: rssAfter, external: externalAfter } = process.memoryUsage();

    // Still serving: request/reply after the storm, and health.
    const after = await goodA.request('good-b', 'after', { timeoutMs: 5_000 });
    expect(after.content).toEqual({ echo: 'after' });
    // Healthy again once the burst is over (/health says "overloaded" while the loop stalls).
    await vi.waitFor(async () => expect((await fetch(`${t!.hub.httpUrl}/health`)).status).toBe(200), { timeout: 10_000 });

    if (figures) {
      const p = (q: number) => [...latencies].sort((a, b) => a - b)[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]?.toFixed(1);
      console.info(
        `fuzz (${STORE}): ${summary.framesSent} frames in ${(elapsed / 1000).toFixed(1)} s (${Math.round(summary.framesSent / (elapsed / 1000))}/s), seed ${SEED}\n` +
          `  kinds ${JSON.stringify(summary.kinds)}\n  error codes ${JSON.stringify(summary.codes)}\n  deep frames ${JSON.stringify(summary.deep)}\n` +
          `  INTERNAL replies: ${summary.internal.length} (${summary.internal.map((i) => i.path).join(', ') || 'none'})\n` +
          `  hub heap after GC ${(heapBefore / 2 ** 20).toFixed(1)} -> ${(heapAfter / 2 ** 20).toFixed(1)} MiB; external ${(externalBefore / 2 ** 20).toFixed(1)} -> ${(externalAfter / 2 ** 20).toFixed(1)} MiB; rss ${(rssBefore / 2 ** 20).toFixed(0)} -> ${(rssAfter / 2 ** 20).toFixed(0)} MiB\n` +
          `  good pair: ${servedDuring} request/replies during the fuzzing, p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${p(1)} ms`,
      );
    }

    expect(summary.failure).toBeNull();
    expect(summary.framesSent).toBeGreaterThanOrEqual(TOTAL);
    expect(summary.closedSockets).toBe(0);
    expect(summary.untyped).toEqual([]);
    expect(summary.unexpected).toEqual([]);
    // Every frame the hub could not read as a request got exactly its `id: null` reply.
    for (const n of summary.nullReplies) expect(n.got).toBe(n.expected);
    for (const d of summary.deep) expect(d.code, d.kind).toMatch(/^(PARSE_ERROR|BAD_REQUEST)$/);
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(servedDuring).toBeGreaterThan(0);
    // Flat: what is left after GC does not grow with the number of frames (generous bound; measured
    // about +1.5 MiB over 90 000 frames). RSS is not asserted: it keeps the allocator's high-water mark.
    expect(heapAfter - heapBefore).toBeLessThan(16 * 2 ** 20);
    expect(externalAfter - externalBefore).toBeLessThan(16 * 2 ** 20);
    // Bad input is the caller's fault: never an internal error (each names the frame that caused it).
    const internal = summary.internal.map((i) => `${i.reply} <- ${i.frame.slice(0, 400)}`);
    const failures = log.lines.filter((l) => l.event === 'procedure_failed').map((l) => `${l.path}: ${l.err?.message}`);
    expect({ internal: internal.slice(0, 5), failures: failures.slice(0, 5), seed: SEED }).toEqual({ internal: [], failures: [], seed: SEED });
  }, 240_000);
});
