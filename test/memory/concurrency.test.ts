/**
 * Many writers pushing to one context scope at once lose nothing: 20 writers × 50 facts, each push
 * adding one fact to `shared_knowledge.facts`. On Redis every writer has its own connection (its
 * own RedisStore on the same prefix), as separate hub nodes would.
 */
import { describe, expect, it } from 'vitest';
import { createSharedMemory } from '../../memory/index.js';
import { storeKinds } from '../setup/stores.js';

const WRITERS = 20;
const FACTS_PER_WRITER = 50;

describe.each(storeKinds)('concurrent context pushes on the $name store', (kind) => {
  it(`${WRITERS} writers × ${FACTS_PER_WRITER} facts: every fact kept, every version distinct`, async () => {
    const store = kind.make();
    const writers = Array.from({ length: WRITERS }, () => createSharedMemory({ store: kind.peer(store) }));

    const versions = await Promise.all(
      writers.map(async (memory, w) => {
        const mine: number[] = [];
        for (let i = 0; i < FACTS_PER_WRITER; i++) {
          const doc = await memory.contexts.push('global', { shared_knowledge: { facts: [`w${w}-f${i}`] } }, `writer-${w}`);
          mine.push(doc.version);
        }
        return mine;
      }),
    );

    const total = WRITERS * FACTS_PER_WRITER;
    const all = versions.flat();
    expect(all).toHaveLength(total);
    expect(new Set(all).size).toBe(total);
    expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    // Each writer's own pushes were applied in its order.
    for (const mine of versions) for (let i = 1; i < mine.length; i++) expect(mine[i]).toBeGreaterThan(mine[i - 1]!);

    const final = await createSharedMemory({ store }).contexts.pull('global');
    expect(final.version).toBe(total);
    const facts = (final.data.shared_knowledge as { facts: string[] }).facts;
    expect(facts).toHaveLength(total);
    const expected = new Set(Array.from({ length: WRITERS }, (_, w) => Array.from({ length: FACTS_PER_WRITER }, (_, i) => `w${w}-f${i}`)).flat());
    expect(new Set(facts)).toEqual(expected);
  });
});
