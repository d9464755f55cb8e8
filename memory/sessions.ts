/** Collaboration sessions: participants, status active|paused|completed, metadata, message refs. */
import { LinkerError } from '../protocol/errors.js';
import { utf8Length } from '../protocol/json.js';
import type { Session, SessionMessageRef, SessionMetadata, SessionStatus } from '../protocol/records.js';
import { corruptAs, ignoreCorruption, reasonOf, type CorruptionReporter } from './integrity.js';
import { keys } from './keys.js';
import { plainText, type ValueSealer } from './sealing.js';
import type { Store } from './store.js';
import type { Versioned, VersionedDocs } from './versioned.js';

type StoredSession = Omit<Session, 'messages'>;

/** Participants one session may have. */
export const MAX_SESSION_PARTICIPANTS = 1000;
/** A session's metadata (goal, deadline, anything else), as JSON. */
export const MAX_SESSION_METADATA_BYTES = 64 * 1024;

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
    /** Seals each summary of the listing index under its session id (integrity). */
    private readonly sealer: ValueSealer = plainText,
    private readonly report: CorruptionReporter = ignoreCorruption,
  ) {}

  /** The session's document; one that fails its integrity check is reported and answers DATA_CORRUPTED. */
  private read(sessionId: string): Promise<Versioned<StoredSession> | null> {
    return this.docs.read<StoredSession>(keys.session(sessionId)).catch(this.corrupt(sessionId));
  }

  private corrupt(sessionId: string) {
    return corruptAs(this.report, 'session', sessionId, 'an admin can close it and start another one');
  }

  private async index(s: StoredSession): Promise<void> {
    const summary: SessionSummary = {
      session_id: s.session_id,
      status: s.status,
      participants: s.participants,
      created_at: s.created_at,
      updated_at: s.updated_at,
    };
    await this.store.hashSet(keys.sessions(), { [s.session_id]: this.sealer.seal(JSON.stringify(summary), keys.sessionIndexSeal(s.session_id)) });
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
    const metadataBytes = utf8Length(JSON.stringify(session.metadata));
    if (metadataBytes > MAX_SESSION_METADATA_BYTES) {
      throw new LinkerError('PAYLOAD_TOO_LARGE', `session metadata is ${metadataBytes} bytes, over the limit of ${MAX_SESSION_METADATA_BYTES} bytes`);
    }
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
    const doc = await this.read(sessionId);
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
    // A summary that fails its check is left out (and reported), not a failure of the whole list.
    const all: SessionSummary[] = [];
    for (const [sessionId, raw] of Object.entries(await this.store.hashGetAll(keys.sessions()))) {
      try {
        const summary = JSON.parse(this.sealer.open(raw, keys.sessionIndexSeal(sessionId))) as SessionSummary;
        if (summary?.session_id !== sessionId || !Array.isArray(summary.participants)) throw new Error(`the summary names ${String(summary?.session_id)}`);
        all.push(summary);
      } catch (err) {
        this.report({ kind: 'session_index', id: sessionId, reason: reasonOf(err) });
      }
    }
    return all.filter((s) => !opts.status || s.status === opts.status).sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  async update(
    sessionId: string,
    changes: { status?: SessionStatus | undefined; metadata?: SessionMetadata | undefined; participants?: string[] | undefined },
    now = new Date(),
  ): Promise<Session> {
    const result = await this.docs
      .update<StoredSession>(keys.session(sessionId), (current) => {
        if (!current) throw new LinkerError('NOT_FOUND', `no session named ${sessionId}`);
        if (current.status === 'completed' && changes.status && changes.status !== 'completed') {
          throw new LinkerError('CONFLICT', `session ${sessionId} is completed and cannot be reopened`);
        }
        const next: StoredSession = {
          ...current,
          status: changes.status ?? current.status,
          metadata: changes.metadata ? { ...current.metadata, ...changes.metadata } : current.metadata,
          participants: changes.participants ? [...new Set([...current.participants, ...changes.participants])] : current.participants,
          updated_at: now.toISOString(),
        };
        if (next.participants.length > MAX_SESSION_PARTICIPANTS) {
          throw new LinkerError(
            'PAYLOAD_TOO_LARGE',
            `session ${sessionId} would have ${next.participants.length} participants, over the limit of ${MAX_SESSION_PARTICIPANTS}`,
          );
        }
        const metadataBytes = utf8Length(JSON.stringify(next.metadata));
        if (metadataBytes > MAX_SESSION_METADATA_BYTES) {
          throw new LinkerError(
            'PAYLOAD_TOO_LARGE',
            `session ${sessionId}'s metadata would be ${metadataBytes} bytes, over the limit of ${MAX_SESSION_METADATA_BYTES} bytes`,
          );
        }
        return next;
      })
      .catch(this.corrupt(sessionId));
    await this.index(result.value);
    return (await this.get(sessionId))!;
  }

  close(sessionId: string): Promise<Session> {
    return this.update(sessionId, { status: 'completed' });
  }

  /**
   * Records a message in a session. A session named for the first time is created with the
   * sender and the recipient as participants (the seed's scenario names `sess_123` without
   * creating it). In an existing session only a participant (or, with `admin`, an operator) adds
   * messages: FORBIDDEN otherwise; its recipient becomes a participant.
   */
  async addMessage(sessionId: string, ref: SessionMessageRef, opts: { admin?: boolean } = {}): Promise<void> {
    const people = [ref.from, ...(ref.to ? [ref.to] : [])];
    let doc = await this.read(sessionId);
    if (!doc) {
      const created = await this.create({ session_id: sessionId, participants: people, metadata: {}, created_by: ref.from }).then(
        () => true,
        (err: unknown) => {
          if (!(err instanceof LinkerError && err.code === 'CONFLICT')) throw err;
          return false;
        },
      );
      // Someone else created it meanwhile: their session, their participants.
      if (!created) doc = await this.read(sessionId);
    }
    if (doc) {
      if (!opts.admin && !doc.value.participants.includes(ref.from)) {
        throw new LinkerError(
          'FORBIDDEN',
          `${ref.from} is not a participant of session ${sessionId}: only participants add messages to it (a participant can add you)`,
        );
      }
      if (doc.value.status === 'completed') throw new LinkerError('CONFLICT', `session ${sessionId} is completed; messages can no longer be added`);
      if (people.some((p) => !doc!.value.participants.includes(p))) await this.update(sessionId, { participants: people });
    }
    await this.store.appendStreams([{ key: keys.sessionMessages(sessionId), fields: { r: JSON.stringify(ref) }, maxLen: this.messagesMaxLen }]);
  }

  /** Whether `agentId` takes part in the session (false when there is no such session). */
  async isParticipant(sessionId: string, agentId: string): Promise<boolean> {
    const doc = await this.read(sessionId);
    return doc?.value.participants.includes(agentId) ?? false;
  }
}
