/**
 * Who may hold a WebSocket open. A browser's upgrade carries `Origin`: it must be this hub's own
 * origin or one of the allowed origins (`--cors-origin`, as /trpc's CORS). A connection must
 * authenticate within `authTimeoutMs` (default 10 s) or it is closed (code 4401), and one address
 * may hold at most `maxUnauthenticatedPerAddress` connections that have not authenticated yet:
 * sockets that only answer PING cannot pile up.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';

export type RefusalReason = 'origin' | 'address_cap' | 'auth_timeout';

export interface ConnectionGateOptions {
  allowedOrigins: readonly string[];
  authTimeoutMs: number;
  maxUnauthenticatedPerAddress: number;
  onRefused: (reason: RefusalReason, address: string) => void;
}

export interface ConnectionGate {
  /** The HTTP response that refuses this upgrade, or null to accept it. */
  refuseUpgrade(req: IncomingMessage): string | null;
  opened(socket: WebSocket, req: IncomingMessage): void;
  authenticated(socket: WebSocket): void;
  stop(): void;
}

export const AUTH_TIMEOUT_CLOSE_CODE = 4401;

/** Whether `origin` may open a WebSocket on a hub reached at `host` (same origin, or allowed). */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (!origin) return true; // not a browser: credentials decide
  if (allowed.includes('*') || allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

function addressOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

export function createConnectionGate(opts: ConnectionGateOptions): ConnectionGate {
  const pendingByAddress = new Map<string, number>();
  const pending = new Map<WebSocket, { address: string; timer: NodeJS.Timeout }>();
  const release = (socket: WebSocket) => {
    const p = pending.get(socket);
    if (!p) return;
    clearTimeout(p.timer);
    pending.delete(socket);
    const n = (pendingByAddress.get(p.address) ?? 1) - 1;
    if (n <= 0) pendingByAddress.delete(p.address);
    else pendingByAddress.set(p.address, n);
  };
  return {
    refuseUpgrade(req) {
      const address = addressOf(req);
      if (!originAllowed(req.headers.origin, req.headers.host, opts.allowedOrigins)) {
        opts.onRefused('origin', address);
        return "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nthis origin may not open a WebSocket on this hub (allowed: the hub's own origin and --cors-origin)";
      }
      if ((pendingByAddress.get(address) ?? 0) >= opts.maxUnauthenticatedPerAddress) {
        opts.onRefused('address_cap', address);
        return `HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nthis address holds ${opts.maxUnauthenticatedPerAddress} connections that have not authenticated yet (limits.max_unauthenticated_per_address)`;
      }
      return null;
    },
    opened(socket, req) {
      const address = addressOf(req);
      pendingByAddress.set(address, (pendingByAddress.get(address) ?? 0) + 1);
      const timer = setTimeout(() => {
        if (!pending.has(socket)) return;
        release(socket);
        opts.onRefused('auth_timeout', address);
        socket.close(AUTH_TIMEOUT_CLOSE_CODE, 'no valid credentials in time: pass connectionParams { token }');
      }, opts.authTimeoutMs);
      timer.unref();
      pending.set(socket, { address, timer });
      socket.once('close', () => release(socket));
    },
    authenticated(socket) {
      release(socket);
    },
    stop() {
      for (const socket of [...pending.keys()]) release(socket);
    },
  };
}
