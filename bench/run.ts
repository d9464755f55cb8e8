/**
 * `npm run bench`: prints one JSON line per scenario. Direct delivery, 20 sender/receiver pairs,
 * 8 messages in flight per pair, 512-byte content, closed loop for `durationMs`; the raw `ws`
 * relay is the floor, measured in the same run on the same load shape; each hub line carries its
 * ratio to it. Not a test: nothing here asserts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createLinkerClient } from '../clients/client.js';

const PAIRS = Number(process.env.BENCH_PAIRS ?? 20);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 8);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5000);
const CONTENT = 'x'.repeat(512);
const serverScript = fileURLToPath(new URL('./server.js', import.meta.url));

let clientCpu = 0;

interface Result {
  scenario: string;
  msgs_per_s: number;
  p50_ms: number;
  p99_ms: number;
  messages: number;
  duration_s: number;
  client_cpu_pct: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(scenario: string, latencies: number[], elapsedMs: number): Result {
  const sorted = latencies.sort((a, b) => a - b);
  return {
    scenario,
    msgs_per_s: Math.round((latencies.length / elapsedMs) * 1000),
    p50_ms: Number(percentile(sorted, 50).toFixed(3)),
    p99_ms: Number(percentile(sorted, 99).toFixed(3)),
    messages: latencies.length,
    duration_s: Number((elapsedMs / 1000).toFixed(2)),
    client_cpu_pct: clientCpu,
  };
}

function startServer(args: string[]): Promise<{ child: ChildProcess; info: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(process.env.BENCH_PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"] : []), serverScript, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ child, info: JSON.parse(buf.slice(0, nl)) as Record<string, unknown> });
    });
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
}

/** Closed loop per pair: keep IN_FLIGHT messages outstanding; a slot frees when the receiver gets one. */
async function closedLoop(send: (pair: number, sentAt: number) => void, onReady: (deliver: (pair: number, sentAt: number) => void) => Promise<void>) {
  const latencies: number[] = [];
  let running = true;
  const deliver = (pair: number, sentAt: number) => {
    latencies.push(performance.now() - sentAt);
    if (running) send(pair, performance.now());
  };
  await onReady(deliver);
  const start = performance.now();
  const cpuBefore = process.cpuUsage();
  for (let p = 0; p < PAIRS; p++) for (let i = 0; i < IN_FLIGHT; i++) send(p, performance.now());
  await new Promise((r) => setTimeout(r, DURATION_MS));
  running = false;
  const cpu = process.cpuUsage(cpuBefore);
  const elapsed = performance.now() - start;
  // How busy the load generator itself was: near 100% means the figures are client-bound.
  clientCpu = Math.round(((cpu.user + cpu.system) / 1000 / elapsed) * 100);
  return { latencies, elapsed };
}

async function benchRelay(): Promise<Result> {
  const { child, info } = await startServer(['relay']);
  const url = `ws://127.0.0.1:${info.port as number}`;
  const open = async (id: string) => {
    const ws = new WebSocket(url);
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ hello: id }));
    await new Promise((r) => ws.once('message', r));
    return ws;
  };
  const senders = await Promise.all(Array.from({ length: PAIRS }, (_, i) => open(`s${i}`)));
  const receivers = await Promise.all(Array.from({ length: PAIRS }, (_, i) => open(`r${i}`)));
  const { latencies, elapsed } = await closedLoop(
    (pair, sentAt) => senders[pair]!.send(JSON.stringify({ to_agent: `r${pair}`, type: 'task', payload: { content: CONTENT, meta: { sent_at: sentAt, pair } } })),
    async (deliver) => {
      receivers.forEach((ws) =>
        ws.on('message', (raw) => {
          const m = JSON.parse(raw.toString()) as { payload: { meta: { sent_at: number; pair: number } } };
          deliver(m.payload.meta.pair, m.payload.meta.sent_at);
        }),
      );
    },
  );
  for (const ws of [...senders, ...receivers]) ws.terminate();
  child.kill();
  return summarize('raw-ws-relay (floor)', latencies, elapsed);
}

async function benchHub(storeKind: 'redis' | 'embedded', redisUrl?: string): Promise<Result> {
  const { child, info } = await startServer(['hub', storeKind, redisUrl ?? '', String(PAIRS * 2)]);
  const tokens = info.tokens as Record<string, string>;
  const url = info.url as string;
  const senders = Array.from({ length: PAIRS }, (_, i) => createLinkerClient({ url, token: tokens[`a${i}`], WebSocket }));
  const receivers = Array.from({ length: PAIRS }, (_, i) => createLinkerClient({ url, token: tokens[`a${PAIRS + i}`], WebSocket }));
  const { latencies, elapsed } = await closedLoop(
    (pair, sentAt) => {
      senders[pair]!.trpc.messages.send
        .mutate({ to_agent: `a${PAIRS + pair}`, type: 'task', payload: { content: { text: CONTENT, sent_at: sentAt, pair } } })
        .catch((err: Error) => console.error(`send failed: ${err.message}`));
    },
    async (deliver) => {
      await Promise.all(
        receivers.map(
          (r) =>
            new Promise<void>((resolve) => {
              r.trpc.messages.inbox.subscribe(undefined, {
                onStarted: () => resolve(),
                onData: (e) => {
                  const c = (e as unknown as { data: { message: { payload: { content: { sent_at: number; pair: number } } } } }).data.message.payload.content;
                  deliver(c.pair, c.sent_at);
                },
              });
            }),
        ),
      );
    },
  );
  await Promise.all([...senders, ...receivers].map((c) => c.close()));
  child.kill();
  return summarize(`hub-${storeKind} (auth, zod, sealing, ${storeKind === 'redis' ? 'Redis streams' : 'embedded store'}, delivery)`, latencies, elapsed);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function main() {
  let redis: ChildProcess | undefined;
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    const port = await freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', mkdtempSync(join(tmpdir(), 'bench-redis-'))], { stdio: 'ignore' });
    redisUrl = `redis://127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 300));
  }
  try {
    const floor = await benchRelay();
    console.log(JSON.stringify({ ...floor, ratio: 1, shape: { pairs: PAIRS, in_flight: IN_FLIGHT, content_bytes: 512 } }));
    for (const kind of ['redis', 'embedded'] as const) {
      const r = await benchHub(kind, redisUrl);
      console.log(JSON.stringify({ ...r, ratio: Number((r.msgs_per_s / floor.msgs_per_s).toFixed(3)), shape: { pairs: PAIRS, in_flight: IN_FLIGHT, content_bytes: 512 } }));
    }
  } finally {
    redis?.kill();
  }
}

await main();
