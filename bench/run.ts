/**
 * `npm run bench`: one JSON line per scenario, each with its ratio to a baseline measured in the
 * same run on the same load shape. Not a test: nothing here asserts.
 *
 * - direct: 20 sender/receiver pairs × 8 in flight × 512 B, closed loop; floor = raw `ws` relay
 *   (parse JSON, route by recipient, re-send). BENCH_ROUNDS (default 3) rounds of floor, hub on
 *   Redis, hub embedded: each hub run's ratio is to the floor of its own round (the machine's
 *   speed drifts from minute to minute), and the median round is printed with every round's ratio.
 *   Also measured once: the bare-tRPC ceiling, the same tRPC v11 wire protocol with nothing behind
 *   it (no auth, validation, store, sealing or resume), behind tRPC's own `applyWSSHandler` and
 *   behind the hub's adapter (transport/ws-adapter.ts).
 * - broadcast: one sender, 100 and 1,000 subscribers, 4 broadcasts in flight; floor = raw `ws`
 *   broadcast (serialize once, send to every socket).
 * - idle: 10,000 connected agents (typed client) with live inbox subscriptions: hub RSS per
 *   connection, idle CPU; baseline = the same number of bare `ws` connections on the relay.
 * - latency: open loop at 50% of the direct scenario's measured maximum: p50/p90/p99/p99.9/max;
 *   baseline = the raw relay under the same open loop at the same rate (what the load generator
 *   and the shared cores alone add to the tail), and the 5 ms p99 goal.
 *
 * The hub is driven by bench/wire-client.ts (the documented wire protocol over a bare `ws`), so
 * the load generator costs about what the relay's raw clients cost; BENCH_CLIENT=typed uses the
 * typed tRPC client instead (several times the client CPU per message, taken from the same 2 cores).
 * Every timed run starts with BENCH_WARMUP_MS (default 1000) unmeasured (the open loop ramps up
 * over it, then holds it once more). The server under test runs in a child process
 * (`bench/server.ts`); BENCH_SCENARIOS picks scenarios (default all), BENCH_DURATION_MS the length
 * of each timed run (default 5000), BENCH_PROF=<dir> writes the servers' CPU profiles,
 * BENCH_SERVER_FLAGS passes Node flags to them (e.g. --trace-gc), BENCH_LATENCY_RATE fixes the
 * open loop's rate, BENCH_TRACE=<path> writes its (time, latency) samples, BENCH_SEAL_THREAD=0
 * seals on the event loop instead of the sealing thread (memory/seal-pool.ts), BENCH_NO_SEAL=1
 * runs the hub without at-rest sealing (what sealing costs on Redis), BENCH_SEAL_IN_MEMORY=1 seals
 * each value on the in-memory store too (config sealing.in_memory), BENCH_STORES=redis|embedded picks the
 * hub's stores ("embedded" is the SQLite store `serve` runs on, on a file in a temporary directory;
 * BENCH_EMBEDDED=memory uses the in-memory store of tests instead, BENCH_DURABILITY=power runs
 * SQLite with synchronous=FULL), BENCH_CEILING=0 skips the bare-tRPC lines.
 *
 * Direct lines also print server_cpu_us_per_msg (the server process's CPU time, all threads, per
 * delivered message: steadier than the rate while the machine's speed drifts) and
 * server_loop_busy (its event loop's utilization over the measured window).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createLinkerClient, type LinkerConnection } from '../clients/client.js';
import { WireClient } from './wire-client.js';

const PAIRS = Number(process.env.BENCH_PAIRS ?? 20);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 8);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5000);
const IDLE_AGENTS = Number(process.env.BENCH_IDLE_AGENTS ?? 10_000);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const STORES = (process.env.BENCH_STORES ?? 'redis,embedded').split(',') as Store[];
const SCENARIOS = new Set((process.env.BENCH_SCENARIOS ?? 'direct,broadcast,idle,latency').split(','));
const CONTENT = 'x'.repeat(512);
const serverScript = fileURLToPath(new URL('./server.js', import.meta.url));

type Store = 'redis' | 'embedded';

interface Server {
  child: ChildProcess;
  info: Record<string, unknown>;
  stats(): Promise<{ rss: number; heap: number; cpu_ms: number }>;
  /** The server process's CPU time so far, in ms (no GC first), and its event loop's utilization since the last call. */
  cpu(): Promise<{ cpu_ms: number; elu: number }>;
  stop(): void;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function latencyFigures(latencies: number[]) {
  const sorted = latencies.sort((a, b) => a - b);
  return { p50_ms: Number(percentile(sorted, 50).toFixed(3)), p99_ms: Number(percentile(sorted, 99).toFixed(3)) };
}

