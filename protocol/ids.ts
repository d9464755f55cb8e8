/** Identifier rules shared by every wire type: agents, channels, sessions, message ids. */
import { z } from 'zod';

export const ID_PATTERN = /^[A-Za-z0-9_.:-]+$/;
export const ID_MAX_LENGTH = 128;

/** An identifier: 1-128 characters of `[A-Za-z0-9_.:-]`. `what` names it in error messages. */
export function idSchema(what: string) {
  return z
    .string({ error: `${what} must be a string` })
    .min(1, { error: `${what} must not be empty` })
    .max(ID_MAX_LENGTH, { error: `${what} must be at most ${ID_MAX_LENGTH} characters` })
    .regex(ID_PATTERN, { error: `${what} may only contain letters, digits and _ . : -` });
}

export const AgentIdSchema = idSchema('agent id');
export const ChannelNameSchema = idSchema('channel name');
export const SessionIdSchema = idSchema('session id');
export const MessageIdSchema = idSchema('message id');
export const TraceIdSchema = idSchema('trace id');

export const DEFAULT_CHANNEL = 'skynet_core';
