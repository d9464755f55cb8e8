/**
 * Benchmark servers, run as a child process so clients and server don't share an event loop:
 * `relay` is the floor (parse JSON, route by recipient, re-send); `hub` is the real hub.
 * Prints one JSON line `{ "port": N, ... }` on stdout once listening.
 */
import { WebSocketServer, WebSocket } from 'ws';
import { pino } from 'pino';
import { createHub } from '../transport/hub.js';
import { RedisStore } from '../memory/redis/store.js';
import { EmbeddedStore } from '../memory/embedded/store.js';
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

async function hub(storeKind: string, redisUrl: string | undefined, agents: number): Promise<void> {
  const store = storeKind === 'redis' ? new RedisStore({ url: redisUrl!, prefix: `bench:${Date.now()}:` }) : new EmbeddedStore();
  const h = await createHub({
    store,
    sealer: keyRingSealer(KeyRing.generate()),
    port: 0,
    rateLimit: { perSecond: 0 },
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

// `stats` on stdin answers with this process's memory and CPU, for the idle-connections scenario.
process.stdin.setEncoding('utf8');
process.stdin.on('data', (line: string) => {
  if (!line.startsWith('stats')) return;
  globalThis.gc?.();
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({ rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, cpu_ms: (cpu.user + cpu.system) / 1000 }));
});

const [mode = 'relay', storeKind = 'redis', redisUrl, agents = '40'] = process.argv.slice(2);
if (mode === 'relay') await relay();
else await hub(storeKind, redisUrl, Number(agents));
process.on('SIGTERM', () => process.exit(0));
