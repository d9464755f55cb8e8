/**
 * Test harness: a real hub on port 0 over a real store (private Redis from the global setup, the
 * SQLite store on a file in a temporary directory, or the in-memory embedded store), agents registered with real tokens, real typed clients. Everything is closed by `close()`.
 */
import { inject } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import WebSocket from 'ws';
import { pino } from 'pino';
import { randomUUID } from 'node:crypto';
import { createHub, type Hub, type HubOptions } from '../../transport/hub.js';
import { RedisStore } from '../../memory/redis/store.js';
import { EmbeddedStore } from '../../memory/embedded/store.js';
import { SqliteStore } from '../../memory/sqlite/store.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyRingSealer } from '../../memory/sealing.js';
import { KeyRing } from '../../crypto/keyring.js';
import type { Scope } from '../../memory/tokens.js';
import { createLinkerClient, type LinkerConnection } from '../../clients/client.js';
import { connectAgent, type AgentOptions, type LinkerAgent } from '../../clients/agent.js';

export type StoreKind = 'redis' | 'sqlite' | 'embedded';

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
  const dataDir = kind === 'sqlite' ? mkdtempSync(join(tmpdir(), 'skynet-hub-')) : undefined;
  const store = kind === 'redis' ? new RedisStore({ url: inject('redisUrl'), prefix }) : dataDir ? new SqliteStore({ dataDir }) : new EmbeddedStore();
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
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
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

// ---------------------------------------------------------------------------------------------
// Helpers for wire-level tests (auth, errors, wire protocol): a plain `ws` client that speaks the
// frames by hand, a WebSocket class that counts connection attempts, and a captured pino logger.

/** One frame received by a {@link RawSocket}: the parsed JSON, or the text for PING/PONG. */
export type RawFrame = { text: string; json: Record<string, any> | null };

/** A plain WebSocket speaking tRPC's JSON frames by hand, as an agent in another language would. */
export interface RawSocket {
  ws: WebSocket;
  /** Every frame received so far, in order. */
  frames: RawFrame[];
  /** Resolves with the close code once the socket is closed. */
  closed: Promise<number>;
  send(frame: unknown): void;
  /** The first frame (received already or later) matching `match` that was not taken before. */
  next(match: (f: RawFrame) => boolean, timeoutMs?: number): Promise<RawFrame>;
  /** The next unseen JSON frame answering request `id`. */
  reply(id: number | string, timeoutMs?: number): Promise<Record<string, any>>;
  close(): Promise<void>;
}

/**
 * Opens a plain WebSocket to the hub. With `connectionParams`, it connects with
 * `?connectionParams=1` and sends `{"method":"connectionParams","data":...}` as its first frame.
 */
export async function openRawSocket(url: string, opts: { connectionParams?: Record<string, string> } = {}): Promise<RawSocket> {
  const ws = new WebSocket(opts.connectionParams ? `${url}?connectionParams=1` : url);
  const frames: RawFrame[] = [];
  const taken = new Set<number>();
  const waiters: { match: (f: RawFrame) => boolean; resolve: (f: RawFrame) => void }[] = [];
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('error', () => {}); // a failed socket reports through `closed`
  ws.on('message', (data) => {
    const text = data.toString();
    let json: Record<string, any> | null = null;
    try {
      json = JSON.parse(text) as Record<string, any>;
    } catch {
      json = null;
    }
    const frame = { text, json };
    frames.push(frame);
    const i = waiters.findIndex((w) => w.match(frame));
    if (i >= 0) {
      taken.add(frames.length - 1);
      waiters.splice(i, 1)[0]!.resolve(frame);
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const send = (frame: unknown) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  if (opts.connectionParams) send({ method: 'connectionParams', data: opts.connectionParams });
  const next = (match: (f: RawFrame) => boolean, timeoutMs = 5_000) => {
    const i = frames.findIndex((f, idx) => !taken.has(idx) && match(f));
    if (i >= 0) {
      taken.add(i);
      return Promise.resolve(frames[i]!);
    }
    return new Promise<RawFrame>((resolve, reject) => {
      const waiter = {
        match,
        resolve: (f: RawFrame) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no matching frame within ${timeoutMs} ms; received: ${frames.map((f) => f.text.slice(0, 200)).join('\n')}`));
      }, timeoutMs);
      waiters.push(waiter);
    });
  };
  return {
    ws,
    frames,
    closed,
    send,
    next,
    reply: async (id, timeoutMs) => (await next((f) => f.json?.id === id, timeoutMs)).json!,
    async close() {
      if (ws.readyState !== WebSocket.CLOSED) {
        ws.close();
        await closed;
      }
    },
  };
}

/** A `ws` WebSocket subclass that counts how many connections the code under test opened. */
export function recordingWebSocket() {
  const record = { constructed: 0, opened: 0 };
  class RecordingWebSocket extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      record.constructed++;
      this.once('open', () => record.opened++);
    }
  }
  return { WebSocket: RecordingWebSocket, record };
}

/** A pino logger whose JSON lines are kept in `lines` (parsed), to assert on what the hub logs. */
export function capturedLogger(level = 'info') {
  const lines: Record<string, any>[] = [];
  const stream = {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, any>);
    },
  };
  return { logger: pino({ level }, stream), lines };
}

/** The TRPCClientError `p` rejects with; throws if it resolves or fails with anything else. */
export async function rejection(p: Promise<unknown>): Promise<TRPCClientError<any>> {
  const outcome = await p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) throw new Error(`expected the call to fail, it returned ${JSON.stringify(outcome.value)}`);
  if (!(outcome.error instanceof TRPCClientError)) throw outcome.error;
  return outcome.error as TRPCClientError<any>;
}
