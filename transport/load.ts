/**
 * Tells an overloaded hub apart from a store outage. The event loop's delay is sampled all the
 * time (a 100 ms timer that measures how late it fires); /health pings the store with a deadline,
 * and a ping that misses it while the loop itself was stalled says "overloaded", not "store
 * unreachable": the hub was too busy to hear the answer.
 */
export interface HealthReport {
  status: 'ok' | 'degraded' | 'overloaded';
  store: { reachable: boolean | null; latency_ms: number | null };
  event_loop: { delay_ms: number; max_delay_ms: number; overloaded: boolean };
}

export interface LoadMonitor {
  health(ping: () => Promise<void>): Promise<HealthReport>;
  stop(): void;
}

const SAMPLE_MS = 100;

export function createLoadMonitor(opts: { overloadDelayMs: number; pingTimeoutMs?: number }): LoadMonitor {
  const pingTimeoutMs = opts.pingTimeoutMs ?? 2_000;
  // Delays of the last second (one per sample), newest last: a stall past it is history, not load.
  const recent: number[] = [];
  let expected = performance.now() + SAMPLE_MS;
  const timer = setInterval(() => {
    const now = performance.now();
    recent.push(Math.max(0, now - expected));
    if (recent.length > 10) recent.shift();
    expected = now + SAMPLE_MS;
  }, SAMPLE_MS);
  timer.unref();
  /** The stall happening now: how late the next sample already is. */
  const currentDelay = () => Math.max(0, performance.now() - expected);
  const maxDelay = () => Math.max(currentDelay(), ...recent);

  return {
    async health(ping) {
      const started = performance.now();
      let reachable: boolean | null = true;
      let timedOut = false;
      let deadline: NodeJS.Timeout | undefined;
      await Promise.race([
        ping().catch(() => (reachable = false)),
        new Promise<void>((resolve) => {
          deadline = setTimeout(() => {
            timedOut = true;
            resolve();
          }, pingTimeoutMs);
        }),
      ]);
      clearTimeout(deadline);
      const latency = performance.now() - started;
      const worst = maxDelay();
      const overloaded = worst >= opts.overloadDelayMs;
      // A ping that missed its deadline while the loop stalled proves nothing about the store.
      if (timedOut) reachable = overloaded ? null : false;
      const status: HealthReport['status'] = overloaded ? 'overloaded' : reachable ? 'ok' : 'degraded';
      return {
        status,
        store: { reachable, latency_ms: reachable ? Math.round(latency) : null },
        event_loop: { delay_ms: Math.round(recent.at(-1) ?? 0), max_delay_ms: Math.round(worst), overloaded },
      };
    },
    stop() {
      clearInterval(timer);
    },
  };
}
