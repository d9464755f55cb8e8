/**
 * Revocation reaches open streams. Every WebSocket connection that authenticated with a token is
 * watched: every `intervalMs` (settings.tokenRecheckMs, default 5 s) each distinct token is
 * checked once against the store, and the connections whose token is gone (agents.remove, a
 * record that fails its integrity check) become unauthenticated and have every subscription ended
 * with UNAUTHORIZED: inbox, channels, monitor, context watch. Calls on them answer UNAUTHORIZED
 * from then on. An admin's removal on this node checks at once (`checkNow`); other nodes within
 * the interval.
 */
import { TRPCError } from '@trpc/server';
import type { Logger } from 'pino';
import type { Context } from '../router/context.js';
import { markRevoked } from '../router/trpc.js';
import type { ConnectionHandle } from './ws-adapter.js';
import type { TokenRecord, TokenStore } from '../memory/tokens.js';
import type { HubMetrics } from '../router/metrics.js';

interface Watched {
  ctx: Context;
  connection: ConnectionHandle;
}

export class RevocationWatcher {
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** Token hash -> the stored record bytes last verified and what they said. */
  private readonly verified = new Map<string, { stored: string; record: TokenRecord }>();

  constructor(
    private readonly tokens: TokenStore,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly metrics: HubMetrics,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.checkNow(), Math.max(250, this.intervalMs));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.watched.clear();
  }

  /** Watches a connection's token until the returned function is called (it closed). */
  watch(ctx: Context, connection: ConnectionHandle): () => void {
    if (!ctx.credential || !ctx.agent) return () => {};
    const entry: Watched = { ctx, connection };
    this.watched.add(entry);
    return () => this.watched.delete(entry);
  }

  /** Checks every watched token now (one store read per distinct token). */
  checkNow(): Promise<void> {
    this.running ??= this.check().finally(() => (this.running = null));
    return this.running;
  }

  private async check(): Promise<void> {
    const byToken = new Map<string, Watched[]>();
    for (const w of this.watched) {
      const token = w.ctx.credential?.tokenHash;
      if (!token) continue;
      const list = byToken.get(token);
      if (list) list.push(w);
      else byToken.set(token, [w]);
    }
    // Forget what was verified for tokens no connection holds any more.
    for (const token of this.verified.keys()) if (!byToken.has(token)) this.verified.delete(token);
    for (const [token, entries] of byToken) {
      let record: TokenRecord | null;
      try {
        // The bytes verified last time, unchanged, need no opening again (the AEAD open is most
        // of a check's cost with thousands of idle connections).
        const stored = await this.tokens.storedRecord(token);
        const known = this.verified.get(token);
        if (stored !== null && known && known.stored === stored) record = known.record;
        else {
          record = stored === null ? null : await this.tokens.verifyHash(token);
          if (record && stored !== null) this.verified.set(token, { stored, record });
          else this.verified.delete(token);
        }
      } catch {
        // The store is unreachable: nothing is concluded; the next round checks again.
        continue;
      }
      const now = Date.now();
      for (const w of entries) {
        const agentId = w.ctx.agent?.id;
        if (record && record.agent_id === agentId) {
          if (w.ctx.credential) w.ctx.credential.verifiedAt = now;
          w.ctx.agent = { id: record.agent_id, scopes: record.scopes };
          continue;
        }
        const message = markRevoked(w.ctx);
        this.watched.delete(w);
        this.metrics.connectionsRefused.inc({ reason: 'revoked' });
        this.logger.warn(
          { event: 'token_revoked_streams_ended', agent_id: agentId, subscriptions: w.connection.subscriptions },
          "token revoked: ended the connection's streams",
        );
        w.connection.endSubscriptions(new TRPCError({ code: 'UNAUTHORIZED', message }));
      }
    }
  }
}
