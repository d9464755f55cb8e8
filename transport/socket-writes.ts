/**
 * How the hub writes to a WebSocket: batched per event-loop turn, and bounded.
 *
 * Batching. The tRPC WS adapter sends each reply and each subscription item with its own
 * `ws.send`, and `ws` writes each frame with its own `writev` syscall. On loopback and LAN links
 * the syscall, not the bytes, is the cost: profiles of the hub under load showed a third of its CPU
 * in `writev`. Corking a connection's socket at its first frame of a turn and uncorking it once, in
 * the check phase after the turn's I/O callbacks and promise jobs (setImmediate), sends all frames
 * of that turn in one write. Nothing waits on a timer: a frame goes out at the end of the turn it
 * was made in (a frame made early in a long turn waits for the rest of it), and the busier the
 * hub, the more frames share a write.
 *
 * Bound. Subscriptions pause when a socket holds more than `maxBufferedBytes` unsent
 * (procedures/live.ts), but replies to calls are sent whatever the client reads: a client that
 * keeps calling and never reads would grow the hub's memory without end. Past `bufferLimit()`
 * bytes unsent the connection is terminated at once (no close handshake: it would only queue
 * behind what the client is not reading); the client reconnects and resumes.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

export interface SocketWritesOptions {
  /** Most bytes a connection may hold unsent before it is terminated. Default: unbounded. */
  bufferLimit?: () => number;
  /** Called just before a connection over `bufferLimit` is terminated (log it). */
  onOverflow?: (bufferedAmount: number) => void;
}

const corked = new Set<Socket>();
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  const sockets = [...corked];
  corked.clear();
  for (const socket of sockets) {
    // A socket closed meanwhile has nothing left to write. Whatever one socket does, the others
    // are uncorked: a socket left corked would never send again.
    try {
      socket.uncork();
    } catch {
      // a write error surfaces on the socket's 'error' event
    }
  }
}

/**
 * Returns `wrap(ws)`, which makes `ws.send` batch the frames of one event-loop turn into one socket
 * write, within the bound. One `send` function is shared by every connection wrapped by the same
 * `wrap` (nothing allocated per connection: it runs for each of tens of thousands of idle agents).
 */
export function socketWrites(opts: SocketWritesOptions = {}): (ws: WebSocket) => void {
  const { bufferLimit, onOverflow } = opts;
  function send(this: WebSocket, ...args: unknown[]): void {
    if (bufferLimit && this.bufferedAmount > bufferLimit()) {
      if (this.readyState === this.OPEN) {
        onOverflow?.(this.bufferedAmount);
        this.terminate();
      }
      return;
    }
    const socket = (this as unknown as { _socket: Socket })._socket;
    if (!corked.has(socket)) {
      corked.add(socket);
      socket.cork();
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    }
    // The class's own send, looked up per call (whatever the prototype holds now).
    (Object.getPrototypeOf(this) as { send: (...a: unknown[]) => void }).send.apply(this, args);
  }
  return (ws) => {
    const socket = (ws as unknown as { _socket?: Socket })._socket;
    if (!socket || typeof socket.cork !== 'function') return;
    (ws as unknown as { send: typeof send }).send = send;
  };
}

/** {@link socketWrites} for a single connection. */
export function wrapSocketWrites(ws: WebSocket, opts: SocketWritesOptions = {}): void {
  socketWrites(opts)(ws);
}
