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

  it('a client that reads keeps being served, even when a burst of replies is far over the bound', async () => {
    // 10 messages of 200 KB in the flooder's inbox, sent by another agent over the wire.
    const senderToken = (JSON.parse(await m.ok(['agents', 'add', 'big_sender', '--format', 'json'])) as { token: string }).token;
    const sender = new WebSocket(`${url}?connectionParams=1`);
    await once(sender, 'open');
    sender.send(JSON.stringify({ method: 'connectionParams', data: { token: senderToken } }));
    const sent: unknown[] = [];
    sender.on('message', (d) => sent.push(JSON.parse(d.toString())));
    for (let i = 1; i <= 10; i++) {
      sender.send(
        JSON.stringify({
          id: i,
          method: 'mutation',
          params: { path: 'messages.send', input: { json: { to_agent: 'flooder', type: 'task', payload: { content: { i, pad: 'p'.repeat(200_000) } } } } },
        }),
      );
    }
    await vi.waitFor(() => expect(sent).toHaveLength(10), { timeout: 10_000 });
    sender.close();

    const ws = await open();
    const replies: { id: number; result?: { data: { json: { items: unknown[] } } } }[] = [];
    ws.on('message', (d) => replies.push(JSON.parse(d.toString()) as (typeof replies)[number]));
    // 20 pages of 10 x 200 KB asked at once: about 40 MB of replies, 60 times the bound.
    for (let i = 1; i <= 20; i++) ws.send(JSON.stringify({ id: i, method: 'query', params: { path: 'messages.history', input: { json: { limit: 10 } } } }));
    await vi.waitFor(() => expect(replies).toHaveLength(20), { timeout: 20_000 });
    expect(replies.every((r) => r.result?.data.json.items.length === 10)).toBe(true);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
  }, 30_000);

  it('a bad limit names its field', async () => {
    m.file('bad-limits.yaml', 'server:\n  slow_consumer_timeout_ms: 5\n');
    const r = await m.run(['serve', '--port', '0', '--config', 'bad-limits.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: bad-limits\.yaml: server\.slow_consumer_timeout_ms: .*100/);
  });
});
