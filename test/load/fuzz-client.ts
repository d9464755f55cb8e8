/**
 * The fuzzing client, run as a child process by fuzz.test.ts (transpiled with the project's own
 * TypeScript), so generating and checking frames uses another core than the hub under test.
 * Pipelines chunks of fast-check frames over several authenticated raw WebSockets, accounts for
 * every reply the hub owes (see `expectReplies`), then sends a few 400 KB deeply nested frames one
 * by one, and reports a summary to the parent over IPC.
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { deepFrame, expectReplies, frameArbitrary, type Expectation, type FuzzFrame } from './fuzz-frames.js';

export interface FuzzClientConfig {
  url: string;
  /** One socket per fuzzing agent. */
  agents: { id: string; token: string }[];
  /** Registered agents that never connect (fuzzed messages may go there too). */
  sinks: string[];
  channels: string[];
  seed: number;
  total: number;
  perChunk: number;
  /** Replies must arrive within this (per chunk). */
  drainTimeoutMs: number;
}

export interface FuzzSummary {
  framesSent: number;
  elapsedMs: number;
  kinds: Record<string, number>;
  codes: Record<string, number>;
  /** Error replies without `error.json.data.code`. */
  untyped: string[];
  /** INTERNAL_SERVER_ERROR replies, with the procedure and the frame that got them. */
  internal: { path: string; reply: string; frame: string }[];
  /** Replies that were not JSON (other than PING/PONG). */
  unexpected: string[];
  /** Per socket: `id: null` replies received vs predicted. */
  nullReplies: { expected: number; got: number }[];
  /** Deep frames: the code of the one reply each got. */
  deep: { kind: string; code: unknown }[];
  /** Sockets the hub closed. */
  closedSockets: number;
  failure: string | null;
}

export type FromClient = { type: 'progress'; sent: number } | { type: 'done'; summary: FuzzSummary };

type Reply = { id?: unknown; error?: { json?: { message?: string; data?: { code?: unknown } } }; result?: { type?: string } };

/** A raw socket that pipelines fuzz frames and accounts for every reply the hub owes. */
class FuzzSocket {
  /** Per request id (JSON text): final replies still owed to queries/mutations and to subscriptions. */
  private readonly owed = new Map<string, { q: number; s: number }>();
  private expectedNull = 0;
  private gotNull = 0;
  private expectedPongs = 0;
  private gotPongs = 0;
  private wake: (() => void) | null = null;
  private one: ((reply: { text: string; json: Reply | null }) => void) | null = null;
  /** Frames of the current chunk by request id, to name the culprit of a bad reply. */
  private frames = new Map<string, string>();
  readonly codes = new Map<string, number>();
  readonly untyped: string[] = [];
  readonly internal: FuzzSummary['internal'] = [];
  readonly unexpected: string[] = [];
  framesSent = 0;
  readonly closed: Promise<number>;
  isClosed = false;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.once('close', (code) => {
        this.isClosed = true;
        this.wake?.();
        resolve(code);
      }),
    );
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => this.onReply(isBinary ? '<binary>' : data.toString()));
  }

  static async open(url: string, token: string): Promise<FuzzSocket> {
    const ws = new WebSocket(`${url}?connectionParams=1`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ method: 'connectionParams', data: { token } }));
    return new FuzzSocket(ws);
  }

  private onReply(text: string): void {
    let msg: Reply | null = null;
    if (text !== 'PONG' && text !== 'PING') {
      try {
        msg = JSON.parse(text) as Reply;
      } catch {
        this.unexpected.push(text.slice(0, 200));
      }
    }
    if (this.one) {
      const resolve = this.one;
      this.one = null;
      resolve({ text, json: msg });
      return;
    }
    if (text === 'PONG') this.gotPongs++;
    else if (text === 'PING') this.ws.send('PONG');
    else if (msg) {
      const key = JSON.stringify(msg.id);
      if (msg.error) {
        const code = msg.error.json?.data?.code;
        if (typeof code !== 'string') this.untyped.push(text.slice(0, 300));
        else {
          this.codes.set(code, (this.codes.get(code) ?? 0) + 1);
          if (code === 'INTERNAL_SERVER_ERROR') {
            const path = (msg.error.json?.data as { path?: unknown } | undefined)?.path;
            this.internal.push({ path: typeof path === 'string' ? path : '?', reply: text.slice(0, 200), frame: this.frames.get(key) ?? '?' });
          }
        }
      }
      if (msg.id === null) this.gotNull++;
      else {
        const owed = this.owed.get(key);
        if (owed) {
          const type = msg.error ? 'error' : msg.result?.type;
          // A query/mutation ends with data or error; a subscription with stopped or error.
          if (type === 'data' && owed.q > 0) owed.q--;
          else if (type === 'stopped' && owed.s > 0) owed.s--;
          else if (type === 'error') {
            if (owed.q > 0) owed.q--;
            else if (owed.s > 0) owed.s--;
          }
          if (owed.q === 0 && owed.s === 0) this.owed.delete(key);
        }
      }
    }
    if (this.wake && this.settled()) {
      this.wake();
      this.wake = null;
    }
  }

  send(frame: FuzzFrame, exp: Expectation): void {
    this.framesSent++;
    this.expectedNull += exp.nullReplies;
    this.expectedPongs += exp.pongs;
    for (const r of exp.requests) {
      const owed = this.owed.get(r.key) ?? { q: 0, s: 0 };
      if (r.subscription) owed.s++;
      else owed.q++;
      this.owed.set(r.key, owed);
      this.frames.set(r.key, frame.text ?? '<binary>');
    }
    if (frame.binary) this.ws.send(frame.binary, { binary: true });
    else this.ws.send(frame.text!);
    // Subscriptions the frame started are stopped at once (the hub answers "stopped").
    for (const r of exp.requests) if (r.subscription) this.ws.send(JSON.stringify({ id: r.id, method: 'subscription.stop' }));
  }

  /** Sends one frame outside the accounting and resolves with the next reply. */
  sendOne(text: string): Promise<{ text: string; json: Reply | null }> {
    this.framesSent++;
    return new Promise((resolve) => {
      this.one = resolve;
      this.ws.send(text);
    });
  }

  private settled(): boolean {
    return this.isClosed || (this.owed.size === 0 && this.gotNull >= this.expectedNull && this.gotPongs >= this.expectedPongs);
  }

  /** Waits until every reply owed so far has arrived. */
  async drain(timeoutMs: number): Promise<void> {
    if (!this.settled()) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.wake = null;
          const missing = [...this.owed.keys()].slice(0, 5).map((k) => `${k}: ${this.frames.get(k)?.slice(0, 300)}`);
          reject(
            new Error(
              `replies missing after ${timeoutMs} ms: ${this.owed.size} request ids, null replies ${this.gotNull}/${this.expectedNull}, ` +
                `pongs ${this.gotPongs}/${this.expectedPongs}, socket state ${this.ws.readyState}\n${missing.join('\n')}`,
            ),
          );
        }, timeoutMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    if (this.isClosed) throw new Error(`the hub closed a fuzzing socket (frames sent on it: ${this.framesSent})`);
    this.frames = new Map();
  }

  get nullReplies(): { expected: number; got: number } {
    return { expected: this.expectedNull, got: this.gotNull };
  }

  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) {
      this.ws.close();
      await this.closed;
    }
  }
}

