/**
 * A minimal client of the hub's wire protocol (docs/wire-protocol.md): one `ws` socket, JSON text
 * frames, requests matched by id. The benchmark drives the hub with it so that the load generator
 * costs about what the raw relay's clients cost (the typed tRPC client spends several times more
 * CPU per message, and on a 2-core machine that CPU is taken from the hub under test).
 */
import WebSocket from 'ws';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class WireClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly subs = new Map<number, { started: () => void; failed: (err: Error) => void; onData: (data: unknown) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (raw) => this.onFrame(raw.toString()));
    ws.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('connection closed'));
      this.pending.clear();
    });
  }

  /** Opens `url` (the hub's /ws) and authenticates with `token`. */
  static async open(url: string, token: string | undefined): Promise<WireClient> {
    const ws = new WebSocket(`${url}?connectionParams=1`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ method: 'connectionParams', data: token ? { token } : {} }));
    return new WireClient(ws);
  }

  private onFrame(text: string): void {
    // The hub's keepalive (docs/wire-protocol.md): answer, or it drops a quiet connection.
    if (text === 'PING') {
      this.ws.send('PONG');
      return;
    }
    if (text === 'PONG') return;
    const frame = JSON.parse(text) as { id: number; result?: { type: string; data?: { json: unknown } }; error?: { json: { message: string } } };
    const sub = this.subs.get(frame.id);
    if (sub) {
      if (frame.error) sub.failed(new Error(frame.error.json.message));
      else if (frame.result?.type === 'started') sub.started();
      else if (frame.result?.type === 'data') sub.onData(frame.result.data!.json);
      return;
    }
    const p = this.pending.get(frame.id);
    if (!p) return;
    this.pending.delete(frame.id);
    if (frame.error) p.reject(new Error(frame.error.json.message));
    else p.resolve(frame.result?.data?.json);
  }

  mutate(path: string, input: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method: 'mutation', params: { path, input: { json: input } } }));
    });
  }

  /** Resolves once the hub reports the subscription started; rejects on an error frame. */
  subscribe(path: string, input: unknown, onData: (data: unknown) => void): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.subs.set(id, { started: resolve, failed: reject, onData });
      this.ws.send(JSON.stringify({ id, method: 'subscription', params: { path, input: { json: input } } }));
    });
  }

  close(): void {
    this.ws.terminate();
  }
}
