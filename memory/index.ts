/** The shared memory: everything the hub's procedures read and write, over one Store. */
import { AgentRegistry } from './agents.js';
import { ChannelStore } from './channels.js';
import { ContextStore, DEFAULT_CONTEXT_LIMITS, type ContextLimits } from './contexts.js';
import { ignoreCorruption, type CorruptionReporter } from './integrity.js';
import { GuardStore } from './guards.js';
import { DEFAULT_STREAM_LIMITS, MessageStore, type StreamLimits } from './messages.js';
import { inProcessValues, plainText, type ValueSealer } from './sealing.js';
import { SessionStore } from './sessions.js';
import { SnapshotStore } from './snapshots.js';
import type { Store } from './store.js';
import { TokenStore } from './tokens.js';
import { VersionedDocs } from './versioned.js';

export interface SharedMemoryOptions {
  store: Store;
  /**
   * Seals values before they reach the store. Default: plain text (no sealing). On Redis and on
   * SQLite (the database file and its WAL are at rest) each value is sealed; on the in-memory
   * embedded store (the hub's own memory) only snapshots are, see `inProcessValues` in sealing.ts.
   */
  sealer?: ValueSealer;
  /**
   * Seal each value on the embedded store too (as on Redis), not only its snapshots. Default
   * false: in the hub's own memory it protects nothing (see `inProcessValues` in sealing.ts).
   */
  sealInMemory?: boolean;
  limits?: Partial<StreamLimits>;
  /** How long a connection counts as online without a refresh. Default 60 000 ms. */
  presenceTtlMs?: number;
  /** The hub node this process runs (presence of its own connections never depends on its heartbeat). */
  nodeId?: string;
  /** Bounds of context documents and of the pushes waiting on one scope. */
  contextLimits?: Partial<ContextLimits>;
  /** Told about each record that fails its integrity check (memory/integrity.ts). */
  onCorrupt?: CorruptionReporter;
}

export interface SharedMemory {
  readonly store: Store;
  /** The sealer the memory was given: whether sealing is on, and what seals snapshots. */
  readonly sealer: ValueSealer;
  /** Whether each value is sealed in the store (false on the embedded store unless `sealInMemory`). */
  readonly valuesSealed: boolean;
  readonly messages: MessageStore;
  readonly channels: ChannelStore;
  readonly contexts: ContextStore;
  readonly sessions: SessionStore;
  readonly agents: AgentRegistry;
  readonly tokens: TokenStore;
  readonly snapshots: SnapshotStore;
  /** Loop guards' counters (hop counts, session budgets). */
  readonly guards: GuardStore;
}

export function createSharedMemory(opts: SharedMemoryOptions): SharedMemory {
  const sealer = opts.sealer ?? plainText;
  // What each value is sealed with in the store: on Redis and SQLite the sealer; in the hub's own
  // memory nothing (the snapshots that reach the disk are sealed whole), unless asked.
  const inProcess = opts.store.kind === 'embedded';
  const valuesSealed = sealer.enabled && (!inProcess || opts.sealInMemory === true);
  const values = inProcess ? inProcessValues(sealer, valuesSealed) : sealer;
  const limits = { ...DEFAULT_STREAM_LIMITS, ...opts.limits };
  const docs = new VersionedDocs(opts.store, values);
  const report = opts.onCorrupt ?? ignoreCorruption;
  return {
    store: opts.store,
    sealer,
    valuesSealed,
    messages: new MessageStore(opts.store, values, limits),
    channels: new ChannelStore(opts.store),
    contexts: new ContextStore(docs, { ...DEFAULT_CONTEXT_LIMITS, ...opts.contextLimits }, report),
    sessions: new SessionStore(opts.store, docs, undefined, values, report),
    agents: new AgentRegistry(opts.store, opts.presenceTtlMs, values, opts.nodeId ?? null, report),
    tokens: new TokenStore(opts.store, values, report),
    snapshots: new SnapshotStore(opts.store, sealer, valuesSealed ? values : undefined),
    guards: new GuardStore(opts.store, docs),
  };
}
