/** Shared contexts over scopes `global`, `agent:<id>`, `session:<id>`, merged and versioned. */
import type { JsonObject } from '../protocol/json.js';
import type { ContextDocument } from '../protocol/records.js';
import { keys } from './keys.js';
import { mergeContext } from './merge.js';
import type { VersionedDocs } from './versioned.js';

interface StoredContext {
  data: JsonObject;
  updated_by: string | null;
  updated_at: string | null;
}

export class ContextStore {
  constructor(private readonly docs: VersionedDocs) {}

  async pull(scope: string): Promise<ContextDocument> {
    const doc = await this.docs.read<StoredContext>(keys.context(scope));
    if (!doc) return { scope, version: 0, data: {}, updated_by: null, updated_at: null };
    return { scope, version: doc.version, ...doc.value };
  }

  /** Merges `patch` into the scope; a compare-and-set when `expectedVersion` is given. */
  async push(scope: string, patch: JsonObject, by: string, opts: { expectedVersion?: number | undefined; now?: Date } = {}): Promise<ContextDocument> {
    const at = (opts.now ?? new Date()).toISOString();
    const result = await this.docs.update<StoredContext>(
      keys.context(scope),
      (current) => ({ data: mergeContext(current?.data ?? {}, patch), updated_by: by, updated_at: at }),
      { expectedVersion: opts.expectedVersion },
    );
    return { scope, version: result.version, ...result.value };
  }
}
