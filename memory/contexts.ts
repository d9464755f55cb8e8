/** Shared contexts over scopes `global`, `agent:<id>`, `session:<id>`, merged and versioned. */
import { LinkerError } from '../protocol/errors.js';
import { utf8Length, type JsonObject } from '../protocol/json.js';
import type { ContextDocument } from '../protocol/records.js';
import { corruptAs, ignoreCorruption, type CorruptionReporter } from './integrity.js';
import { keys } from './keys.js';
import { mergeContext } from './merge.js';
import type { VersionedDocs } from './versioned.js';

interface StoredContext {
  data: JsonObject;
  updated_by: string | null;
  updated_at: string | null;
}

export interface ContextLimits {
  /** Largest context document (its merged `data` as JSON), bytes. Default 1 MiB. */
  maxDocumentBytes: number;
  /** Pushes to one scope waiting on this node at once; past it TOO_MANY_REQUESTS. Default 1000. */
  maxQueuedPushes: number;
}

export const DEFAULT_CONTEXT_LIMITS: ContextLimits = { maxDocumentBytes: 1024 * 1024, maxQueuedPushes: 1000 };

export class ContextStore {
  /**
   * Pushes to one scope run one after the other on this node (a queue per scope): N pushes cost N
   * read-merge-writes. Racing them instead made each retry its compare-and-set against all the
   * others (quadratic: 1,000 pushes in one frame kept the hub busy for minutes). Writers on other
   * nodes still race through the versioned compare-and-set.
   */
  private readonly queues = new Map<string, { tail: Promise<unknown>; waiting: number }>();

  constructor(
    private readonly docs: VersionedDocs,
    readonly limits: ContextLimits = DEFAULT_CONTEXT_LIMITS,
    private readonly report: CorruptionReporter = ignoreCorruption,
  ) {}

  private corrupt(scope: string) {
    return corruptAs(this.report, 'context', scope, `an admin can reset it (skynet-linker context reset --scope ${scope})`);
  }

  private read(scope: string) {
    return this.docs.read<StoredContext>(keys.context(scope)).catch(this.corrupt(scope));
  }

  async pull(scope: string): Promise<ContextDocument> {
    const doc = await this.read(scope);
    if (!doc) return { scope, version: 0, data: {}, updated_by: null, updated_at: null };
    return { scope, version: doc.version, ...doc.value };
  }

  /**
   * Merges `patch` into the scope; a compare-and-set when `expectedVersion` is given. Waits its
   * turn behind the node's other pushes to the scope; if `signal` is aborted by then (the caller's
   * connection closed), it does nothing and rejects.
   */
  push(
    scope: string,
    patch: JsonObject,
    by: string,
    opts: { expectedVersion?: number | undefined; now?: Date; signal?: AbortSignal | undefined } = {},
  ): Promise<ContextDocument> {
    return this.serialized(scope, opts.signal, async () => {
      const at = (opts.now ?? new Date()).toISOString();
      const result = await this.docs
        .update<StoredContext>(
          keys.context(scope),
          (current) => {
            const data = mergeContext(current?.data ?? {}, patch);
            const bytes = utf8Length(JSON.stringify(data));
            if (bytes > this.limits.maxDocumentBytes) {
              throw new LinkerError(
                'PAYLOAD_TOO_LARGE',
                `context ${scope} would be ${bytes} bytes after this push, over the limit of ${this.limits.maxDocumentBytes} bytes (limits.max_context_bytes)`,
              );
            }
            return { data, updated_by: by, updated_at: at };
          },
          { expectedVersion: opts.expectedVersion },
        )
        // The current document did not open: it is not merged into.
        .catch(this.corrupt(scope));
      return { scope, version: result.version, ...result.value };
    });
  }

  /** Replaces the scope with an empty document at the next version (an admin's way out of a corrupt one). */
  reset(scope: string, by: string, now = new Date()): Promise<ContextDocument> {
    return this.serialized(scope, undefined, async () => {
      const value: StoredContext = { data: {}, updated_by: by, updated_at: now.toISOString() };
      const result = await this.docs.overwrite(keys.context(scope), value);
      return { scope, version: result.version, ...value };
    });
  }

  private serialized<T>(scope: string, signal: AbortSignal | undefined, job: () => Promise<T>): Promise<T> {
    let queue = this.queues.get(scope);
    if (!queue) {
      queue = { tail: Promise.resolve(), waiting: 0 };
      this.queues.set(scope, queue);
    }
    if (queue.waiting >= this.limits.maxQueuedPushes) {
      return Promise.reject(
        new LinkerError(
          'TOO_MANY_REQUESTS',
          `${queue.waiting} pushes to context ${scope} are already waiting on this hub (limit ${this.limits.maxQueuedPushes}); retry shortly`,
        ),
      );
    }
    const q = queue;
    q.waiting++;
    const run = q.tail.then(() => {
      if (signal?.aborted) throw new LinkerError('BAD_REQUEST', 'the connection that asked for this push closed before its turn: nothing was written');
      return job();
    });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    q.tail = settled;
    void settled.then(() => {
      q.waiting--;
      if (q.waiting === 0 && this.queues.get(scope) === q) this.queues.delete(scope);
    });
    return run;
  }
}
