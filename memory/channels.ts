/**
 * Channels: members get channel messages in their inbox, durably, online or not. Each channel has
 * a join policy: `open` (anyone may join; the default, and `skynet_core`'s) or `invite` (only a
 * member or an admin adds members). Who may do what is decided in procedures/policy.ts.
 */
import { LinkerError } from '../protocol/errors.js';
import { keys } from './keys.js';
import type { Store } from './store.js';

export const CHANNEL_POLICIES = ['open', 'invite'] as const;
export type ChannelPolicy = (typeof CHANNEL_POLICIES)[number];

export interface ChannelInfo {
  name: string;
  members: string[];
  created_at: string;
  policy: ChannelPolicy;
  created_by: string | null;
}

interface StoredChannel {
  created_at: string;
  policy?: ChannelPolicy;
  created_by?: string | null;
}

/** Members one channel may have. */
export const MAX_CHANNEL_MEMBERS = 10_000;

export class ChannelStore {
  constructor(private readonly store: Store) {}

  private async info(channel: string): Promise<StoredChannel | null> {
    const raw = await this.store.hashGet(keys.channels(), channel);
    if (raw === null) return null;
    try {
      return JSON.parse(raw) as StoredChannel;
    } catch {
      // An unreadable record is the most restrictive channel, not an open one.
      return { created_at: new Date(0).toISOString(), policy: 'invite', created_by: null };
    }
  }

  /** The channel's join policy; null when there is no such channel (a first join creates it open). */
  async policy(channel: string): Promise<ChannelPolicy | null> {
    const info = await this.info(channel);
    return info ? (info.policy ?? 'open') : null;
  }

  /** Creates a channel with a policy, its creator the first member; CONFLICT when it exists. */
  async create(channel: string, policy: ChannelPolicy, by: string, now = new Date()): Promise<void> {
    if (await this.info(channel)) throw new LinkerError('CONFLICT', `channel ${channel} already exists`);
    await this.store.hashSet(keys.channels(), { [channel]: JSON.stringify({ created_at: now.toISOString(), policy, created_by: by } satisfies StoredChannel) });
    await this.store.hashSet(keys.channelMembers(channel), { [by]: now.toISOString() });
  }

  /** Adds a member (an open channel named for the first time is created). Callers check the policy first. */
  async join(channel: string, agentId: string, now = new Date()): Promise<void> {
    const existing = await this.info(channel);
    if (!existing)
      await this.store.hashSet(keys.channels(), {
        [channel]: JSON.stringify({ created_at: now.toISOString(), policy: 'open', created_by: agentId } satisfies StoredChannel),
      });
    if ((await this.store.hashGet(keys.channelMembers(channel), agentId)) !== null) return;
    const count = Object.keys(await this.store.hashGetAll(keys.channelMembers(channel))).length;
    if (count >= MAX_CHANNEL_MEMBERS) throw new LinkerError('PAYLOAD_TOO_LARGE', `channel ${channel} has ${count} members, the limit`);
    await this.store.hashSet(keys.channelMembers(channel), { [agentId]: now.toISOString() });
  }

  async leave(channel: string, agentId: string): Promise<void> {
    await this.store.hashDelete(keys.channelMembers(channel), [agentId]);
  }

  async members(channel: string): Promise<string[]> {
    return Object.keys(await this.store.hashGetAll(keys.channelMembers(channel))).sort();
  }

  async isMember(channel: string, agentId: string): Promise<boolean> {
    return (await this.store.hashGet(keys.channelMembers(channel), agentId)) !== null;
  }

  async list(): Promise<ChannelInfo[]> {
    const all = await this.store.hashGetAll(keys.channels());
    const out: ChannelInfo[] = [];
    for (const [name, raw] of Object.entries(all)) {
      let info: StoredChannel;
      try {
        info = JSON.parse(raw) as StoredChannel;
      } catch {
        info = { created_at: new Date(0).toISOString(), policy: 'invite', created_by: null };
      }
      out.push({ name, members: await this.members(name), created_at: info.created_at, policy: info.policy ?? 'open', created_by: info.created_by ?? null });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async exists(channel: string): Promise<boolean> {
    return (await this.store.hashGet(keys.channels(), channel)) !== null;
  }
}
