/**
 * Fault-test harness: a private redis-server per test file (AOF on, so it can be killed and
 * restarted on the same port and directory with its data), and hub nodes as real `serve`
 * processes of the built CLI sharing that Redis, one key prefix and one data directory (so one key
 * file and one admin credential). Clients are real typed clients and agent runtimes. Every wait is
 * on a condition (a line on stdout, a process exit, /health answering); `dispose()` kills every
 * process started here. To see what the nodes logged, run with FAULTS_LOG_DIR=/some/dir (and
 * TEST_LOG_LEVEL=info): each node's stderr is written there at the end.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import { afterAll, beforeAll } from 'vitest';
import { TRPCClientError } from '@trpc/client';
import { createLinkerClient, type LinkerClientOptions, type LinkerConnection } from '../../clients/client.js';
import { connectAgent, type AgentOptions, type LinkerAgent } from '../../clients/agent.js';
import { CLI, Proc, assertBuilt } from '../cli/helpers.js';
import { freePort, startRedis, type RedisProcess } from '../setup/redis-process.js';

export { assertBuilt };

export interface HubNode {
  name: string;
  port: number;
  /** ws://127.0.0.1:PORT/ws */
  url: string;
  /** http://127.0.0.1:PORT */
  httpUrl: string;
  proc: Proc;
}

export interface Health {
  status: number;
  body: { status: string; store: { kind: string; reachable: boolean }; node: string } | null;
}

/** What a failed call says: its tRPC code (or the error message when it has none). */
export function errorCode(err: unknown): string {
  if (err instanceof TRPCClientError) return (err.data as { code?: string } | undefined)?.code ?? `no code: ${err.message}`;
  return err instanceof Error ? `not a tRPC error: ${err.message}` : String(err);
}

export class Cluster {
  readonly root = mkdtempSync(join(tmpdir(), 'skynet-faults-'));
  readonly dataDir = join(this.root, 'home');
  readonly redisDir = join(this.root, 'redis');
  readonly prefix = `f:${randomUUID().slice(0, 8)}:`;
  /** The key file's passphrase, the same on every node (as in production). */
  readonly passphrase = randomBytes(16).toString('base64url');
  redis: RedisProcess | null = null;
  redisPort = 0;
  readonly nodes = new Map<string, HubNode>();
  private readonly connections: LinkerConnection[] = [];
  private readonly agents: LinkerAgent[] = [];
  private adminToken: string | null = null;
  private adminConnection: LinkerConnection | null = null;

  constructor() {
    mkdirSync(this.redisDir, { recursive: true });
  }

  get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}`;
  }

  /** Starts (or restarts, same port and directory) redis-server with AOF fsynced on every write. */
  async startRedis(): Promise<RedisProcess> {
    if (!this.redisPort) this.redisPort = await freePort();
    this.redis = await startRedis({ port: this.redisPort, dir: this.redisDir, args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    return this.redis;
  }

  /** SIGKILLs redis-server (no save, no goodbye: what a crash looks like to the hub). */
  async killRedis(): Promise<void> {
    await this.redis?.stop();
    this.redis = null;
  }

  /** Runs redis-cli against the private Redis and returns its output. */
  async redisCli(...args: string[]): Promise<string> {
    const child = spawn('redis-cli', ['-p', String(this.redisPort), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve) => child.once('close', () => resolve()));
    return out;
  }

  /** Starts `serve` as node `name` (on `port`, e.g. the one it had before a crash) and waits for its banner. */
  async startNode(name: string, opts: { port?: number; extraArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<HubNode> {
    const port = opts.port ?? (await freePort());
    const args = [
      CLI,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--redis',
      this.redisUrl,
      '--prefix',
      this.prefix,
      '--data-dir',
      this.dataDir,
      '--log-level',
      process.env.TEST_LOG_LEVEL ?? 'warn',
      ...(opts.extraArgs ?? []),
    ];
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SKYNET_LINKER_') && k !== 'LOG_LEVEL') env[k] = v;
    env.SKYNET_LINKER_PASSPHRASE = this.passphrase;
    Object.assign(env, opts.env);
    const child = spawn(process.execPath, args, { cwd: this.root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = new Proc(child, `serve (${name})`);
    await proc.waitForLine(/^Skynet Linker hub on /);
    await proc.waitForLine(/admin credential/);
    const node: HubNode = { name, port, url: `ws://127.0.0.1:${port}/ws`, httpUrl: `http://127.0.0.1:${port}`, proc };
    this.nodes.set(name, node);
    return node;
  }

  node(name: string): HubNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** GET /health of a node (status and parsed body). */
  async health(name: string): Promise<Health> {
    const res = await fetch(`${this.node(name).httpUrl}/health`);
    const text = await res.text();
    let body: Health['body'] = null;
    try {
      body = JSON.parse(text) as Health['body'];
    } catch {
      body = null;
    }
    return { status: res.status, body };
  }

  private admin(): LinkerConnection {
    if (!this.adminToken) {
      const cred = JSON.parse(readFileSync(join(this.dataDir, 'admin.json'), 'utf8')) as { token: string };
      this.adminToken = cred.token;
    }
    if (!this.adminConnection)
      this.adminConnection = this.client(
        this.adminToken,
        [...this.nodes.values()].map((n) => n.url),
      );
    return this.adminConnection;
  }

  get adminCredential(): string {
    this.admin();
    return this.adminToken!;
  }

  /** Registers an agent through the admin API (on the nodes started so far) and returns its token. */
  async addAgent(agentId: string, opts: { scopes?: ('agent' | 'monitor' | 'admin')[] } = {}): Promise<string> {
    const admin = this.admin();
    const { token } = await admin.trpc.agents.add.mutate({ agent_id: agentId, scopes: opts.scopes ?? ['agent'] });
    return token;
  }

  /** A typed WebSocket client on `url` (one node or a failover list). */
  client(token: string, url: string | string[], extra: Partial<LinkerClientOptions> = {}): LinkerConnection {
    const c = createLinkerClient({ url, token, WebSocket, retryDelayMs: () => 20, ...extra });
    this.connections.push(c);
    return c;
  }

  /** An agent runtime, live once this resolves. */
  async agent(agentId: string, token: string, url: string | string[], extra: Partial<AgentOptions> = {}): Promise<LinkerAgent> {
    const a = await connectAgent({ agentId, url, token, WebSocket, retryDelayMs: () => 20, ackIntervalMs: 50, ...extra });
    this.agents.push(a);
    await a.ready;
    return a;
  }

  async dispose(): Promise<void> {
    if (process.env.FAULTS_LOG_DIR) {
      const { writeFileSync } = await import('node:fs');
      for (const n of this.nodes.values()) writeFileSync(join(process.env.FAULTS_LOG_DIR, `${n.name}-${n.port}.log`), n.proc.stderr);
    }
    await Promise.all(this.agents.map((a) => a.close().catch(() => {})));
    await Promise.all(this.connections.map((c) => c.close().catch(() => {})));
    await Promise.all([...this.nodes.values()].map((n) => n.proc.stop('SIGKILL', 5_000)));
    await this.killRedis();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Runs `task` for each of `items` with at most `width` running at once. */
export async function inParallel<T>(items: T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

/**
 * The cluster most fault tests run: a private Redis (AOF, fsync always) and nodes A and B started
 * before the file's tests, everything stopped and removed after them.
 */
export function twoNodeCluster(): Cluster {
  const c = new Cluster();
  beforeAll(async () => {
    assertBuilt();
    await c.startRedis();
    await c.startNode('A');
    await c.startNode('B');
  }, 60_000);
  afterAll(async () => c.dispose());
  return c;
}
