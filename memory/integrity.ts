/**
 * Records changed outside the hub. With sealing on, every token, agent, session and context
 * record is sealed under the hub's key ring with its own key name as associated data, so a
 * record rewritten in the store (scopes raised to admin, a participant added, a value moved from
 * one key to another) fails to open. Such a record is refused and reported, and only it is
 * affected: listings skip it, a read of it answers DATA_CORRUPTED (an admin can reset a context
 * scope). What this does not detect: a record deleted, or replaced by an older sealed version of
 * itself (a replay), and anything at all with sealing off (README, Security).
 */
import { LinkerError } from '../protocol/errors.js';
import { CorruptValueError } from './versioned.js';

export type RecordKind = 'token' | 'agent' | 'session' | 'session_index' | 'context';

export interface CorruptRecord {
  kind: RecordKind;
  /** The record's id: token hint, agent id, session id or context scope (never a secret). */
  id: string;
  reason: string;
}

/** Told about every record that failed its integrity check (the hub logs and counts them). */
export type CorruptionReporter = (record: CorruptRecord) => void;

export const ignoreCorruption: CorruptionReporter = () => {};

/** The error a read of a corrupt record answers: `details.error` is `DATA_CORRUPTED`. */
export function dataCorrupted(kind: RecordKind, id: string, hint: string): LinkerError {
  return new LinkerError(
    'INTERNAL_SERVER_ERROR',
    `DATA_CORRUPTED: the ${kind.replace('_', ' ')} record ${id} failed its integrity check (changed outside the hub?); ${hint}`,
    {
      error: 'DATA_CORRUPTED',
      kind,
      id,
    },
  );
}

/**
 * A catch handler for reads and updates of a versioned record: a value that does not open
 * (CorruptValueError) is reported and becomes DATA_CORRUPTED; anything else (a store outage, a
 * caller's own error) passes as it is.
 */
export function corruptAs(report: CorruptionReporter, kind: RecordKind, id: string, hint: string): (err: unknown) => never {
  return (err) => {
    if (!(err instanceof CorruptValueError)) throw err;
    report({ kind, id, reason: reasonOf(err) });
    throw dataCorrupted(kind, id, hint);
  };
}

export function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
