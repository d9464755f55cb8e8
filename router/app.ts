/** The hub's router: one sub-router per procedure group. Clients import only `type AppRouter`. */
import { adminRouter, healthProcedure } from '../procedures/admin.js';
import { agentsRouter } from '../procedures/agents.js';
import { authRouter } from '../procedures/auth.js';
import { channelsRouter } from '../procedures/channels.js';
import { contextRouter } from '../procedures/context.js';
import { guardsRouter } from '../procedures/guards.js';
import { messagesRouter } from '../procedures/messages.js';
import { monitorRouter } from '../procedures/monitor.js';
import { sessionsRouter } from '../procedures/sessions.js';
import { router } from './trpc.js';

export const appRouter = router({
  health: healthProcedure,
  auth: authRouter,
  messages: messagesRouter,
  channels: channelsRouter,
  context: contextRouter,
  sessions: sessionsRouter,
  agents: agentsRouter,
  monitor: monitorRouter,
  admin: adminRouter,
  guards: guardsRouter,
});

export type AppRouter = typeof appRouter;
