/**
 * Presence of this node's connected agents: written when an inbox subscription starts, refreshed
 * in one batch while it lasts, removed when it ends. A crashed node's entries expire by TTL.
 */
import type { Logger } from 'pino';
import type { AgentRegistry } from '../memory/agents.js';
import type { PresenceTracker } from '../router/context.js';
import type { HubMetrics } from '../router/metrics.js';

export class NodePresence implements PresenceTracker {
  private readonly live = new Map<string, { agentId: string; since: string }>();
  /** Live connections per agent, so the gauge is O(1) per change (it was O(n): O(n²) to connect n). */
  private readonly perAgent = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;

  constructor(
    private readonly nodeId: string,
    private readonly agents: AgentRegistry,
    private readonly metrics: HubMetrics,
    private readonly logger: Logger,
    private readonly refreshMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private count(agentId: string, delta: number): void {
    const n = (this.perAgent.get(agentId) ?? 0) + delta;
    if (n > 0) this.perAgent.set(agentId, n);
    else this.perAgent.delete(agentId);
    this.metrics.connectedAgents.set(this.perAgent.size);
  }

  async add(agentId: string, connectionId: string): Promise<void> {
    const key = `${agentId}\u0000${connectionId}`;
    let entry = this.live.get(key);
    if (!entry) {
      entry = { agentId, since: new Date().toISOString() };
      this.live.set(key, entry);
      this.count(agentId, 1);
    }
    await this.agents.connected(agentId, connectionId, { node: this.nodeId, connected_since: entry.since });
    this.logger.info({ event: 'agent_online', agent_id: agentId, connection_id: connectionId }, 'agent online');
  }

  async remove(agentId: string, connectionId: string): Promise<void> {
    if (this.live.delete(`${agentId}\u0000${connectionId}`)) this.count(agentId, -1);
    await this.agents.disconnected(agentId, connectionId);
    this.logger.info({ event: 'agent_offline', agent_id: agentId, connection_id: connectionId }, 'agent offline');
  }

  /** Removes every entry of this node (graceful shutdown). */
  async clear(): Promise<void> {
    const all = [...this.live.entries()];
    await Promise.all(all.map(([key, v]) => this.remove(v.agentId, key.split('\u0000')[1]!).catch(() => {})));
  }

  /** Refreshes every live connection, 500 at a time (pipelined by the store), never two runs at once. */
  private async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const all = [...this.live.entries()];
      for (let i = 0; i < all.length; i += 500) {
        await Promise.all(
          all.slice(i, i + 500).map(([key, v]) =>
            this.agents.connected(v.agentId, key.split('\u0000')[1]!, { node: this.nodeId, connected_since: v.since }).catch((err) => {
              this.logger.warn({ event: 'presence_refresh_failed', agent_id: v.agentId, err }, 'presence refresh failed');
            }),
          ),
        );
      }
    } finally {
      this.refreshing = false;
    }
  }
}
