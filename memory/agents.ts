/**
 * The agent registry and presence. Presence is a hash of live connections per agent (field =
 * connection id) whose TTL the hub refreshes while the connection lives, so a crashed node's
 * agents go offline by themselves (as soon as the node's heartbeat runs out) and `agents list` is
 * right across nodes. Registry records carry free-form metadata, so they are sealed like every
 * other value.
 */
import { LinkerError } from '../protocol/errors.js';
import type { JsonObject } from '../protocol/json.js';
import type { AgentRecord, AgentStatus, PublicKeys } from '../protocol/records.js';
import { keys } from './keys.js';
import { plainText, type ValueSealer } from './sealing.js';
import type { Store } from './store.js';

export interface PresenceEntry {
  node: string;
  connected_since: string;
}

export class AgentRegistry {
  constructor(
    private readonly store: Store,
    /** How long a connection counts as online without a refresh. Default 60 s. */
    private readonly presenceTtlMs = 60_000,
    private readonly sealer: ValueSealer = plainText,
    /** The node this process runs, if it is a hub: its own connections are live whatever its heartbeat says. */
    private readonly localNode: string | null = null,
  ) {}

  private decode(agentId: string, raw: string): AgentRecord {
    return JSON.parse(this.sealer.open(raw, keys.agentSeal(agentId))) as AgentRecord;
  }

  /** Whether the agent is registered (no decryption: the hot path of every direct send). */
  async exists(agentId: string): Promise<boolean> {
    return (await this.store.hashGet(keys.agents(), agentId)) !== null;
  }

  async get(agentId: string): Promise<AgentRecord | null> {
    const raw = await this.store.hashGet(keys.agents(), agentId);
    return raw ? this.decode(agentId, raw) : null;
  }

  async require(agentId: string): Promise<AgentRecord> {
    const r = await this.get(agentId);
    if (!r) throw new LinkerError('NOT_FOUND', `unknown agent ${agentId}`);
    return r;
  }

  /** Creates or updates an agent; type, metadata and keys given replace the stored ones. */
  async upsert(input: { agent_id: string; agent_type?: string | undefined; metadata?: JsonObject | undefined; public_keys?: PublicKeys | undefined }, now = new Date()): Promise<AgentRecord> {
    const current = await this.get(input.agent_id);
    const record: AgentRecord = {
      agent_id: input.agent_id,
      agent_type: input.agent_type ?? current?.agent_type ?? 'agent',
      metadata: input.metadata ?? current?.metadata ?? {},
      public_keys: { ...current?.public_keys, ...input.public_keys },
      created_at: current?.created_at ?? now.toISOString(),
      last_seen: current?.last_seen ?? null,
    };
    await this.store.hashSet(keys.agents(), { [input.agent_id]: this.sealer.seal(JSON.stringify(record), keys.agentSeal(input.agent_id)) });
    return record;
  }

  async remove(agentId: string): Promise<boolean> {
    const existed = (await this.get(agentId)) !== null;
    await this.store.hashDelete(keys.agents(), [agentId]);
    await this.store.hashDelete(keys.lastSeen(), [agentId]);
    await this.store.deleteKeys([keys.presence(agentId)]);
    return existed;
  }

  /** Marks a connection live (call again within the TTL to keep it so). */
  async connected(agentId: string, connectionId: string, entry: PresenceEntry, now = new Date()): Promise<void> {
    await this.store.hashSetWithExpiry(
      keys.presence(agentId),
      { [connectionId]: JSON.stringify({ ...entry, expires_at: now.getTime() + this.presenceTtlMs }) },
      this.presenceTtlMs,
    );
    await this.store.hashSet(keys.lastSeen(), { [agentId]: now.toISOString() });
  }

  async disconnected(agentId: string, connectionId: string, now = new Date()): Promise<void> {
    await this.store.hashDelete(keys.presence(agentId), [connectionId]);
    await this.store.hashSet(keys.lastSeen(), { [agentId]: now.toISOString() });
  }

  /** Hub nodes' heartbeats (transport/bus.ts): node id -> alive until (ms). */
  private nodes(): Promise<Record<string, string>> {
    return this.store.hashGetAll(keys.nodes());
  }

  /**
   * Live connections: refreshed within the TTL, on a node whose heartbeat has not run out. A
   * crashed node's agents are offline once its heartbeat expires (seconds), not only when their
   * presence TTL does (a minute). On Redis every hub node writes heartbeats (transport/bus.ts), and
   * those of dead nodes are pruned: no heartbeat means a dead node. The embedded store is one
   * process without heartbeats: there the TTL alone decides. This node's own connections are live.
   */
  private async presence(agentId: string, now: number, nodes?: Record<string, string>): Promise<PresenceEntry[]> {
    const [all, alive] = await Promise.all([this.store.hashGetAll(keys.presence(agentId)), nodes ?? this.nodes()]);
    const heartbeats = this.store.kind === 'redis';
    const nodeAlive = (node: string) => node === this.localNode || (heartbeats ? Number(alive[node] ?? 0) > now : true);
    return Object.values(all)
      .map((v) => JSON.parse(v) as PresenceEntry & { expires_at: number })
      .filter((p) => p.expires_at > now && nodeAlive(p.node));
  }

  async status(record: AgentRecord, lastSeen: Record<string, string>, now = Date.now(), nodes?: Record<string, string>): Promise<AgentStatus> {
    const live = await this.presence(record.agent_id, now, nodes);
    const since = live.map((p) => p.connected_since).sort()[0] ?? null;
    return {
      ...record,
      last_seen: live.length > 0 ? new Date(now).toISOString() : (lastSeen[record.agent_id] ?? record.last_seen),
      online: live.length > 0,
      connected_since: since,
    };
  }

  async list(now = Date.now()): Promise<AgentStatus[]> {
    const [all, lastSeen, nodes] = await Promise.all([this.store.hashGetAll(keys.agents()), this.store.hashGetAll(keys.lastSeen()), this.nodes()]);
    const records = Object.entries(all).map(([agentId, raw]) => this.decode(agentId, raw));
    const statuses = await Promise.all(records.map((r) => this.status(r, lastSeen, now, nodes)));
    return statuses.sort((a, b) => a.agent_id.localeCompare(b.agent_id));
  }

  async isOnline(agentId: string, now = Date.now()): Promise<boolean> {
    return (await this.presence(agentId, now)).length > 0;
  }
}