function tailFigures(latencies: number[]) {
  const sorted = latencies.sort((a, b) => a - b);
  return {
    p90_ms: Number(percentile(sorted, 90).toFixed(3)),
    p999_ms: Number(percentile(sorted, 99.9).toFixed(3)),
    max_ms: Number((sorted.at(-1) ?? NaN).toFixed(3)),
  };
}

const print = (line: Record<string, unknown>) => console.log(JSON.stringify(line));
const ratio = (a: number, b: number) => Number((a / b).toFixed(3));
/** The middle value (the lower middle one of an even count): always one of the measured values. */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts bench/server.ts; resolves with the first JSON line it prints. */
function startServer(args: string[]): Promise<Server> {
  return new Promise((resolve, reject) => {
    const prof = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
    if (process.env.BENCH_SERVER_FLAGS) prof.push(...process.env.BENCH_SERVER_FLAGS.split(' '));
    const child = spawn(process.execPath, ['--expose-gc', ...prof, serverScript, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    const waiters: ((line: string) => void)[] = [];
    let buf = '';
    let first = true;
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        // Anything else the server prints (BENCH_SERVER_FLAGS=--trace-gc...) goes to stderr.
        if (!line.startsWith('{')) {
          process.stderr.write(`server: ${line}\n`);
          continue;
        }
        if (first) {
          first = false;
          resolve({
            child,
            info: JSON.parse(line) as Record<string, unknown>,
            stats: () =>
              new Promise((res) => {
                waiters.push((l) => res(JSON.parse(l) as { rss: number; heap: number; cpu_ms: number }));
                child.stdin!.write('stats\n');
              }),
            cpu: () =>
              new Promise((res) => {
                waiters.push((l) => res(JSON.parse(l) as { cpu_ms: number; elu: number }));
                child.stdin!.write('cpu\n');
              }),
            stop: () => child.kill('SIGTERM'),
          });
        } else waiters.shift()?.(line);
      }
    });
    child.once('exit', (code) => first && reject(new Error(`bench server exited with ${code}`)));
  });
}

/** Shared by a closed loop and its completion callbacks: completions start the next op while running. */
interface Loop {
  running: boolean;
}

const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1000);

/**
 * Keeps `perKey` operations in flight for each key: first `WARMUP_MS` unmeasured (JIT, connection
 * and script set-up), then `reset()` clears what was counted and `durationMs` is measured.
 * Completions call `start` again while `loop.running`.
 */
async function closedLoop(
  loop: Loop,
  keys: number,
  perKey: number,
  start: (key: number) => void,
  durationMs: number,
  reset: () => void,
  server?: Server,
  redis?: Redis,
) {
  for (let k = 0; k < keys; k++) for (let i = 0; i < perKey; i++) start(k);
  await sleep(WARMUP_MS);
  reset();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const serverCpu0 = await server?.cpu();
  const redisCpu0 = redis && (await redisCpuMs(redis));
  await sleep(durationMs);
  loop.running = false;
  const serverCpu1 = await server?.cpu();
  const redisCpu1 = redis && (await redisCpuMs(redis));
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const serverCpuMs = serverCpu0 && serverCpu1 ? serverCpu1.cpu_ms - serverCpu0.cpu_ms : undefined;
  const clientCpuMs = (cpu.user + cpu.system) / 1000;
  const redisMs = redisCpu0 !== undefined && redisCpu1 !== undefined ? redisCpu1 - redisCpu0 : undefined;
  return { elapsed, clientCpuPct: Math.round((clientCpuMs / elapsed) * 100), clientCpuMs, serverCpuMs, redisCpuMs: redisMs, serverElu: serverCpu1?.elu };
}

/** The Redis server's CPU time so far (user + system, all its threads), in ms. */
async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
}

// ---------- raw ws baselines ----------

async function openRaw(url: string, id: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  ws.send(JSON.stringify({ hello: id }));
  await new Promise((r) => ws.once('message', r));
  return ws;
}

