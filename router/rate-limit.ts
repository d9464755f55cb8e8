/** Per-agent token buckets on send. Per node: with N nodes an agent may get up to N times the rate. */
export interface RateLimitOptions {
  /** Sustained messages per second per agent; 0 turns the limit off. Default 1000. */
  perSecond: number;
  /** Burst size. Default 2 × perSecond. */
  burst?: number;
}

export interface RateLimiter {
  /** True when the agent may send now (and takes a token). */
  take(agentId: string): boolean;
  readonly perSecond: number;
}

export function createRateLimiter(opts: RateLimitOptions, now: () => number = Date.now): RateLimiter {
  const burst = opts.burst ?? opts.perSecond * 2;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    perSecond: opts.perSecond,
    take(agentId) {
      if (opts.perSecond <= 0) return true;
      const t = now();
      const b = buckets.get(agentId) ?? { tokens: burst, at: t };
      b.tokens = Math.min(burst, b.tokens + ((t - b.at) / 1000) * opts.perSecond);
      b.at = t;
      buckets.set(agentId, b);
      if (b.tokens < 1) return false;
      b.tokens -= 1;
      return true;
    },
  };
}
