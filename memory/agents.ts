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
import { dataCorrupted, ignoreCorruption, reasonOf, type CorruptionReporter } from './integrity.js';
import { keys } from './keys.js';
import { plainText, type ValueSealer } from './sealing.js';
import type { Store } from './store.js';

/** NOT_FOUND for a message to an agent the registry does not have (said the same wherever it is found). */
export function unknownAgentError(agentId: string): LinkerError {
  return new LinkerError('NOT_FOUND', `unknown agent ${agentId}: no such agent is registered (skynet-linker agents add ${agentId})`);
}

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
    private readonly report: CorruptionReporter = ignoreCorruption,
  ) {}

  /** Opens a registry record; one that fails its integrity check is reported and answers DATA_CORRUPTED. */
  private decode(agentId: string, raw: string): AgentRecord {
    try {
      const record = JSON.parse(this.sealer.open(raw, keys.agentSeal(agentId))) as AgentRecord;
      if (record?.agent_id !== agentId) throw new Error(`the record names ${String(record?.agent_id)}`);
      return record;
    } catch (err) {
      this.report({ kind: 'agent', id: agentId, reason: reasonOf(err) });
      throw dataCorrupted('agent', agentId, `remove it and add it again (skynet-linker agents remove ${agentId})`);
    }
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
  async upsert(
    input: { agent_id: string; agent_type?: string | undefined; metadata?: JsonObject | undefined; public_keys?: PublicKeys | undefined },
    now = new Date(),
  ): Promise<AgentRecord> {
    // A record that fails its check is written anew (reported by get): what it held is not trusted.
    const current = await this.get(input.agent_id).catch(() => null);
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
    // Without opening it: a corrupt record can be removed too.
    const existed = await this.exists(agentId);
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

  /**
   * Whether a hub node is alive: its heartbeat key exists (transport/bus.ts; the store's clock keeps
   * its TTL). On the embedded store there is one process and no heartbeat: the presence TTL alone
   * decides. This node's own connections are live. `cache` shares the answer within one call.
   */
  private nodeAlive(node: string, cache: Map<string, Promise<boolean>>): Promise<boolean> {
    if (node === this.localNode || this.store.kind !== 'redis') return Promise.resolve(true);
    let alive = cache.get(node);
    if (!alive) {
      alive = this.store.hashGetAll(keys.nodeAlive(node)).then((beat) => Object.keys(beat).length > 0);
      cache.set(node, alive);
    }
    return alive;
  }

  /**
   * Live connections: refreshed within the TTL, on a node that is alive. A crashed node's agents
   * are offline once its heartbeat expires (seconds), not only when their presence TTL does.
   */
  private async presence(agentId: string, now: number, cache = new Map<string, Promise<boolean>>()): Promise<PresenceEntry[]> {
    // The key's own TTL (the store's clock) ends presence nobody refreshes. `expires_at` guards
    // against one stale connection while others keep the key alive; it is in the writer's clock,
    // so it is read with one TTL of slack: nodes' clocks may differ by up to that much.
    const entries = Object.values(await this.store.hashGetAll(keys.presence(agentId)))
      .map((v) => JSON.parse(v) as PresenceEntry & { expires_at: number })
      .filter((p) => p.expires_at + this.presenceTtlMs > now);
    const alive = await Promise.all(entries.map((p) => this.nodeAlive(p.node, cache)));
    return entries.filter((_, i) => alive[i]);
  }

  async status(record: AgentRecord, lastSeen: Record<string, string>, now = Date.now(), cache?: Map<string, Promise<boolean>>): Promise<AgentStatus> {
    const live = await this.presence(record.agent_id, now, cache);
    const since = live.map((p) => p.connected_since).sort()[0] ?? null;
    return {
      ...record,
      last_seen: live.length > 0 ? new Date(now).toISOString() : (lastSeen[record.agent_id] ?? record.last_seen),
      online: live.length > 0,
      connected_since: since,
    };
  }

  async list(now = Date.now()): Promise<AgentStatus[]> {
    const [all, lastSeen] = await Promise.all([this.store.hashGetAll(keys.agents()), this.store.hashGetAll(keys.lastSeen())]);
    // A record that fails its check is left out (and reported), not a failure of the whole list.
    const records: AgentRecord[] = [];
    for (const [agentId, raw] of Object.entries(all)) {
      try {
        records.push(this.decode(agentId, raw));
      } catch {
        // reported by decode
      }
    }
    const nodes = new Map<string, Promise<boolean>>();
    const statuses = await Promise.all(records.map((r) => this.status(r, lastSeen, now, nodes)));
    return statuses.sort((a, b) => a.agent_id.localeCompare(b.agent_id));
  }

  async isOnline(agentId: string, now = Date.now()): Promise<boolean> {
    return (await this.presence(agentId, now)).length > 0;
  }
}