/** The relay's sender and receiver sockets of the direct scenarios (pair i: `s<i>` sends to `r<i>`). */
async function relayPairs(server: Server): Promise<{ senders: WebSocket[]; receivers: WebSocket[] }> {
  const url = `ws://127.0.0.1:${server.info.port as number}`;
  const senders = await Promise.all(Array.from({ length: PAIRS }, (_, i) => openRaw(url, `s${i}`)));
  const receivers = await Promise.all(Array.from({ length: PAIRS }, (_, i) => openRaw(url, `r${i}`)));
  return { senders, receivers };
}

async function relayDirect(): Promise<{
  rate: number;
  p50: number;
  p99: number;
  cpu: number;
  server_cpu_us_per_msg: number;
  server_loop_busy: number | undefined;
}> {
  const server = await startServer(['relay']);
  const { senders, receivers } = await relayPairs(server);
  const latencies: number[] = [];
  const loop: Loop = { running: true };
  const send = (pair: number) =>
    senders[pair]!.send(JSON.stringify({ to_agent: `r${pair}`, type: 'task', payload: { content: CONTENT, meta: { sent_at: performance.now(), pair } } }));
  receivers.forEach((ws) =>
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as { payload: { meta: { sent_at: number; pair: number } } };
      latencies.push(performance.now() - m.payload.meta.sent_at);
      if (loop.running) send(m.payload.meta.pair);
    }),
  );
  const run = await closedLoop(loop, PAIRS, IN_FLIGHT, send, DURATION_MS, () => (latencies.length = 0), server);
  for (const ws of [...senders, ...receivers]) ws.terminate();
  server.stop();
  const { p50_ms, p99_ms } = latencyFigures(latencies);
  const serverUs = Number((((run.serverCpuMs ?? NaN) * 1000) / latencies.length).toFixed(1));
  return {
    rate: (latencies.length / run.elapsed) * 1000,
    p50: p50_ms,
    p99: p99_ms,
    cpu: run.clientCpuPct,
    server_cpu_us_per_msg: serverUs,
    server_loop_busy: run.serverElu,
  };
}

async function relayBroadcast(subscribers: number): Promise<number> {
  const server = await startServer(['relay']);
  const url = `ws://127.0.0.1:${server.info.port as number}`;
  const sender = await openRaw(url, 'sender');
  const subs: WebSocket[] = [];
  for (let i = 0; i < subscribers; i += 100)
    subs.push(...(await Promise.all(Array.from({ length: Math.min(100, subscribers - i) }, (_, j) => openRaw(url, `sub${i + j}`)))));
  let deliveries = 0;
  const counts = new Map<number, number>();
  let seq = 0;
  const loop: Loop = { running: true };
  const send = () => sender.send(JSON.stringify({ type: 'broadcast', payload: { content: CONTENT, meta: { seq: seq++ } } }));
  for (const ws of subs)
    ws.on('message', (raw) => {
      deliveries++;
      const n = (JSON.parse(raw.toString()) as { payload: { meta: { seq: number } } }).payload.meta.seq;
      const c = (counts.get(n) ?? 0) + 1;
      counts.set(n, c);
      if (c === subscribers) {
        counts.delete(n);
        if (loop.running) send();
      }
    });
  const run = await closedLoop(loop, 1, 4, send, DURATION_MS, () => (deliveries = 0));
  for (const ws of [sender, ...subs]) ws.terminate();
  server.stop();
  return (deliveries / run.elapsed) * 1000;
}

// ---------- the hub ----------

function clients(url: string, tokens: Record<string, string>, from: number, count: number): LinkerConnection[] {
  return Array.from({ length: count }, (_, i) => createLinkerClient({ url, token: tokens[`a${from + i}`], WebSocket }));
}

type InboxData = { data: { message: { payload: { content: { text?: string; sent_at: number; key: number; seq?: number } } } } };

/** Subscribes every connection to its inbox; resolves when all have started. */
function subscribeAll(conns: LinkerConnection[], onData: (content: InboxData['data']['message']['payload']['content']) => void) {
  return Promise.all(
    conns.map(
      (c) =>
        new Promise<void>((resolve) => {
          c.trpc.messages.inbox.subscribe(undefined, {
            onStarted: () => resolve(),
            onData: (e) => onData((e as unknown as InboxData).data.message.payload.content),
          });
        }),
    ),
  );
}

type Content = InboxData['data']['message']['payload']['content'];

