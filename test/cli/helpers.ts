/**
 * End-to-end helpers for the built CLI: every command runs as its own `node
 * dist/bin/skynet-linker.js` process, with its own data directory (`SKYNET_LINKER_HOME`), against
 * a hub started as a `serve` process. Waits are on conditions (a line appearing on a stream, a
 * process exiting), never on fixed sleeps, and every process started here is tracked and killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist', 'bin', 'skynet-linker.js');
export const REPLY_AGENT = join(ROOT, 'test', 'fixtures', 'cli', 'reply-agent.mjs');

/** For a `beforeAll`: the suite runs the built CLI, so it must exist. */
export function assertBuilt(): void {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} is missing: the CLI end-to-end tests run the built CLI. Run \`npm run build\` first (\`npm test\` does it).`);
  }
}

export type StoreKind = 'redis' | 'embedded';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Every process started by these helpers, so a crashed worker still kills them. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

type Match = string | RegExp | ((line: string) => boolean);
const matches = (m: Match, line: string) => (typeof m === 'string' ? line.includes(m) : m instanceof RegExp ? m.test(line) : m(line));

/** A running process with its output captured, and waits on what it prints. */
export class Proc {
  stdout = '';
  stderr = '';
  readonly exited: Promise<RunResult>;
  private waiters: { stream: 'stdout' | 'stderr'; match: Match; resolve: (line: string) => void }[] = [];
  private result: RunResult | null = null;

