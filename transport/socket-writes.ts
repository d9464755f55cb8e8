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
 * keeps calling and never reads would grow the hub's memory without end. So:
 * - over `softLimit()` bytes unsent with no byte taken by the kernel for `stallMs()` (checked at
 *   every frame sent, and by a timer while over the limit, so that going quiet does not save it):
 *   the client is not reading; the connection is terminated (no close handshake: it would only
 *   queue behind what the client is not reading) and the client reconnects and resumes. A client
 *   that reads, however slowly and however large its replies, is never cut off by this;
 * - over `hardLimit()` bytes unsent (checked first, at every frame): terminated at once, whatever
 *   its progress (memory comes first; a reply cannot be split, so the hard limit must exceed the
 *   largest reply a client may legitimately ask for).
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

export interface SocketWritesOptions {
  /** Bytes unsent above which a connection must keep draining. Default: unbounded. */
  softLimit?: () => number;
  /** How long a connection over `softLimit` may go without a byte reaching the network. Default 30 s. */
  stallMs?: () => number;
  /** Bytes unsent above which a connection is terminated at once. Default: unbounded. */
  hardLimit?: () => number;
  /** Called just before a connection is terminated (log it). */
  onTerminate?: (info: { reason: 'stalled' | 'hard_limit'; bufferedAmount: number }) => void;
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

/** A connection over its soft limit: since when, how much its socket had drained then, and the timer that checks it. */
interface Backlog {
  since: number;
  drained: number;
  timer: NodeJS.Timeout;
}

/**
 * Bytes the kernel has taken from this socket so far, in O(1): what libuv was handed minus what
 * it still queues (partial writes lower the queue as they go out). `socket.bytesWritten` would
 * walk Node's whole write buffer, and Node's `writableLength` only shrinks when a whole write
 * request completes: neither says whether a slow reader is making progress.
 */
function drainedBytes(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { bytesWritten?: number; writeQueueSize?: number } | null })._handle;
  return (handle?.bytesWritten ?? 0) - (handle?.writeQueueSize ?? 0);
}

/**
 * Returns `wrap(ws)`, which makes `ws.send` batch the frames of one event-loop turn into one socket
 * write, within the bounds. One `send` function is shared by every connection wrapped by the same
 * `wrap`, and state exists only for connections over their soft limit: nothing is allocated per
 * connection (it runs for each of tens of thousands of idle agents).
 */
export function socketWrites(opts: SocketWritesOptions = {}): (ws: WebSocket) => void {
  const { softLimit, stallMs, hardLimit, onTerminate } = opts;
  const backlogs = new WeakMap<WebSocket, Backlog>();
  const stallOf = () => stallMs?.() ?? 30_000;

  function terminate(ws: WebSocket, reason: 'stalled' | 'hard_limit'): void {
    forget(ws);
    if (ws.readyState !== ws.OPEN) return;
    onTerminate?.({ reason, bufferedAmount: ws.bufferedAmount });
    ws.terminate();
  }

  function forget(ws: WebSocket): void {
    const backlog = backlogs.get(ws);
    if (!backlog) return;
    clearTimeout(backlog.timer);
    backlogs.delete(ws);
  }

  /**
   * Over the soft limit: progress (bytes drained) is sampled when frames are sent and by a timer,
   * so a connection the hub stops sending to is still closed if it never drains.
   */
  function check(ws: WebSocket, socket: Socket): 'ok' | 'stalled' {
    if (ws.readyState !== ws.OPEN) {
      forget(ws);
      return 'ok';
    }
    if (!softLimit || ws.bufferedAmount <= softLimit()) {
      forget(ws);
      return 'ok';
    }
    const now = Date.now();
    const drained = drainedBytes(socket);
    const backlog = backlogs.get(ws);
    if (!backlog) {
      const timer = setTimeout(() => onTimer(ws, socket), stallOf());
      timer.unref();
      backlogs.set(ws, { since: now, drained, timer });
      return 'ok';
    }
    if (drained !== backlog.drained) {
      backlog.since = now;
      backlog.drained = drained;
      return 'ok';
    }
    return now - backlog.since >= stallOf() ? 'stalled' : 'ok';
  }

  function onTimer(ws: WebSocket, socket: Socket): void {
    const backlog = backlogs.get(ws);
    if (!backlog) return;
    if (check(ws, socket) === 'stalled') {
      terminate(ws, 'stalled');
      return;
    }
    const still = backlogs.get(ws);
    if (still) {
      still.timer = setTimeout(() => onTimer(ws, socket), Math.max(10, still.since + stallOf() - Date.now()));
      still.timer.unref();
    }
  }

  /** False when the connection was terminated (the frame is dropped). */
  function withinBounds(ws: WebSocket, socket: Socket): boolean {
    // Memory first: past the hard limit, whatever the soft limit or progress.
    if (hardLimit && ws.bufferedAmount > hardLimit()) {
      terminate(ws, 'hard_limit');
      return false;
    }
    if (check(ws, socket) === 'stalled') {
      terminate(ws, 'stalled');
      return false;
    }
    return true;
  }

  function send(this: WebSocket, ...args: unknown[]): void {
    const socket = (this as unknown as { _socket: Socket })._socket;
    if (this.readyState === this.OPEN && !withinBounds(this, socket)) return;
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