/** Senders and receivers of the direct scenarios, on the wire client (default) or the typed client. */
interface DirectClients {
  send(pair: number, content: Content): Promise<unknown>;
  close(): Promise<void>;
}

const CLIENT = (process.env.BENCH_CLIENT ?? 'wire') as 'wire' | 'typed';

async function directClients(server: Server, onData: (c: Content) => void): Promise<DirectClients> {
  const url = server.info.url as string;
  const tokens = server.info.tokens as Record<string, string>;
  const isFloor = server.info.floor === 'trpc';
  if (CLIENT === 'typed' && !isFloor) {
    const senders = clients(url, tokens, 0, PAIRS);
    const receivers = clients(url, tokens, PAIRS, PAIRS);
    await subscribeAll(receivers, onData);
    return {
      send: (pair, content) => senders[pair]!.trpc.messages.send.mutate({ to_agent: `a${PAIRS + pair}`, type: 'task', payload: { content } }),
      close: async () => void (await Promise.all([...senders, ...receivers].map((c) => c.close()))),
    };
  }
  const senders = await Promise.all(Array.from({ length: PAIRS }, (_, i) => WireClient.open(url, tokens[`a${i}`])));
  const receivers = await Promise.all(Array.from({ length: PAIRS }, (_, i) => WireClient.open(url, tokens[`a${PAIRS + i}`])));
  await Promise.all(
    receivers.map((r, i) =>
      r.subscribe('messages.inbox', isFloor ? { agent: `a${PAIRS + i}` } : {}, (json) =>
        onData((json as { data: InboxData['data'] }).data.message.payload.content),
      ),
    ),
  );
  return {
    send: (pair, content) => senders[pair]!.mutate('messages.send', { to_agent: `a${PAIRS + pair}`, type: 'task', payload: { content } }),
    close: async () => [...senders, ...receivers].forEach((c) => c.close()),
  };
}

/**
 * Closed loop on `mode` (`hub <store>` or the bare tRPC floor). With `redis`, the Redis server's
 * CPU over the measured window is counted too: with the load generator and the server, the three
 * parts that share the machine's cores.
 */
async function hubDirect(serverArgs: string[], redis?: Redis) {
  const server = await startServer(serverArgs);
  const latencies: number[] = [];
  const loop: Loop = { running: true };
  let c: DirectClients | undefined;
  const send = (pair: number) => {
    c!.send(pair, { text: CONTENT, sent_at: performance.now(), key: pair }).catch((err: Error) => loop.running && console.error(`send failed: ${err.message}`));
  };
  c = await directClients(server, (content) => {
    latencies.push(performance.now() - content.sent_at);
    if (loop.running) send(content.key);
  });
  const run = await closedLoop(loop, PAIRS, IN_FLIGHT, send, DURATION_MS, () => (latencies.length = 0), server, redis);
  const rate = (latencies.length / run.elapsed) * 1000;
  // The server's CPU time (all its threads) per delivered message: steadier than the rate on a
  // machine whose speed drifts, and what an optimization of the hub's own work changes.
  const perMsg = (ms: number | undefined) => (ms === undefined ? undefined : Number(((ms * 1000) / latencies.length).toFixed(1)));
  const figures = {
    rate,
    ...latencyFigures(latencies),
    cpu: run.clientCpuPct,
    server_cpu_us_per_msg: perMsg(run.serverCpuMs),
    server_loop_busy: run.serverElu,
    client_cpu_us_per_msg: perMsg(run.clientCpuMs),
    redis_cpu_us_per_msg: perMsg(run.redisCpuMs),
  };
  await c.close();
  server.stop();
  return figures;
}

/**
 * What the run says about the 0.3x target on this machine: the CPU per delivered message of the
 * load generator, the server and (on Redis) Redis, and how many cores those would need together
 * at 0.3x the floor's rate if each kept its cost per message (costs per message fall somewhat
 * with load, as batches grow: an estimate, not a bound).
 */
function cpuBudget(f: Awaited<ReturnType<typeof hubDirect>>, floorRate: number) {
  const total = (f.client_cpu_us_per_msg ?? 0) + (f.server_cpu_us_per_msg ?? 0) + (f.redis_cpu_us_per_msg ?? 0);
  return { cores_needed_at_0_3x: Number(((total * 0.3 * floorRate) / 1e6).toFixed(2)), cores: availableParallelism() };
}

