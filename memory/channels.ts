/** Channel membership: members get channel messages in their inbox, durably, online or not. */
import { keys } from './keys.js';
import type { Store } from './store.js';

export interface ChannelInfo {
  name: string;
  members: string[];
  created_at: string;
}

export class ChannelStore {
  constructor(private readonly store: Store) {}

  async join(channel: string, agentId: string, now = new Date()): Promise<void> {
    const existing = await this.store.hashGet(keys.channels(), channel);
    if (!existing) await this.store.hashSet(keys.channels(), { [channel]: JSON.stringify({ created_at: now.toISOString() }) });
    await this.store.hashSet(keys.channelMembers(channel), { [agentId]: now.toISOString() });
  }

  async leave(channel: string, agentId: string): Promise<void> {
    await this.store.hashDelete(keys.channelMembers(channel), [agentId]);
  }

  async members(channel: string): Promise<string[]> {
    return Object.keys(await this.store.hashGetAll(keys.channelMembers(channel))).sort();
  }

  async list(): Promise<ChannelInfo[]> {
    const all = await this.store.hashGetAll(keys.channels());
    const out: ChannelInfo[] = [];
    for (const [name, raw] of Object.entries(all)) {
      out.push({ name, members: await this.members(name), created_at: (JSON.parse(raw) as { created_at: string }).created_at });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async exists(channel: string): Promise<boolean> {
    return (await this.store.hashGet(keys.channels(), channel)) !== null;
  }
}
