/**
 * One socket write per connection per event-loop turn instead of one per frame.
 *
 * The tRPC WS adapter sends each reply and each subscription item with its own `ws.send`, and
 * `ws` writes each frame with its own `writev` syscall. On loopback and LAN links the syscall, not
 * the bytes, is the cost: profiles of the hub under load showed a third of its CPU in `writev`.
 * Corking a connection's socket at its first frame of a turn and uncorking it once, in the check
 * phase after the turn's I/O callbacks and promise jobs (setImmediate), sends all frames of that
 * turn in one write. Nothing waits on a timer: a frame goes out in the same turn it was made, so
 * latency does not grow, and the busier the hub, the more frames share a write.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

const corked = new Set<Socket>();
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  for (const socket of corked) {
    // A socket closed meanwhile has nothing left to write; uncork is harmless there.
    socket.uncork();
  }
  corked.clear();
}

/** Makes `ws.send` batch the frames of one event-loop turn into one socket write. */
export function batchWrites(ws: WebSocket): void {
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  if (!socket || typeof socket.cork !== 'function') return;
  const send = ws.send.bind(ws) as (...args: unknown[]) => void;
  (ws as unknown as { send: (...args: unknown[]) => void }).send = (...args: unknown[]) => {
    if (!corked.has(socket)) {
      corked.add(socket);
      socket.cork();
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    }
    send(...args);
  };
}
