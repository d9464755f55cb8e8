/**
 * Slow consumers: the tRPC WS adapter has no backpressure, so the hub bounds what it buffers per
 * connection. A client that stops reading (its TCP socket paused) while many messages are sent to
 * it: the hub's socket never holds more than `maxBufferedBytes` plus one frame, and once it has
 * not drained for `slowConsumerTimeoutMs` the hub terminates the connection (no error frame queued
 * behind what the client does not read). The client then resumes from its last event id and gets
 * everything, once; if it fell further behind than the capped inbox keeps, it is told (a gap).
 * `monitor.stream` is bounded the same way (it drops events instead of resuming).
 *
 * The hub's sockets are `ws` WebSockets: the test wraps `WebSocket.prototype.send` to read each
 * server socket's `bufferedAmount` right after every frame the hub sends. LOAD_FIGURES=1 prints
 * the figures.
 */
import { request as httpRequest, ServerResponse, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { StreamGap } from '../../procedures/live.js';
import { capturedLogger, openRawSocket, startTestHub, type StoreKind, type TestHub } from '../hub/harness.js';
import { recordingWebSocket, subscriptionRequests, watchInbox, type InboxEvent } from '../hub/delivery-helpers.js';

const figures = process.env.LOAD_FIGURES === '1';
const MAX_BUFFERED = 256 * 1024;
const TIMEOUT_MS = 300;
const PAD = 'x'.repeat(16 * 1024);

/** Watches what the hub's sockets (server side of `ws`) have buffered after each frame they send. */
function watchServerSockets() {
  const original = WebSocket.prototype.send;
  const peaks = new Map<WebSocket, number>();
  const marked = new Map<string, WebSocket>();
  const texts = new Map<WebSocket, string[]>();
  let largestFrame = 0;
  WebSocket.prototype.send = function (this: WebSocket & { _isServer?: boolean }, data: unknown, ...rest: unknown[]) {
    (original as (...args: unknown[]) => void).call(this, data, ...rest);
    if (!this._isServer) return;
    peaks.set(this, Math.max(peaks.get(this) ?? 0, this.bufferedAmount));
    if (typeof data === 'string') {
      const list = texts.get(this) ?? [];
      if (list.length < 100) list.push(data.slice(0, 200));
      texts.set(this, list);
      largestFrame = Math.max(largestFrame, data.length);
      for (const m of /"content":"(marker-[a-z0-9-]+)"/.exec(data)?.slice(1) ?? []) marked.set(m, this);
    }
  } as typeof original;
  return {
    /** Every hub-side socket that sent a frame. */
    sockets: () => peaks.keys(),
    /** Text frames a hub-side socket sent (the first 200 characters of each). */
    sentTo: (ws: WebSocket) => texts.get(ws) ?? [],
    /** The hub socket that delivered a message whose content is `marker`. */
    socketOf: (marker: string) => marked.get(marker),
    peak: (ws: WebSocket) => peaks.get(ws) ?? 0,
    get largestFrame() {
      return largestFrame;
    },
    restore: () => {
      WebSocket.prototype.send = original;
    },
  };
}

/** The TCP socket under a `ws` client: pausing it stops reading, as a stuck consumer would. */
function tcp(ws: WebSocket): { pause(): void; resume(): void } {
  return (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
}

const gapOf = (e: InboxEvent | undefined) => (e as (InboxEvent & { gap?: StreamGap }) | undefined)?.gap;

describe.each<StoreKind>(['redis', 'embedded'])('slow consumers on %s', (kind) => {
  let t: TestHub | undefined;
  let watcher: ReturnType<typeof watchServerSockets> | undefined;
  afterEach(async () => {
    watcher?.restore();
    watcher = undefined;
    await t?.close();
    t = undefined;
  });

  async function setup(limits: { inboxMaxLen: number }) {
    const log = capturedLogger('warn');
    t = await startTestHub(kind, { logger: log.logger, maxBufferedBytes: MAX_BUFFERED, limits, rateLimit: { perSecond: 0 } });
    t.hub.services.settings.slowConsumerTimeoutMs = TIMEOUT_MS;
    watcher = watchServerSockets();
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice');
    const rec = recordingWebSocket();
    const bob = t.client(bobToken, { WebSocket: rec.WebSocket, retryDelayMs: () => 5 });
    const inbox = watchInbox(bob.trpc);
    await inbox.started;
    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'marker-bob' } });
    await vi.waitFor(() => expect(inbox.contents()).toEqual(['marker-bob']));
    const hubSide = watcher.socketOf('marker-bob')!;
    expect(hubSide).toBeDefined();
    return { log, alice, rec, inbox, hubSide };
  }

  it('a client that stops reading: bounded buffer, connection terminated without an error frame, resumed with nothing lost', async () => {
    const { log, alice, rec, inbox, hubSide } = await setup({ inboxMaxLen: 10_000 });
    tcp(rec.sockets[0]!).pause();
    // Send until the hub gives up on bob (kernel buffers absorb a few MB first).
    const sent: string[] = [];
    const memoryBefore = process.memoryUsage();
    while (hubSide.readyState !== WebSocket.CLOSED && sent.length < 5_000) {
      const r = await alice.send({ to_agent: 'bob', type: 'task', payload: { content: { n: sent.length, pad: PAD } } });
      sent.push(r.id);
    }
    expect(hubSide.readyState).toBe(WebSocket.CLOSED);
    const peak = watcher!.peak(hubSide);
    const memoryAtClose = process.memoryUsage();
    // Never more than the bound plus one frame (what was under it when the last frame went out).
    expect(peak).toBeGreaterThan(MAX_BUFFERED);
    expect(peak).toBeLessThanOrEqual(MAX_BUFFERED + watcher!.largestFrame);
    const closed = log.lines.filter((l) => l.event === 'slow_consumer_closed');
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ path: 'messages.inbox', agent_id: 'bob', limit_bytes: MAX_BUFFERED });
    expect(closed[0]!.waited_ms).toBeGreaterThanOrEqual(TIMEOUT_MS);

    // Bob reads again: what reached his socket, then the reconnect resumes from his last event id.
    tcp(rec.sockets[0]!).resume();
    await vi.waitFor(() => expect(new Set(inbox.events.map((e) => e.message.id)).size).toBe(sent.length + 1), { timeout: 20_000 });
    const got = inbox.events.slice(1).map((e) => e.message.id);
    expect([...new Set(got)]).toEqual(sent); // everything, in order; a resume may repeat some
    expect(inbox.errors).toEqual([]); // no error frame: the subscription never failed, it resumed
    expect(inbox.events.map(gapOf).filter(Boolean)).toEqual([]);
    const subs = subscriptionRequests(rec.sent, 'messages.inbox');
    expect(subs.length).toBeGreaterThanOrEqual(2);
    expect(subs.at(-1)!.lastEventId).toMatch(/^\d+-\d+$/);
    expect(rec.sockets.length).toBeGreaterThanOrEqual(2);
    if (figures) {
      const mib = (n: number) => (n / 2 ** 20).toFixed(1);
      console.info(
        `slow consumer (${kind}): ${sent.length} x 16 KiB sent while paused (${mib(sent.length * PAD.length)} MiB); hub socket peak bufferedAmount ` +
          `${(peak / 1024).toFixed(0)} KiB (bound ${MAX_BUFFERED / 1024} KiB, largest frame ${(watcher!.largestFrame / 1024).toFixed(0)} KiB); ` +
          `closed after ${closed[0]!.waited_ms} ms; process external ${mib(memoryBefore.external)} -> ${mib(memoryAtClose.external)} MiB, ` +
          `rss ${mib(memoryBefore.rss)} -> ${mib(memoryAtClose.rss)} MiB; resumed ${inbox.events.length - 1} deliveries for ${sent.length} messages`,
      );
    }
  });

  it('a slow consumer that fell further behind than the inbox keeps is told about the gap when it resumes', async () => {
    const { alice, rec, inbox, hubSide } = await setup({ inboxMaxLen: 50 });
    tcp(rec.sockets[0]!).pause();
    let n = 0;
    while (hubSide.readyState !== WebSocket.CLOSED && n < 5_000) {
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: { n: n++, pad: PAD } } });
    }
    expect(hubSide.readyState).toBe(WebSocket.CLOSED);
    // Well past the cap while bob is away.
    for (let i = 0; i < 200; i++) await alice.send({ to_agent: 'bob', type: 'task', payload: { content: { n: n++, pad: '' } } });
    tcp(rec.sockets[0]!).resume();
    await vi.waitFor(() => expect((inbox.events.at(-1)?.message.payload.content as { n?: number } | undefined)?.n).toBe(n - 1), { timeout: 20_000 });
    const gaps = inbox.events.map(gapOf).filter((g): g is StreamGap => g !== undefined);
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ recovered: false });
    // What came after the gap is the contiguous tail the inbox kept, up to the newest.
    const afterGap = inbox.events.slice(inbox.events.findIndex((e) => gapOf(e))).map((e) => (e.message.payload.content as { n: number }).n);
    expect(afterGap).toEqual(Array.from({ length: afterGap.length }, (_, i) => n - afterGap.length + i));
    expect(inbox.errors).toEqual([]);
  });

  it('a client that keeps calling and never reads the replies is terminated once nothing drains past 2 x maxBufferedBytes + a frame; others are still served', async () => {
    const log = capturedLogger('warn');
    const HARD = 48 * 2 ** 20;
    t = await startTestHub(kind, { logger: log.logger, maxBufferedBytes: MAX_BUFFERED, maxConnectionBufferBytes: HARD, rateLimit: { perSecond: 0 } });
    t.hub.services.settings.slowConsumerTimeoutMs = TIMEOUT_MS;
    watcher = watchServerSockets();
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice');
    // Large replies: bob's history holds 20 messages of 16 KiB (about 330 KiB per reply).
    for (let n = 0; n < 20; n++) await alice.send({ to_agent: 'bob', type: 'task', payload: { content: { n, pad: PAD } } });
    const bob = await openRawSocket(t.hub.url, { connectionParams: { token: bobToken } });
    bob.send({ id: 1, method: 'query', params: { path: 'agents.whoami' } });
    expect((await bob.reply(1)).result.data.json.agent_id).toBe('bob');
    const hubSide = [...watcher.sockets()].find((ws) => watcher!.sentTo(ws).some((f) => f.includes('"agent_id":"bob","scopes"')));
    expect(hubSide).toBeDefined();
    tcp(bob.ws).pause();
    const soft = 2 * MAX_BUFFERED + (2 * MAX_BUFFERED + 64 * 1024); // 2 x maxBufferedBytes + maxFrameBytes (2 x payload limit + 64 KiB)
    const memoryBefore = process.memoryUsage().rss;
    let id = 2;
    // Kernel buffers absorb a few MB first; then the hub's own buffer passes the soft limit, and
    // once nothing has drained for slowConsumerTimeoutMs the next reply closes the connection.
    await vi.waitFor(
      () => {
        for (let i = 0; i < 2; i++) bob.send({ id: id++, method: 'query', params: { path: 'messages.history', input: { json: { limit: 50 } } } });
        expect(hubSide!.readyState).toBe(WebSocket.CLOSED);
      },
      { timeout: 30_000, interval: 20 },
    );
    const closed = log.lines.filter((l) => l.event === 'slow_consumer_closed');
    expect(closed).toMatchObject([{ reason: 'unread_replies' }]);
    expect(closed[0]!.buffered_bytes as number).toBeGreaterThan(soft);
    expect(watcher.peak(hubSide!)).toBeLessThan(HARD);
    expect(process.memoryUsage().rss - memoryBefore).toBeLessThan(200 * 2 ** 20);
    // The hub goes on serving everyone else.
    const r = await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'after' } });
    expect(r.delivered_to).toEqual(['bob']);
    tcp(bob.ws).resume();
    await bob.close();
  });

  it('an SSE subscriber (HTTP) that stops reading: the hub waits for its response to drain (bounded), then delivers everything in order', async () => {
    t = await startTestHub(kind, { maxBufferedBytes: MAX_BUFFERED, rateLimit: { perSecond: 0 } });
    const bobToken = await t.addAgent('bob');
    const alice = await t.agent('alice');
    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'first' } });
    // What the hub's SSE responses hold unsent, after every write (tRPC's node adapter awaits
    // 'drain' before it pulls the next event from the subscription).
    const originalWrite = ServerResponse.prototype.write;
    let peak = 0;
    let largestChunk = 0;
    ServerResponse.prototype.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      const ok = (originalWrite as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
      if (this.getHeader('content-type') === 'text/event-stream') {
        peak = Math.max(peak, this.writableLength);
        largestChunk = Math.max(largestChunk, (chunk as { length?: number }).length ?? 0);
      }
      return ok;
    } as typeof originalWrite;
    try {
      const input = encodeURIComponent(JSON.stringify({ json: {} }));
      let body = '';
      let stuck!: IncomingMessage;
      let paused = false;
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest(`${t!.hub.httpUrl}/trpc/messages.inbox?input=${input}`, { headers: { authorization: `Bearer ${bobToken}` } }, (r) => {
          stuck = r;
          r.setEncoding('utf8');
          r.on('data', (chunk: string) => {
            body += chunk;
            if (!paused && body.includes('"first"')) {
              paused = true;
              r.pause(); // stops reading the socket: the kernel buffers fill, then the hub's
              resolve();
            }
          });
        });
        req.on('error', reject);
        req.end();
      });
      const n = 400; // 400 x 16 KiB: well past what the kernel buffers absorb
      for (let i = 0; i < n; i++) await alice.send({ to_agent: 'bob', type: 'task', payload: { content: { n: i, pad: PAD } } });
      const sentBytes = n * PAD.length;
      expect(peak).toBeGreaterThan(0); // measured at all
      expect(peak).toBeLessThanOrEqual(64 * 1024 + 2 * largestChunk);
      expect(peak).toBeLessThan(sentBytes / 10);
      stuck.resume();
      await vi.waitFor(() => expect([...body.matchAll(/"n":(\d+),/g)].length).toBe(n), { timeout: 20_000 });
      stuck.destroy();
      const ns = [...body.matchAll(/"n":(\d+),/g)].map((m) => Number(m[1]));
      expect(ns).toEqual(Array.from({ length: n }, (_, i) => i));
      if (figures) console.info(`sse stuck (${kind}): ${n} x 16 KiB sent; response peak writableLength ${(peak / 1024).toFixed(0)} KiB`);
    } finally {
      ServerResponse.prototype.write = originalWrite;
    }
  });

  it('monitor.stream: bounded buffer, events dropped and logged, a monitor that does not read is terminated', async () => {
    const log = capturedLogger('warn');
    t = await startTestHub(kind, { logger: log.logger, maxBufferedBytes: MAX_BUFFERED, rateLimit: { perSecond: 0 } });
    t.hub.services.settings.slowConsumerTimeoutMs = TIMEOUT_MS;
    watcher = watchServerSockets();
    const opsToken = await t.addAgent('ops', { scopes: ['monitor'] });
    await t.addAgent('bob');
    const alice = await t.agent('alice');
    const bus = t.hub.services.bus as unknown as { routed: Set<unknown> };
    const routedBefore = bus.routed.size;
    const rec = recordingWebSocket();
    const ops = t.client(opsToken, { WebSocket: rec.WebSocket, retryDelayMs: () => 60_000 });
    const events: unknown[] = [];
    const started = new Promise<void>((resolve) =>
      ops.trpc.monitor.stream.subscribe(undefined, { onStarted: () => resolve(), onData: (e) => void events.push(e) }),
    );
    await started;
    await alice.send({ to_agent: 'bob', type: 'task', payload: { content: 'marker-ops' } });
    await vi.waitFor(() => expect(events).toHaveLength(1));
    const hubSide = watcher.socketOf('marker-ops')!;
    expect(hubSide).toBeDefined();

    tcp(rec.sockets[0]!).pause();
    let sent = 0;
    while (hubSide.readyState !== WebSocket.CLOSED && sent < 5_000) {
      await alice.send({ to_agent: 'bob', type: 'task', payload: { content: { n: sent++, pad: PAD } } });
    }
    expect(hubSide.readyState).toBe(WebSocket.CLOSED);
    expect(watcher.peak(hubSide)).toBeLessThanOrEqual(MAX_BUFFERED + watcher.largestFrame);
    expect(log.lines.filter((l) => l.event === 'slow_consumer_closed')).toMatchObject([{ path: 'monitor.stream', agent_id: 'ops' }]);
    // The monitor's generator ended: its bus listener is gone, and what it dropped was logged.
    await vi.waitFor(() => expect(bus.routed.size).toBe(routedBefore));
    const dropped = log.lines.filter((l) => l.event === 'monitor_dropped').reduce((sum, l) => sum + (l.dropped as number), 0);
    expect(dropped).toBeGreaterThan(0);
    tcp(rec.sockets[0]!).resume();
    if (figures) {
      console.info(
        `monitor (${kind}): ${sent} x 16 KiB routed while paused; hub socket peak ${(watcher.peak(hubSide) / 1024).toFixed(0)} KiB; ${dropped} events dropped and logged`,
      );
    }
  });
});
