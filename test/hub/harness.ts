/**
 * Test harness: a real hub on port 0 over a real store (private Redis from the global setup, or
 * embedded), agents registered with real tokens, real typed clients. Everything is closed by `close()`.
 */
import { inject } from 'vitest';
import WebSocket from 'ws';
import { pino } from 'pino';
import { randomUUID } from 'node:crypto';
import { createHub, type Hub, type HubOptions } from '../../transport/hub.js';
import { RedisStore } from '../../memory/redis/store.js';
import { EmbeddedStore } from '../../memory/embedded/store.js';
import { keyRingSealer } from '../../memory/sealing.js';
import { KeyRing } from '../../crypto/keyring.js';
import type { Scope } from '../../memory/tokens.js';
import { createLinkerClient, type LinkerConnection } from '../../clients/client.js';
import { connectAgent, type AgentOptions, type LinkerAgent } from '../../clients/agent.js';

export type StoreKind = 'redis' | 'embedded';

export interface TestHub {
  hub: Hub;
  kind: StoreKind;
  prefix: string;
  /** Registers an agent and returns its token. */
  addAgent(agentId: string, opts?: { type?: string; scopes?: Scope[] }): Promise<string>;
  client(token: string | undefined, extra?: Partial<Parameters<typeof createLinkerClient>[0]>): LinkerConnection;
  agent(agentId: string, opts?: Partial<AgentOptions>): Promise<LinkerAgent>;
  close(): Promise<void>;
}

export async function startTestHub(kind: StoreKind, opts: HubOptions = {}): Promise<TestHub> {
  const prefix = `t:${randomUUID()}:`;
  const store = kind === 'redis' ? new RedisStore({ url: inject('redisUrl'), prefix }) : new EmbeddedStore();
  const hub = await createHub({
    store,
    sealer: keyRingSealer(KeyRing.generate()),
    port: 0,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    ...opts,
  });
  const tokens = new Map<string, string>();
  const connections: LinkerConnection[] = [];
  const agents: LinkerAgent[] = [];
  const t: TestHub = {
    hub,
    kind,
    prefix,
    async addAgent(agentId, o = {}) {
      await hub.memory.agents.upsert({ agent_id: agentId, agent_type: o.type ?? 'agent' });
      await hub.memory.channels.join('skynet_core', agentId);
      const { token } = await hub.memory.tokens.issue(agentId, o.scopes ?? ['agent']);
      tokens.set(agentId, token);
      return token;
    },
    client(token, extra = {}) {
      const c = createLinkerClient({ url: hub.url, token, WebSocket, ...extra });
      connections.push(c);
      return c;
    },
    async agent(agentId, o = {}) {
      const token = tokens.get(agentId) ?? (await t.addAgent(agentId));
      const a = await connectAgent({ url: hub.url, token, agentId, WebSocket, ...o });
      agents.push(a);
      await a.ready;
      return a;
    },
    async close() {
      await Promise.all(agents.map((a) => a.close().catch(() => {})));
      await Promise.all(connections.map((c) => c.close().catch(() => {})));
      await hub.close();
    },
  };
  return t;
}

/** A promise with its resolve/reject exposed, for waiting on events. */
export function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
