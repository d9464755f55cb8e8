/**
 * Agent tokens, stored hashed (SHA-256): a token is `skl_` + 32 random bytes (base64url), shown
 * once when issued. Each belongs to one agent id and carries scopes agent | monitor | admin.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { ignoreCorruption, reasonOf, type CorruptionReporter } from './integrity.js';
import { keys } from './keys.js';
import { plainText, type ValueSealer } from './sealing.js';
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
  constructor(
    private readonly store: Store,
    /** Seals each record under its token hash (integrity: a record changed in the store is refused). */
    private readonly sealer: ValueSealer = plainText,
    private readonly report: CorruptionReporter = ignoreCorruption,
  ) {}

  private encode(hash: string, record: TokenRecord): string {
    return this.sealer.seal(JSON.stringify(record), keys.tokenSeal(hash));
  }

  /** The record stored under `hash`, or null (reported) when it fails its integrity check. */
  private decode(hash: string, raw: string): TokenRecord | null {
    try {
      const record = JSON.parse(this.sealer.open(raw, keys.tokenSeal(hash))) as TokenRecord;
      if (typeof record?.agent_id !== 'string' || !Array.isArray(record.scopes)) throw new Error('not a token record');
      return record;
    } catch (err) {
      this.report({ kind: 'token', id: hash.slice(0, 12), reason: reasonOf(err) });
      return null;
    }
  }

  /** Issues a new token for `agentId`; the clear token is returned once and never stored. */
  async issue(agentId: string, scopes: Scope[], now = new Date()): Promise<{ token: string; record: TokenRecord }> {
    const token = `skl_${base64url(randomBytes(32))}`;
    const record: TokenRecord = { agent_id: agentId, scopes: [...new Set(scopes)], created_at: now.toISOString(), hint: token.slice(0, 8) };
    const hash = hashToken(token);
    await this.store.hashSet(keys.tokens(), { [hash]: this.encode(hash, record) });
    return { token, record };
  }

  /** Registers a token given in clear (e.g. from config.yaml); only its hash is stored. */
  async register(token: string, agentId: string, scopes: Scope[], now = new Date()): Promise<TokenRecord> {
    const record: TokenRecord = { agent_id: agentId, scopes: [...new Set(scopes)], created_at: now.toISOString(), hint: token.slice(0, 8) };
    const hash = hashToken(token);
    await this.store.hashSet(keys.tokens(), { [hash]: this.encode(hash, record) });
    return record;
  }

  async verify(token: string): Promise<TokenRecord | null> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 512) return null;
    return this.verifyHash(hashToken(token));
  }

  /** The record of the token with this hash (a ticket or a live stream holds the hash, not the token). */
  async verifyHash(hash: string): Promise<TokenRecord | null> {
    const raw = await this.store.hashGet(keys.tokens(), hash);
    return raw ? this.decode(hash, raw) : null;
  }

  /**
   * The stored form of the record under `hash` (null when there is none), unopened: a caller that
   * verified these very bytes before knows the record is unchanged without opening it again.
   */
  storedRecord(hash: string): Promise<string | null> {
    return this.store.hashGet(keys.tokens(), hash);
  }

  /** Every token record that passes its integrity check (others are reported and left out). */
  async list(): Promise<TokenRecord[]> {
    const out: TokenRecord[] = [];
    for (const [hash, raw] of Object.entries(await this.store.hashGetAll(keys.tokens()))) {
      const record = this.decode(hash, raw);
      if (record) out.push(record);
    }
    return out;
  }

  /** Revokes every token of an agent; returns how many were removed. */
  async revokeAgent(agentId: string): Promise<number> {
    const all = await this.store.hashGetAll(keys.tokens());
    // A record that fails its check is no one's token: it stays refused either way.
    const doomed = Object.entries(all)
      .filter(([hash, v]) => this.decode(hash, v)?.agent_id === agentId)
      .map(([hash]) => hash);
    await this.store.hashDelete(keys.tokens(), doomed);
    return doomed.length;
  }

  /**
   * A short-lived, single-use ticket standing for the token with hash `tokenHash` (a browser's SSE
   * URL carries it instead of the token). Stored hashed, with its TTL.
   */
  async issueTicket(tokenHash: string, agentId: string, ttlMs: number): Promise<string> {
    const ticket = `skt_${base64url(randomBytes(24))}`;
    await this.store.setValue(keys.ticket(hashToken(ticket)), JSON.stringify({ token_hash: tokenHash, agent_id: agentId }), ttlMs);
    return ticket;
  }

  /**
   * The token hash a ticket stands for, once: the ticket is deleted as it is read. (Two hub nodes
   * redeeming one ticket in the same instant could both succeed: the store has no get-and-delete;
   * on one node it is strictly single-use.)
   */
  async redeemTicket(ticket: string): Promise<{ tokenHash: string; agentId: string } | null> {
    if (typeof ticket !== 'string' || !ticket.startsWith('skt_') || ticket.length > 128) return null;
    const key = keys.ticket(hashToken(ticket));
    if (this.redeeming.has(key)) return null;
    this.redeeming.add(key);
    try {
      const raw = await this.store.getValue(key);
      if (raw === null) return null;
      await this.store.deleteKeys([key]);
      const parsed = JSON.parse(raw) as { token_hash?: unknown; agent_id?: unknown };
      if (typeof parsed.token_hash !== 'string' || typeof parsed.agent_id !== 'string') return null;
      return { tokenHash: parsed.token_hash, agentId: parsed.agent_id };
    } finally {
      this.redeeming.delete(key);
    }
  }

  private readonly redeeming = new Set<string>();

  async count(): Promise<number> {
    return Object.keys(await this.store.hashGetAll(keys.tokens())).length;
  }
}
