/** admin.*: snapshots, at-rest key rotation. Token management lives in agents.add/remove/tokens. */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { adminProcedure, publicProcedure, router } from '../router/trpc.js';

export const adminRouter = router({
  snapshotCreate: adminProcedure.mutation(async ({ ctx }) => {
    const info = await ctx.hub.memory.snapshots.create();
    ctx.hub.logger.info({ event: 'snapshot_created', name: info.name, by: ctx.agent.id }, 'snapshot created');
    return info;
  }),
  snapshotList: adminProcedure.query(({ ctx }) => ctx.hub.memory.snapshots.list()),
  snapshotRestore: adminProcedure.input(z.strictObject({ name: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/) })).mutation(async ({ ctx, input }) => {
    await ctx.hub.memory.snapshots.restore(input.name);
    ctx.hub.logger.warn({ event: 'snapshot_restored', name: input.name, by: ctx.agent.id }, 'snapshot restored');
    return { restored: input.name };
  }),
  keysRotate: adminProcedure.mutation(async ({ ctx }) => {
    if (!ctx.hub.rotateKeys) throw new TRPCError({ code: 'PRECONDITION_FAILED', message: 'at-rest sealing is off on this hub: there are no keys to rotate' });
    const result = await ctx.hub.rotateKeys();
    ctx.hub.logger.warn({ event: 'keys_rotated', active_key_id: result.activeKeyId, by: ctx.agent.id }, 'at-rest key rotated');
    return result;
  }),
  keysStatus: adminProcedure.query(({ ctx }) => ({
    sealing: ctx.hub.memory.sealer.enabled,
    /** Each value sealed in the store; false on the embedded store, which seals its snapshot files (docs/security.md). */
    values_sealed: ctx.hub.memory.valuesSealed,
    store: ctx.hub.memory.store.kind,
  })),
});

export const healthProcedure = publicProcedure.query(async ({ ctx }) => {
  let storeOk = true;
  try {
    await ctx.hub.memory.store.ping();
  } catch {
    storeOk = false;
  }
  return {
    status: storeOk ? ('ok' as const) : ('degraded' as const),
    store: { kind: ctx.hub.memory.store.kind, reachable: storeOk },
    node: ctx.hub.bus.nodeId,
    sealing: ctx.hub.memory.sealer.enabled,
    auth: !ctx.hub.settings.insecureNoAuth,
  };
});