/** The raw relay's senders and receivers, as the open loop drives them (the latency baseline). */
async function relayClients(server: Server, onData: (c: Content) => void): Promise<DirectClients> {
  const { senders, receivers } = await relayPairs(server);
  receivers.forEach((ws) => ws.on('message', (raw) => onData((JSON.parse(raw.toString()) as { payload: { content: Content } }).payload.content)));
  return {
    send: async (pair, content) => senders[pair]!.send(JSON.stringify({ to_agent: `r${pair}`, type: 'task', payload: { content } })),
    close: async () => [...senders, ...receivers].forEach((ws) => ws.terminate()),
  };
}

/**
 * Open loop: sends at a fixed rate whatever comes back; measures delivery latency. `target` is
 * `relay` (the baseline: the same load generator, on the same cores, against the raw relay) or a
 * hub's store.
 */
async function openLoop(target: Store | 'relay', redisUrl: string, perSecond: number) {
  const server = await startServer(target === 'relay' ? ['relay'] : ['hub', target, redisUrl, String(PAIRS * 2)]);
  const latencies: number[] = [];
  const trace: [number, number][] = [];
  let measuredFrom = Infinity;
  const onData = (content: Content) => {
    const now = performance.now();
    // Only messages sent in the measured window count (not a warm-up backlog delivered late).
    if (content.sent_at < measuredFrom) return;
    latencies.push(now - content.sent_at);
    if (process.env.BENCH_TRACE) trace.push([Math.round(now), Number((now - content.sent_at).toFixed(2))]);
  };
  const c = target === 'relay' ? await relayClients(server, onData) : await directClients(server, onData);
  const tickMs = 2;
  let owed = 0;
  let pair = 0;
  const t0 = performance.now();
  let last = t0;
  let warm = false;
  // Warm-up: the rate ramps up over WARMUP_MS (a cold hub runs unoptimized code and would pile up
  // a backlog that spills into the measurement), then holds for another WARMUP_MS unmeasured.
  while (performance.now() - t0 < 2 * WARMUP_MS + DURATION_MS) {
    if (!warm && performance.now() - t0 >= 2 * WARMUP_MS) {
      warm = true;
      measuredFrom = performance.now();
    }
    const now = performance.now();
    const ramp = Math.min(1, (now - t0) / Math.max(1, WARMUP_MS));
    owed += ((now - last) * perSecond * ramp) / 1000;
    last = now;
    for (; owed >= 1; owed--) {
      const p = pair++ % PAIRS;
      void c.send(p, { text: CONTENT, sent_at: performance.now(), key: p }).catch(() => {});
    }
    await sleep(tickMs);
  }
  await sleep(500);
  await c.close();
  server.stop();
  if (process.env.BENCH_TRACE) writeFileSync(`${process.env.BENCH_TRACE}.${target}.json`, JSON.stringify(trace));
  return { delivered_per_s: Math.round((latencies.length / DURATION_MS) * 1000), ...latencyFigures(latencies), ...tailFigures(latencies) };
}

async function hubBroadcast(store: Store, redisUrl: string, subscribers: number): Promise<number> {
  const server = await startServer(['hub', store, redisUrl, String(subscribers + 1)]);
  const url = server.info.url as string;
  const tokens = server.info.tokens as Record<string, string>;
  let deliveries = 0;
  const counts = new Map<number, number>();
  let seq = 0;
  const loop: Loop = { running: true };
  const onDelivery = (c: Content) => {
    deliveries++;
    const n = (counts.get(c.seq!) ?? 0) + 1;
    counts.set(c.seq!, n);
    if (n === subscribers) {
      counts.delete(c.seq!);
      if (loop.running) send();
    }
  };
  let sendOne: (content: Content) => Promise<unknown>;
  let closeAll: () => Promise<unknown>;
  if (CLIENT === 'typed') {
    const [sender] = clients(url, tokens, 0, 1);
    const subs = clients(url, tokens, 1, subscribers);
    for (let i = 0; i < subs.length; i += 200) await subscribeAll(subs.slice(i, i + 200), onDelivery);
    sendOne = (content) => sender!.trpc.messages.send.mutate({ type: 'broadcast', payload: { content } });
    closeAll = () => Promise.all([sender!, ...subs].map((c) => c.close()));
  } else {
    const sender = await WireClient.open(url, tokens.a0);
    const subs: WireClient[] = [];
    for (let i = 0; i < subscribers; i += 200) {
      const batch = await Promise.all(Array.from({ length: Math.min(200, subscribers - i) }, (_, j) => WireClient.open(url, tokens[`a${1 + i + j}`])));
      await Promise.all(
        batch.map((c) => c.subscribe('messages.inbox', {}, (json) => onDelivery((json as { data: InboxData['data'] }).data.message.payload.content))),
      );
      subs.push(...batch);
    }
    sendOne = (content) => sender.mutate('messages.send', { type: 'broadcast', payload: { content } });
    closeAll = async () => [sender, ...subs].forEach((c) => c.close());
  }
  const send = () => {
    sendOne({ text: CONTENT, sent_at: performance.now(), key: 0, seq: seq++ }).catch(
      (err: Error) => loop.running && console.error(`broadcast failed: ${err.message}`),
    );
  };
  const run = await closedLoop(loop, 1, 4, send, DURATION_MS, () => (deliveries = 0));
  const rate = (deliveries / run.elapsed) * 1000;
  await closeAll();
  server.stop();
  return rate;
}

