/** Collaboration sessions: participants, status active|paused|completed, metadata, message refs. */
import { LinkerError } from '../protocol/errors.js';
import type { Session, SessionMessageRef, SessionMetadata, SessionStatus } from '../protocol/records.js';
import { keys } from './keys.js';
import type { Store } from './store.js';
import type { VersionedDocs } from './versioned.js';

type StoredSession = Omit<Session, 'messages'>;

export interface SessionSummary {
  session_id: string;
  status: SessionStatus;
  participants: string[];
  created_at: string;
  updated_at: string;
}

export class SessionStore {
  constructor(
    private readonly store: Store,
    private readonly docs: VersionedDocs,
    private readonly messagesMaxLen = 1000,
  ) {}

  private async index(s: StoredSession): Promise<void> {
    const summary: SessionSummary = {
      session_id: s.session_id,
      status: s.status,
      participants: s.participants,
      created_at: s.created_at,
      updated_at: s.updated_at,
    };
    await this.store.hashSet(keys.sessions(), { [s.session_id]: JSON.stringify(summary) });
  }

  async create(input: { session_id: string; participants: string[]; metadata: SessionMetadata; created_by: string; now?: Date }): Promise<Session> {
    const at = (input.now ?? new Date()).toISOString();
    const session: StoredSession = {
      session_id: input.session_id,
      participants: [...new Set([input.created_by, ...input.participants])],
      created_by: input.created_by,
      created_at: at,
      updated_at: at,
      status: 'active',
      metadata: input.metadata,
    };
    try {
      await this.docs.update<StoredSession>(keys.session(input.session_id), () => session, { expectedVersion: 0 });
    } catch (err) {
      if (err instanceof LinkerError && err.code === 'CONFLICT') {
        throw new LinkerError('CONFLICT', `session ${input.session_id} already exists`);
      }
      throw err;
    }
    await this.index(session);
    return { ...session, messages: [] };
  }

  async get(sessionId: string, opts: { messageLimit?: number } = {}): Promise<Session | null> {
    const doc = await this.docs.read<StoredSession>(keys.session(sessionId));
    if (!doc) return null;
    const refs = await this.store.readStreamReverse(keys.sessionMessages(sessionId), { count: opts.messageLimit ?? 100 });
    const messages = refs.reverse().map((e) => JSON.parse(e.fields.r ?? '{}') as SessionMessageRef);
    return { ...doc.value, messages };
  }

  async require(sessionId: string): Promise<Session> {
    const s = await this.get(sessionId);
    if (!s) throw new LinkerError('NOT_FOUND', `no session named ${sessionId}`);
    return s;
  }

  async list(opts: { status?: SessionStatus | undefined } = {}): Promise<SessionSummary[]> {
    const all = Object.values(await this.store.hashGetAll(keys.sessions())).map((v) => JSON.parse(v) as SessionSummary);
    return all.filter((s) => !opts.status || s.status === opts.status).sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  async update(
    sessionId: string,
    changes: { status?: SessionStatus | undefined; metadata?: SessionMetadata | undefined; participants?: string[] | undefined },
    now = new Date(),
  ): Promise<Session> {
    const result = await this.docs.update<StoredSession>(keys.session(sessionId), (current) => {
      if (!current) throw new LinkerError('NOT_FOUND', `no session named ${sessionId}`);
      if (current.status === 'completed' && changes.status && changes.status !== 'completed') {
        throw new LinkerError('CONFLICT', `session ${sessionId} is completed and cannot be reopened`);
      }
      return {
        ...current,
        status: changes.status ?? current.status,
        metadata: changes.metadata ? { ...current.metadata, ...changes.metadata } : current.metadata,
        participants: changes.participants ? [...new Set([...current.participants, ...changes.participants])] : current.participants,
        updated_at: now.toISOString(),
      };
    });
    await this.index(result.value);
    return (await this.get(sessionId))!;
  }

  close(sessionId: string): Promise<Session> {
    return this.update(sessionId, { status: 'completed' });
  }

  /**
   * Records a message in a session; creates the session on first use (the seed's scenario names
   * `sess_123` without creating it) and adds new participants.
   */
  async addMessage(sessionId: string, ref: SessionMessageRef): Promise<void> {
    const people = [ref.from, ...(ref.to ? [ref.to] : [])];
    const doc = await this.docs.read<StoredSession>(keys.session(sessionId));
    if (!doc) {
      await this.create({ session_id: sessionId, participants: people, metadata: {}, created_by: ref.from }).catch((err) => {
        if (!(err instanceof LinkerError && err.code === 'CONFLICT')) throw err;
      });
    } else if (doc.value.status === 'completed') {
      throw new LinkerError('CONFLICT', `session ${sessionId} is completed; messages can no longer be added`);
    }
    if (!doc || people.some((p) => !doc.value.participants.includes(p))) await this.update(sessionId, { participants: people });
    await this.store.appendStreams([{ key: keys.sessionMessages(sessionId), fields: { r: JSON.stringify(ref) }, maxLen: this.messagesMaxLen }]);
  }
}