  constructor(
    readonly child: ChildProcess,
    readonly label: string,
  ) {
    live.add(child);
    const partial = { stdout: '', stderr: '' };
    const onData = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this[stream] += text;
      // Hand complete lines to waiters.
      partial[stream] += text;
      const lines = partial[stream].split('\n');
      partial[stream] = lines.pop() ?? '';
      for (const line of lines) this.offer(stream, line);
    };
    child.stdout?.on('data', onData('stdout'));
    child.stderr?.on('data', onData('stderr'));
    this.exited = new Promise<RunResult>((resolve) => {
      child.once('close', (code, signal) => {
        live.delete(child);
        for (const stream of ['stdout', 'stderr'] as const) if (partial[stream]) this.offer(stream, partial[stream]);
        this.result = { code, signal, stdout: this.stdout, stderr: this.stderr };
        resolve(this.result);
      });
    });
  }

  get running(): boolean {
    return this.result === null;
  }

  lines(stream: 'stdout' | 'stderr' = 'stdout'): string[] {
    return this[stream].split('\n').filter((l) => l.length > 0);
  }

  private offer(stream: 'stdout' | 'stderr', line: string): void {
    this.waiters = this.waiters.filter((w) => {
      if (w.stream !== stream || !matches(w.match, line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** Resolves with the first line (already printed or to come) of `stream` matching `match`. */
  waitForLine(match: Match, opts: { stream?: 'stdout' | 'stderr'; timeoutMs?: number } = {}): Promise<string> {
    const stream = opts.stream ?? 'stdout';
    const timeoutMs = opts.timeoutMs ?? 15_000;
    const already = this[stream].split('\n').find((l) => matches(match, l));
    if (already !== undefined) return Promise.resolve(already);
    return new Promise<string>((resolve, reject) => {
      const fail = (why: string) =>
        reject(new Error(`${this.label}: ${why} waiting for ${String(match)} on ${stream}\n--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`));
      const timer = setTimeout(() => fail(`no match within ${timeoutMs} ms`), timeoutMs);
      const waiter = {
        stream,
        match,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.waiters.push(waiter);
      void this.exited.then((r) => {
        if (!this.waiters.includes(waiter)) return;
        clearTimeout(timer);
        fail(`exited (code ${r.code}, signal ${r.signal})`);
      });
    });
  }

  /** Sends `signal` and resolves once the process has exited. */
  async stop(signal: NodeJS.Signals = 'SIGINT', timeoutMs = 10_000): Promise<RunResult> {
    if (this.result) return this.result;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }
}

/** The environment of every CLI process: the test's own data home, nothing from the outside. */
function childEnv(home: string, extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('SKYNET_LINKER_') || k === 'DEBUG' || k === 'FORCE_COLOR' || k === 'NO_COLOR' || k === 'LOG_LEVEL') continue;
    env[k] = v;
  }
  env.SKYNET_LINKER_HOME = home;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface Hub {
  proc: Proc;
  kind: StoreKind;
  port: number;
  /** `ws://localhost:PORT/ws`, as printed by `serve`. */
  url: string;
  /** All of serve's first lines (hub line, sealing, credential). */
  banner: string[];
}

/**
 * One user's machine: a data home (`SKYNET_LINKER_HOME`), a working directory for files, and the
 * processes started from it. Client commands get `SKYNET_LINKER_SERVER` once a hub is up, so the
 * command lines are exactly the ones a user types against the default `ws://localhost:8000/ws`.
 */
export class Machine {
  readonly root: string;
  readonly home: string;
  readonly cwd: string;
  server: string | undefined;
  private procs = new Set<Proc>();

  constructor() {
    this.root = mkdtempSync(join(tmpdir(), 'skynet-cli-'));
    this.home = join(this.root, 'home');
    this.cwd = join(this.root, 'work');
    mkdirSync(this.cwd, { recursive: true });
  }

  /** Writes a file in the working directory and returns its name (relative, as a user types it). */
  file(name: string, content: string | object): string {
    writeFileSync(join(this.cwd, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    return name;
  }

  /** Writes a file in the data home (e.g. a credential), creating the directory. */
  homeFile(name: string, content: string | object): string {
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
    const path = join(this.home, name);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2), { mode: 0o600 });
    return path;
  }

  path(name: string): string {
    return join(this.cwd, name);
  }

  /** Starts `node <script> ...args` (the CLI by default) in the background. */
  spawn(args: string[], opts: { env?: Record<string, string | undefined>; script?: string } = {}): Proc {
    const script = opts.script ?? CLI;
    const env = childEnv(this.home, { SKYNET_LINKER_SERVER: this.server, ...opts.env });
    const child = spawn(process.execPath, [script, ...args], { cwd: this.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = new Proc(child, `${script === CLI ? 'skynet-linker' : script} ${args.join(' ')}`);
    this.procs.add(proc);
    void proc.exited.then(() => this.procs.delete(proc));
    return proc;
  }

  /** Runs one CLI command to completion (killed and reported after `timeoutMs`). */
  async run(args: string[], opts: { env?: Record<string, string | undefined>; timeoutMs?: number; script?: string } = {}): Promise<RunResult> {
    const proc = this.spawn(args, opts);
    const timeoutMs = opts.timeoutMs ?? 15_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        proc.child.kill('SIGKILL');
        reject(new Error(`${proc.label}: still running after ${timeoutMs} ms\n--- stdout ---\n${proc.stdout}\n--- stderr ---\n${proc.stderr}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([proc.exited, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a command that must succeed (exit 0, nothing on stderr) and returns its stdout. */
  async ok(args: string[], opts: { env?: Record<string, string | undefined>; allowStderr?: boolean } = {}): Promise<string> {
    const r = await this.run(args, opts);
    if (r.code !== 0 || (!opts.allowStderr && r.stderr !== '')) {
      throw new Error(`skynet-linker ${args.join(' ')}: exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
    }
    return r.stdout;
  }

  /**
   * Starts `serve --port 0` (embedded store, or Redis with a private key prefix), waits for its
   * banner, parses the port from the first line and points client commands at it.
   */
  async serve(kind: StoreKind, extra: string[] = []): Promise<Hub> {
    const args = ['serve', '--port', '0', ...extra];
    if (kind === 'redis') args.push('--redis', inject('redisUrl'), '--prefix', `t:${randomUUID()}:`);
    const proc = this.spawn(args, { env: { SKYNET_LINKER_SERVER: undefined } });
    const first = await proc.waitForLine(/^Skynet Linker hub on /);
    const m = /^Skynet Linker hub on ws:\/\/localhost:(\d+)\/ws — /.exec(first);
    if (!m) throw new Error(`serve: unexpected first line: ${first}`);
    // Client commands need the admin credential, written just before this line.
    await proc.waitForLine(/admin credential/);
    const port = Number(m[1]);
    const url = `ws://localhost:${port}/ws`;
    this.server = url;
    return { proc, kind, port, url, banner: proc.lines() };
  }

  /** Kills every process still running, except `keep`. */
  async killAll(opts: { except?: Proc[]; signal?: NodeJS.Signals } = {}): Promise<void> {
    const victims = [...this.procs].filter((p) => !opts.except?.includes(p));
    await Promise.all(victims.map((p) => p.stop(opts.signal ?? 'SIGKILL', 5_000)));
  }

  async dispose(): Promise<void> {
    await this.killAll();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Parses stdout made of one JSON object per line. */
export function jsonLines(text: string): any[] {
  return text
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as unknown);
}
