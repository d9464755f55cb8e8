/**
 * Agent tokens, stored hashed (SHA-256): a token is `skl_` + 32 random bytes (base64url), shown
 * once when issued. Each belongs to one agent id and carries scopes agent | monitor | admin.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { keys } from './keys.js';
import type { Store } from './store.js';

export const SCOPES = ['agent', 'monitor', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenRecord {
  agent_id: string;
  scopes: Scope[];
  created_at: string;
  /** First characters of the token, to tell tokens apart in listings without revealing them. */
  hint: string;
}

export function hashToken(token: string): string {
  return bytesToHex(sha256(utf8ToBytes(token)));
}

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

export class TokenStore {
  constructor(private readonly store: Store) {}

  /** Issues a new token for `agentId`; the clear token is returned once and never stored. */
  async issue(agentId: string, scopes: Scope[], now = new Date()): Promise<{ token: string; record: TokenRecord }> {
    const token = `skl_${base64url(randomBytes(32))}`;
    const record: TokenRecord = { agent_id: agentId, scopes: [...new Set(scopes)], created_at: now.toISOString(), hint: token.slice(0, 8) };
    await this.store.hashSet(keys.tokens(), { [hashToken(token)]: JSON.stringify(record) });
    return { token, record };
  }

  /** Registers a token given in clear (e.g. from config.yaml); only its hash is stored. */
  async register(token: string, agentId: string, scopes: Scope[], now = new Date()): Promise<TokenRecord> {
    const record: TokenRecord = { agent_id: agentId, scopes: [...new Set(scopes)], created_at: now.toISOString(), hint: token.slice(0, 8) };
    await this.store.hashSet(keys.tokens(), { [hashToken(token)]: JSON.stringify(record) });
    return record;
  }

  async verify(token: string): Promise<TokenRecord | null> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 512) return null;
    const raw = await this.store.hashGet(keys.tokens(), hashToken(token));
    return raw ? (JSON.parse(raw) as TokenRecord) : null;
  }

  async list(): Promise<TokenRecord[]> {
    return Object.values(await this.store.hashGetAll(keys.tokens())).map((v) => JSON.parse(v) as TokenRecord);
  }

  /** Revokes every token of an agent; returns how many were removed. */
  async revokeAgent(agentId: string): Promise<number> {
    const all = await this.store.hashGetAll(keys.tokens());
    const doomed = Object.entries(all)
      .filter(([, v]) => (JSON.parse(v) as TokenRecord).agent_id === agentId)
      .map(([hash]) => hash);
    await this.store.hashDelete(keys.tokens(), doomed);
    return doomed.length;
  }

  async count(): Promise<number> {
    return Object.keys(await this.store.hashGetAll(keys.tokens())).length;
  }
}
