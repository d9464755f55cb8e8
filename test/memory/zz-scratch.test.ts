import { it } from 'vitest';
import { createSharedMemory } from '../../memory/index.js';
import type { Store } from '../../memory/store.js';
import { makeRedisStore } from '../setup/stores.js';
it('measure', async () => {
  const base = makeRedisStore();
  let maxStreak = 0; let fails = 0;
  const writers = Array.from({ length: 20 }, () => {
    const s = makeRedisStore(base.prefix);
    let streak = 0;
    const orig = s.putDocIfVersion.bind(s);
    (s as Store).putDocIfVersion = async (k, v, val) => { const r = await orig(k, v, val); if (r.ok) streak = 0; else { streak++; fails++; maxStreak = Math.max(maxStreak, streak); } return r; };
    return createSharedMemory({ store: s });
  });
  const t = Date.now();
  await Promise.all(writers.map(async (m, w) => { for (let i = 0; i < 50; i++) await m.contexts.push('global', { shared_knowledge: { facts: [`w${w}-f${i}`] } }, 'x'); }));
  console.log('maxStreak', maxStreak, 'fails', fails, 'ms', Date.now() - t);
});
