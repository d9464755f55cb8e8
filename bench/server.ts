/**
 * Benchmark servers, run as a child process so clients and server don't share an event loop:
 * `relay` is the floor (parse JSON, route by recipient, re-send); `hub` is the real hub.
 * Prints one JSON line `{ "port": N, ... }` on stdout once listening.
 */
import { performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket } from 'ws';
import { pino } from 'pino';
import { initTRPC, tracked } from '@trpc/server';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { createHub } from '../transport/hub.js';
import { serveWebSocket } from '../transport/ws-adapter.js';
import { wrapSocketWrites } from '../transport/socket-writes.js';
import { RedisStore } from '../memory/redis/store.js';
import { EmbeddedStore } from '../memory/embedded/store.js';
import { SqliteStore } from '../memory/sqlite/store.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyRingSealer } from '../memory/sealing.js';
import { KeyRing } from '../crypto/keyring.js';

async function relay(): Promise<void> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const byId = new Map<string, WebSocket>();
  wss.on('connection', (ws) => {
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString()) as { hello?: string; to_agent?: string };
      if (msg.hello) {
        byId.set(msg.hello, ws);
        ws.send('{"ok":true}');
        return;
      }
      if (msg.to_agent) {
        byId.get(msg.to_agent)?.send(JSON.stringify(msg));
        return;
      }
      // Broadcast: serialized once, sent to every other socket.
      const text = JSON.stringify(msg);
      for (const other of byId.values()) if (other !== ws) other.send(text);
    });
  });
  await new Promise((r) => wss.once('listening', r));
  console.log(JSON.stringify({ port: (wss.address() as { port: number }).port }));
}

/**
 * The tRPC ceiling: the same wire protocol as the hub (tRPC v11 over ws, `{ json }` envelopes)
 * with nothing behind it: no auth, validation, store, sealing or resume. `send` hands the input to
 * the recipient's `inbox` subscription in memory. Behind the hub's own WebSocket adapter
 * (transport/ws-adapter.ts): what the hub can reach at most while it is a tRPC router; behind
 * tRPC's `applyWSSHandler`: what that adapter alone allows.
 */
async function trpcFloor(adapter: 'trpc' | 'hub'): Promise<void> {
  const envelope = { serialize: (v: unknown) => ({ json: v }), deserialize: (v: unknown) => (v as { json: unknown } | undefined)?.json };
  const t = initTRPC.create({ transformer: envelope });
  const listeners = new Map<string, (item: { id: string; message: unknown }) => void>();
  let seq = 0;
  const router = t.router({
    messages: t.router({
      send: t.procedure
        .input((v) => v as { to_agent: string })
        .mutation(({ input }) => {
          const id = `${Date.now()}-${seq++}`;
          listeners.get(input.to_agent)?.({ id, message: input });
          return { id };
        }),
      inbox: t.procedure
        .input((v) => v as { agent: string })
        .subscription(async function* ({ input, signal }) {
          const queue: { id: string; message: unknown }[] = [];
          let wake: (() => void) | undefined;
          listeners.set(input.agent, (item) => {
            queue.push(item);
            wake?.();
          });
          try {
            while (!signal?.aborted) {
              const item = queue.shift();
              if (!item) {
                await new Promise<void>((r) => (wake = r));
                wake = undefined;
                continue;
              }
              yield tracked(item.id, { stream_id: item.id, replayed: false, message: item.message });
            }
          } finally {
            listeners.delete(input.agent);
          }
        }),
    }),
  });
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  if (adapter === 'hub') serveWebSocket({ wss, router, createContext: async () => ({}) });
  else applyWSSHandler({ wss, router, createContext: () => ({}) });
  // The hub's write batching (transport/socket-writes.ts), so the ceiling has the same transport.
  wss.on('connection', (ws) => wrapSocketWrites(ws));
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as { port: number }).port;
  console.log(JSON.stringify({ port, url: `ws://127.0.0.1:${port}/ws`, tokens: {}, floor: 'trpc' }));
}

/**
 * The embedded store `serve` runs on: SQLite on a file in a temporary directory (removed when the
 * bench stops this process), or with BENCH_EMBEDDED=memory the in-memory store of tests.
 */
function embeddedStore(): SqliteStore | EmbeddedStore {
  if (process.env.BENCH_EMBEDDED === 'memory') return new EmbeddedStore();
  const dir = mkdtempSync(join(tmpdir(), 'skynet-bench-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', remove);
  process.once('SIGTERM', () => process.exit(0));
  return new SqliteStore({ dataDir: dir, durability: process.env.BENCH_DURABILITY === 'power' ? 'power' : 'process' });
}

async function hub(storeKind: string, redisUrl: string | undefined, agents: number): Promise<void> {
  const store = storeKind === 'redis' ? new RedisStore({ url: redisUrl!, prefix: `bench:${Date.now()}:` }) : embeddedStore();
  const h = await createHub({
    store,
    ...(process.env.BENCH_NO_SEAL ? {} : { sealer: keyRingSealer(KeyRing.generate(), { offThread: process.env.BENCH_SEAL_THREAD !== '0' }) }),
    sealInMemory: process.env.BENCH_SEAL_IN_MEMORY === '1',
    port: 0,
    rateLimit: { perSecond: 0 },
    // The load generators run on one address and open hundreds of sockets at once.
    maxUnauthenticatedPerAddress: 100_000,
    logger: pino({ level: 'silent' }),
  });
  const tokens: Record<string, string> = {};
  for (let i = 0; i < agents; i++) {
    const id = `a${i}`;
    await h.memory.agents.upsert({ agent_id: id, agent_type: 'bench' });
    await h.memory.channels.join('skynet_core', id);
    tokens[id] = (await h.memory.tokens.issue(id, ['agent'])).token;
  }
  console.log(JSON.stringify({ port: h.port, url: h.url, tokens }));
}

let lastElu = performance.eventLoopUtilization();
// `stats` on stdin answers with this process's memory and CPU, for the idle-connections scenario.
process.stdin.setEncoding('utf8');
process.stdin.on('data', (line: string) => {
  // `cpu`: this process's CPU time only (no GC first: it runs while load is measured).
  if (line.startsWith('cpu')) {
    const cpu = process.cpuUsage();
    // With the event loop's utilization since the last `cpu` (how busy the main thread was).
    const elu = performance.eventLoopUtilization(lastElu);
    lastElu = performance.eventLoopUtilization();
    console.log(JSON.stringify({ rss: 0, heap: 0, cpu_ms: (cpu.user + cpu.system) / 1000, elu: Number(elu.utilization.toFixed(3)) }));
    return;
  }
  if (!line.startsWith('stats')) return;
  globalThis.gc?.();
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({ rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, cpu_ms: (cpu.user + cpu.system) / 1000 }));
});

const [mode = 'relay', storeKind = 'redis', redisUrl, agents = '40'] = process.argv.slice(2);
if (mode === 'relay') await relay();
else if (mode === 'trpc') await trpcFloor(storeKind === 'hub' ? 'hub' : 'trpc');
else await hub(storeKind, redisUrl, Number(agents));
process.on('SIGTERM', () => process.exit(0));
