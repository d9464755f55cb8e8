/**
 * The shapes a panel or a service handles, named: what the hub's procedures return and what its
 * subscriptions yield, so users need not unwrap `inferRouterOutputs<AppRouter>` themselves. Types
 * only (nothing here exists at run time), taken from the router so they cannot drift from it.
 */
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { AppRouter } from '../router/app.js';

/** Every procedure's output, by path: `RouterOutputs['sessions']['show']`. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;
/** Every procedure's input, by path: `RouterInputs['messages']['send']`. */
export type RouterInputs = inferRouterInputs<AppRouter>;

/** What a subscription yields, whether or not tRPC wraps it in `{ id, data }` (tracked events). */
type Yielded<T> = T extends AsyncIterable<infer E> ? (E extends { id: string; data: infer D } ? D : E) : T;

/** One event of `monitor.stream`: `{ at, node, message, delivered_to }`. */
export type MonitorEvent = Yielded<RouterOutputs['monitor']['stream']>;
/** One event of `messages.inbox`: `{ stream_id, replayed, message, gap? }` (the delivered message). */
export type InboxEvent = Yielded<RouterOutputs['messages']['inbox']>;
/** One event of `channels.subscribe`. */
export type ChannelEvent = Yielded<RouterOutputs['channels']['subscribe']>;
/** What `messages.send` resolves with: `{ id, trace_id, timestamp, route, channel, delivered_to, stream_ids }`. */
export type SendReceipt = RouterOutputs['messages']['send'];
/** One page of `messages.history`. */
export type HistoryPage = RouterOutputs['messages']['history'];
/** What `agents.whoami` answers. */
export type WhoAmI = RouterOutputs['agents']['whoami'];
/** The input of `messages.send`. */
export type SendInput = RouterInputs['messages']['send'];