export async function runFuzzClient(config: FuzzClientConfig, report: (m: FromClient) => void): Promise<FuzzSummary> {
  const sockets = await Promise.all(config.agents.map((a) => FuzzSocket.open(config.url, a.token)));
  let nextId = 1;
  const fuzzers = config.agents.map((a) => a.id);
  const arbs = fuzzers.map((self) =>
    frameArbitrary({ self, recipients: [...fuzzers.filter((f) => f !== self), ...config.sinks, self], channels: config.channels, nextId: () => nextId++ }),
  );
  const kinds: Record<string, number> = {};
  const deep: FuzzSummary['deep'] = [];
  let failure: string | null = null;
  const started = Date.now();
  try {
    let sent = 0;
    let chunk = 0;
    while (sent < config.total) {
      await Promise.all(
        sockets.map(async (s, i) => {
          const frames = fc.sample(arbs[i]!, { numRuns: config.perChunk, seed: config.seed + chunk * sockets.length + i });
          for (const f of frames) {
            kinds[f.kind] = (kinds[f.kind] ?? 0) + 1;
            s.send(f, expectReplies(f));
          }
          await s.drain(config.drainTimeoutMs);
        }),
      );
      sent += config.perChunk * sockets.length;
      chunk++;
      report({ type: 'progress', sent });
    }
    // Nesting this deep (400 KB frames) runs some parser out of stack, and which one depends on
    // the stack depth at the call: one typed error reply each, whichever it is.
    for (const [depth, objects] of [
      [200_000, false],
      [80_000, true],
      [150_000, false],
      [60_000, true],
    ] as const) {
      const frame = deepFrame({ self: fuzzers[0]!, recipients: config.sinks, channels: [], nextId: () => nextId++ }, depth, objects);
      const reply = await sockets[0]!.sendOne(frame.text!);
      deep.push({ kind: frame.kind, code: reply.json?.error?.json?.data?.code });
    }
  } catch (err) {
    failure = `${err instanceof Error ? err.message : String(err)} (seed ${config.seed})`;
  }
  const codes: Record<string, number> = {};
  for (const s of sockets) for (const [c, n] of s.codes) codes[c] = (codes[c] ?? 0) + n;
  const summary: FuzzSummary = {
    framesSent: sockets.reduce((n, s) => n + s.framesSent, 0),
    elapsedMs: Date.now() - started,
    kinds,
    codes,
    untyped: sockets.flatMap((s) => s.untyped),
    internal: sockets.flatMap((s) => s.internal),
    unexpected: sockets.flatMap((s) => s.unexpected),
    nullReplies: sockets.map((s) => s.nullReplies),
    deep,
    closedSockets: sockets.filter((s) => s.isClosed).length,
    failure,
  };
  await Promise.all(sockets.map((s) => s.close()));
  return summary;
}

// As a child process: wait for the configuration, run, report, exit.
if (process.send && process.env.SKYNET_FUZZ_CHILD === '1') {
  process.once('message', (config: FuzzClientConfig) => {
    const send = (m: FromClient) => process.send!(m);
    void runFuzzClient(config, send).then(
      (summary) => {
        send({ type: 'done', summary });
        process.disconnect();
      },
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
}
