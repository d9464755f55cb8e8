/**
 * transport/socket-writes.ts on a real `ws` server and client: the frames a connection sends in
 * one event-loop turn leave in one socket write, in order; the next turn is not held back; a
 * socket closed while corked is harmless. Writes are counted at the socket's own _write/_writev.
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { wrapSocketWrites, type SocketWritesOptions } from '../../transport/socket-writes.js';

const open: { close(): void }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

/** A server-side socket with batching, the client that receives from it, and a write counter. */
async function pair(batched: boolean, opts: SocketWritesOptions = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  open.push(wss);
  await once(wss, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`);
  open.push({ close: () => client.terminate() });
  const [server] = (await once(wss, 'connection')) as [WebSocket];
  await once(client, 'open');
  if (batched) wrapSocketWrites(server, opts);
  const socket = (server as unknown as { _socket: Socket & { _write: Function; _writev: Function } })._socket;
  const writes = { count: 0 };
  for (const method of ['_write', '_writev'] as const) {
    const original = socket[method].bind(socket);
    socket[method] = (...args: unknown[]) => {
      writes.count++;
      return original(...args);
    };
  }
  const received: string[] = [];
  client.on('message', (data) => received.push(data.toString()));
  return { server, client, socket, writes, received };
}

const WAIT = { timeout: 5_000, interval: 5 };

describe('wrapSocketWrites: batching', () => {
  it('sends the frames of one turn in one socket write, in order', async () => {
    const { server, writes, received } = await pair(true);
    const frames = Array.from({ length: 100 }, (_, i) => `frame ${i}`);
    for (const f of frames) server.send(f);
    await vi.waitFor(() => expect(received).toHaveLength(100), WAIT);
    expect(received).toEqual(frames);
    expect(writes.count).toBe(1);
  });

  it('without it, ws writes every frame separately (what the batching saves)', async () => {
    const { server, writes, received } = await pair(false);
    for (let i = 0; i < 20; i++) server.send(`frame ${i}`);
    await vi.waitFor(() => expect(received).toHaveLength(20), WAIT);
    expect(writes.count).toBeGreaterThan(1);
  });

  it('holds nothing past the turn: the socket is uncorked before the next timers run', async () => {
    const { server, socket, received } = await pair(true);
    server.send('first');
    expect(socket.writableCorked).toBeGreaterThan(0);
    await new Promise((r) => setImmediate(r));
    expect(socket.writableCorked).toBe(0);
    await vi.waitFor(() => expect(received).toEqual(['first']), WAIT);
    // Frames of separate turns are separate writes, each sent in its own turn.
    server.send('second');
    await new Promise((r) => setImmediate(r));
    expect(socket.writableCorked).toBe(0);
    await vi.waitFor(() => expect(received).toEqual(['first', 'second']), WAIT);
  });

  it('batches each connection on its own: every client gets exactly its frames', async () => {
    const a = await pair(true);
    const b = await pair(true);
    for (let i = 0; i < 10; i++) {
      a.server.send(`a${i}`);
      b.server.send(`b${i}`);
    }
    await vi.waitFor(() => expect(a.received.length + b.received.length).toBe(20), WAIT);
    expect(a.received).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
    expect(b.received).toEqual(Array.from({ length: 10 }, (_, i) => `b${i}`));
    expect(a.writes.count).toBe(1);
    expect(b.writes.count).toBe(1);
  });

  it('a connection that dies while corked costs nothing: later sends report the error, the process goes on', async () => {
    const { server, client, socket } = await pair(true);
    server.send('lost');
    expect(socket.writableCorked).toBeGreaterThan(0);
    server.terminate();
    await new Promise((r) => setImmediate(r));
    expect(socket.writableCorked).toBe(0);
    const err = await new Promise<Error | undefined>((resolve) => server.send('after close', (e) => resolve(e)));
    expect(err).toBeInstanceOf(Error);
    await once(client, 'close');
  });
});

describe('wrapSocketWrites: bounds', () => {
  const frame64k = 'y'.repeat(64 * 1024);
  const tcpOf = (ws: WebSocket) => (ws as unknown as { _socket: Socket })._socket;
  const turn = () => new Promise((r) => setImmediate(r));

  it('a client that does not read: terminated once over the soft limit with nothing drained for stallMs', async () => {
    const ended: { reason: string; bufferedAmount: number }[] = [];
    const soft = 512 * 1024;
    const { server, client, received } = await pair(true, { softLimit: () => soft, stallMs: () => 200, onTerminate: (i) => ended.push(i) });
    tcpOf(client).pause();
    let overAt = 0;
    // Kernel buffers take a few MB first; then the hub's own buffer grows past the soft limit,
    // and frames keep coming (a client that keeps calling).
    const started = Date.now();
    while (server.readyState === WebSocket.OPEN && Date.now() - started < 10_000) {
      for (let j = 0; j < 16; j++) server.send(frame64k.slice(0, 1024));
      await new Promise((r) => setTimeout(r, 1));
      if (!overAt && server.bufferedAmount > soft) overAt = Date.now();
    }
    expect(server.readyState).not.toBe(WebSocket.OPEN);
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ reason: 'stalled' });
    expect(ended[0]!.bufferedAmount).toBeGreaterThan(soft);
    expect(Date.now() - overAt).toBeGreaterThanOrEqual(190);
    server.send('after'); // dropped, no throw
    expect(ended).toHaveLength(1);
    tcpOf(client).resume(); // a paused socket would never see the connection end
    await once(client, 'close');
    expect(received).not.toContain('after');
  });

  it('a stalled connection the hub stops sending to is closed too (a timer checks it)', async () => {
    const ended: { reason: string }[] = [];
    const soft = 256 * 1024;
    const { server, client } = await pair(true, { softLimit: () => soft, stallMs: () => 200, onTerminate: (i) => ended.push(i) });
    tcpOf(client).pause();
    // Until the kernel buffers are full and the hub's own buffer is over the limit after a flush.
    for (let i = 0; i < 2_000 && server.bufferedAmount <= soft; i++) {
      for (let j = 0; j < 8; j++) server.send(frame64k);
      await turn();
    }
    expect(server.bufferedAmount).toBeGreaterThan(soft);
    server.send('one more'); // over the limit: the check starts; then the hub goes quiet
    const quietSince = Date.now();
    await vi.waitFor(() => expect(server.readyState).not.toBe(WebSocket.OPEN), { timeout: 5_000, interval: 20 });
    expect(Date.now() - quietSince).toBeGreaterThanOrEqual(150);
    expect(ended).toEqual([{ reason: 'stalled', bufferedAmount: expect.any(Number) }]);
  });

  it('the hard limit holds even below the soft limit', async () => {
    const ended: { reason: string }[] = [];
    const { server, client } = await pair(true, {
      softLimit: () => 64 * 1024 * 1024,
      stallMs: () => 60_000,
      hardLimit: () => 512 * 1024,
      onTerminate: (i) => ended.push(i),
    });
    tcpOf(client).pause();
    for (let i = 0; i < 2_000 && server.readyState === WebSocket.OPEN; i++) {
      server.send(frame64k);
      if (i % 20 === 19) await turn();
    }
    expect(ended).toEqual([{ reason: 'hard_limit', bufferedAmount: expect.any(Number) }]);
  });

  it('over the hard limit: terminated at once, however recently it drained', async () => {
    const ended: { reason: string; bufferedAmount: number }[] = [];
    const hard = 1024 * 1024;
    const { server, client } = await pair(true, {
      softLimit: () => 256 * 1024,
      stallMs: () => 60_000,
      hardLimit: () => hard,
      onTerminate: (i) => ended.push(i),
    });
    tcpOf(client).pause();
    let peak = 0;
    for (let i = 0; i < 2_000 && server.readyState === WebSocket.OPEN; i++) {
      server.send(frame64k);
      peak = Math.max(peak, server.bufferedAmount);
      if (i % 20 === 19) await turn();
    }
    expect(server.readyState).not.toBe(WebSocket.OPEN);
    expect(ended).toEqual([{ reason: 'hard_limit', bufferedAmount: expect.any(Number) }]);
    expect(peak).toBeLessThanOrEqual(hard + frame64k.length + 64);
  });

  it('a reading client keeps its connection through a burst far over the soft limit in one turn', async () => {
    const ended: unknown[] = [];
    const { server, received } = await pair(true, { softLimit: () => 256 * 1024, stallMs: () => 100, onTerminate: (i) => ended.push(i) });
    for (let i = 0; i < 64; i++) server.send(frame64k); // 4 MiB in one turn
    expect(server.bufferedAmount).toBeGreaterThan(256 * 1024);
    // Small frames keep coming while it drains (acks, PINGs).
    for (let i = 0; received.length < 64 + i && i < 500; i++) {
      server.send(`small ${i}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    await vi.waitFor(() => expect(received.filter((r) => r.length === frame64k.length)).toHaveLength(64), WAIT);
    expect(server.readyState).toBe(WebSocket.OPEN);
    expect(ended).toEqual([]);
  });

  it('a slow reader of a reply far over the soft limit is not cut off while it makes progress', async () => {
    const ended: unknown[] = [];
    const { server, client, received } = await pair(true, { softLimit: () => 256 * 1024, stallMs: () => 150, onTerminate: (i) => ended.push(i) });
    const big = 'b'.repeat(24 * 1024 * 1024);
    server.send(big);
    // The client reads in short bursts with pauses shorter than stallMs, while frames keep coming.
    const socket = tcpOf(client);
    const reader = setInterval(() => {
      socket.resume();
      setTimeout(() => socket.pause(), 5);
    }, 60);
    try {
      for (let i = 0; !received.includes(big) && i < 2_000; i++) {
        server.send(`tick ${i}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      clearInterval(reader);
      socket.resume();
    }
    await vi.waitFor(() => expect(received).toContain(big), { timeout: 20_000 });
    expect(server.readyState).toBe(WebSocket.OPEN);
    expect(ended).toEqual([]);
  });

  it('a client that reads keeps its connection however much goes through it', async () => {
    const ended: unknown[] = [];
    const { server, received } = await pair(true, {
      softLimit: () => 256 * 1024,
      stallMs: () => 50,
      hardLimit: () => 1024 * 1024,
      onTerminate: (i) => ended.push(i),
    });
    const frame = 'z'.repeat(16 * 1024);
    for (let i = 0; i < 200; i++) {
      server.send(frame);
      await vi.waitFor(() => expect(received.length).toBe(i + 1), WAIT);
    }
    expect(server.readyState).toBe(WebSocket.OPEN);
    expect(ended).toEqual([]);
  });
});
