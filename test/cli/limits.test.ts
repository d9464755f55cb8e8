/**
 * The connection limits of config.yaml reach the hub that `serve` starts: with
 * `slow_consumer_timeout_ms: 300`, a client that floods calls and never reads is closed within
 * seconds (the default would wait 30 s), while a client that reads is served; a bad value names
 * its field.
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { assertBuilt, Machine } from './helpers.js';

describe('connection limits from config.yaml', () => {
  let m: Machine;
  let url: string;
  let token: string;
  beforeAll(async () => {
    assertBuilt();
    m = new Machine();
    m.file('limits.yaml', 'server:\n  max_buffered_bytes: 65536\n  slow_consumer_timeout_ms: 300\n  max_connection_buffer_bytes: 268435456\n');
    url = (await m.serve('embedded', ['--config', 'limits.yaml'])).url;
    token = (JSON.parse(await m.ok(['agents', 'add', 'flooder', '--format', 'json'])) as { token: string }).token;
  }, 30_000);
  afterAll(async () => m.dispose());

  async function open(): Promise<WebSocket> {
    const ws = new WebSocket(`${url}?connectionParams=1`);
    await once(ws, 'open');
    ws.send(JSON.stringify({ method: 'connectionParams', data: { token } }));
    return ws;
  }

  it('a client that calls and never reads is closed after slow_consumer_timeout_ms without draining', async () => {
    const ws = await open();
    const tcp = (ws as unknown as { _socket: Socket })._socket;
    tcp.pause();
    let closed = false;
    ws.once('close', () => (closed = true));
    let id = 1;
    // agents.list replies are small: many of them, until the kernel buffers and then 64 KiB x 2
    // + the frame limit are full and nothing has drained for 300 ms.
    const started = Date.now();
    await vi.waitFor(
      () => {
        for (let i = 0; i < 200; i++) ws.send(JSON.stringify({ id: id++, method: 'query', params: { path: 'agents.list' } }));
        expect(closed).toBe(true);
      },
      { timeout: 20_000, interval: 50 },
    );
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 30_000);

  it('a client that reads keeps being served', async () => {
    const ws = await open();
    const replies: unknown[] = [];
    ws.on('message', (d) => replies.push(JSON.parse(d.toString())));
    for (let i = 1; i <= 300; i++) ws.send(JSON.stringify({ id: i, method: 'query', params: { path: 'agents.whoami' } }));
    await vi.waitFor(() => expect(replies).toHaveLength(300), { timeout: 10_000 });
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
  });

  it('a bad limit names its field', async () => {
    m.file('bad-limits.yaml', 'server:\n  slow_consumer_timeout_ms: 5\n');
    const r = await m.run(['serve', '--port', '0', '--config', 'bad-limits.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: bad-limits\.yaml: server\.slow_consumer_timeout_ms: .*100/);
  });
});
