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
  private timer: NodeJS.Timeout | undefined;

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

  private updateGauge(): void {
    this.metrics.connectedAgents.set(new Set([...this.live.values()].map((v) => v.agentId)).size);
  }

  async add(agentId: string, connectionId: string): Promise<void> {
    const key = `${agentId}\u0000${connectionId}`;
    const entry = this.live.get(key) ?? { agentId, since: new Date().toISOString() };
    this.live.set(key, entry);
    this.updateGauge();
    await this.agents.connected(agentId, connectionId, { node: this.nodeId, connected_since: entry.since });
    this.logger.info({ event: 'agent_online', agent_id: agentId, connection_id: connectionId }, 'agent online');
  }

  async remove(agentId: string, connectionId: string): Promise<void> {
    this.live.delete(`${agentId}\u0000${connectionId}`);
    this.updateGauge();
    await this.agents.disconnected(agentId, connectionId);
    this.logger.info({ event: 'agent_offline', agent_id: agentId, connection_id: connectionId }, 'agent offline');
  }

  /** Removes every entry of this node (graceful shutdown). */
  async clear(): Promise<void> {
    const all = [...this.live.entries()];
    await Promise.all(all.map(([key, v]) => this.remove(v.agentId, key.split('\u0000')[1]!).catch(() => {})));
  }

  private async refresh(): Promise<void> {
    for (const [key, v] of this.live) {
      const connectionId = key.split('\u0000')[1]!;
      await this.agents.connected(v.agentId, connectionId, { node: this.nodeId, connected_since: v.since }).catch((err) => {
        this.logger.warn({ event: 'presence_refresh_failed', agent_id: v.agentId, err }, 'presence refresh failed');
      });
    }
  }
}