async function idleConnections(store: Store, redisUrl: string) {
  // Baseline: bare ws connections on the relay.
  const relay = await startServer(['relay']);
  const relayBefore = await relay.stats();
  const raw: WebSocket[] = [];
  for (let i = 0; i < IDLE_AGENTS; i += 500)
    raw.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(500, IDLE_AGENTS - i) }, (_, j) => openRaw(`ws://127.0.0.1:${relay.info.port as number}`, `i${i + j}`)),
      )),
    );
  const relayAfter = await relay.stats();
  raw.forEach((ws) => ws.terminate());
  relay.stop();

  const server = await startServer(['hub', store, redisUrl, String(IDLE_AGENTS)]);
  const before = await server.stats();
  const conns: LinkerConnection[] = [];
  for (let i = 0; i < IDLE_AGENTS; i += 500) {
    const batch = clients(server.info.url as string, server.info.tokens as Record<string, string>, i, Math.min(500, IDLE_AGENTS - i));
    conns.push(...batch);
    await subscribeAll(batch, () => {});
  }
  const connected = await server.stats();
  await sleep(DURATION_MS);
  const idle = await server.stats();
  await Promise.all(conns.map((c) => c.close()));
  server.stop();
  const hubPerConn = (connected.rss - before.rss) / IDLE_AGENTS;
  const relayPerConn = (relayAfter.rss - relayBefore.rss) / IDLE_AGENTS;
  return {
    hub_rss_per_connection_kb: Number((hubPerConn / 1024).toFixed(1)),
    hub_heap_per_connection_kb: Number(((connected.heap - before.heap) / IDLE_AGENTS / 1024).toFixed(1)),
    relay_rss_per_connection_kb: Number((relayPerConn / 1024).toFixed(1)),
    idle_cpu_pct: Number((((idle.cpu_ms - connected.cpu_ms) / DURATION_MS) * 100).toFixed(2)),
    ratio: ratio(hubPerConn, relayPerConn),
  };
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
    redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', mkdtempSync(join(tmpdir(), 'bench-redis-'))],
      { stdio: 'ignore' },
    );
    redisUrl = `redis://127.0.0.1:${port}`;
    await sleep(300);
  }
  const shape = { pairs: PAIRS, in_flight: IN_FLIGHT, content_bytes: 512, duration_ms: DURATION_MS };
  // Reads Redis' own CPU time around the measured windows (INFO cpu): not on the hub's connection.
  const redisInfo = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 20 });
  try {
    const maxRate: Partial<Record<Store, number>> = {};
    if (SCENARIOS.has('direct') || SCENARIOS.has('latency')) {
      // Rounds of floor, hub on Redis, hub embedded, one after the other: each hub run is compared
      // with the floor measured in its own round (this machine's speed drifts between minutes).
      const floors: Awaited<ReturnType<typeof relayDirect>>[] = [];
      const hubs: Record<Store, Awaited<ReturnType<typeof hubDirect>>[]> = { redis: [], embedded: [] };
      for (let round = 0; round < ROUNDS; round++) {
        floors.push(await relayDirect());
        for (const store of STORES) hubs[store].push(await hubDirect(['hub', store, redisUrl, String(PAIRS * 2)], store === 'redis' ? redisInfo : undefined));
      }
      const floorRate = median(floors.map((f) => f.rate));
      const floor = floors.find((f) => f.rate === floorRate)!;
      print({
        scenario: 'direct',
        server: 'raw-ws-relay (floor)',
        msgs_per_s: Math.round(floorRate),
        p50_ms: floor.p50,
        p99_ms: floor.p99,
        client_cpu_pct: floor.cpu,
        server_cpu_us_per_msg: floor.server_cpu_us_per_msg,
        server_loop_busy: floor.server_loop_busy,
        ratio: 1,
        rounds: floors.map((f) => Math.round(f.rate)),
        shape,
      });
      for (const [adapter, label] of process.env.BENCH_CEILING === '0'
        ? []
        : ([
            ['trpc', "bare-trpc, tRPC's ws adapter"],
            ['hub', "bare-trpc, the hub's ws adapter (ceiling)"],
          ] as const)) {
        const bare = await hubDirect(['trpc', adapter]);
        print({
          scenario: 'direct',
          server: label,
          client: 'wire',
          msgs_per_s: Math.round(bare.rate),
          p50_ms: bare.p50_ms,
          p99_ms: bare.p99_ms,
          client_cpu_pct: bare.cpu,
          server_cpu_us_per_msg: bare.server_cpu_us_per_msg,
          ratio: ratio(bare.rate, floorRate),
          shape,
        });
      }
      for (const store of STORES) {
        const ratios = hubs[store].map((h, i) => h.rate / floors[i]!.rate);
        const mid = ratios.indexOf(median(ratios));
        const figures = hubs[store][mid]!;
        maxRate[store] = median(hubs[store].map((h) => h.rate));
        print({
          scenario: 'direct',
          server: `hub-${store}`,
          client: CLIENT,
          msgs_per_s: Math.round(figures.rate),
          p50_ms: figures.p50_ms,
          p99_ms: figures.p99_ms,
          client_cpu_pct: figures.cpu,
          server_cpu_us_per_msg: figures.server_cpu_us_per_msg,
          server_loop_busy: figures.server_loop_busy,
          ratio: ratio(figures.rate, floors[mid]!.rate),
          round_ratios: ratios.map((r) => Number(r.toFixed(3))),
          client_cpu_us_per_msg: figures.client_cpu_us_per_msg,
          redis_cpu_us_per_msg: figures.redis_cpu_us_per_msg,
          ...cpuBudget(figures, floors[mid]!.rate),
          shape,
        });
      }
    }
    if (SCENARIOS.has('latency')) {
      for (const store of ['redis', 'embedded'] as const) {
        const rate = Math.round(Number(process.env.BENCH_LATENCY_RATE ?? 0) || (maxRate[store] ?? 1000) / 2);
        // The baseline: the raw relay under the same open loop at the same rate, just before.
        const floor = await openLoop('relay', redisUrl, rate);
        print({ scenario: 'latency-open-loop-50pct', server: 'raw-ws-relay (baseline)', for: `hub-${store}`, offered_msgs_per_s: rate, ...floor, ratio: 1 });
        const lat = await openLoop(store, redisUrl, rate);
        print({
          scenario: 'latency-open-loop-50pct',
          server: `hub-${store}`,
          offered_msgs_per_s: rate,
          ...lat,
          baseline_p99_ms: floor.p99_ms,
          goal_p99_ms: 5,
          goal_met: lat.p99_ms <= 5,
          ratio: ratio(lat.p99_ms, floor.p99_ms),
        });
      }
    }
    if (SCENARIOS.has('broadcast')) {
      for (const n of [100, 1000]) {
        const floor = await relayBroadcast(n);
        print({ scenario: `broadcast-${n}`, server: 'raw-ws-broadcast (floor)', deliveries_per_s: Math.round(floor), ratio: 1 });
        for (const store of ['redis', 'embedded'] as const) {
          const rate = await hubBroadcast(store, redisUrl, n);
          print({ scenario: `broadcast-${n}`, server: `hub-${store}`, client: CLIENT, deliveries_per_s: Math.round(rate), ratio: ratio(rate, floor) });
        }
      }
    }
    if (SCENARIOS.has('idle')) {
      const r = await idleConnections('redis', redisUrl);
      print({ scenario: `idle-${IDLE_AGENTS}`, server: 'hub-redis', ...r, goal_kb_per_connection: 30 });
    }
  } finally {
    redisInfo.disconnect();
    redis?.kill();
  }
  process.exit(0);
}

await main();
