/**
 * Wire types of the shared memory (context documents, sessions, agent records) and the hub's
 * error type. Values follow the seed's examples (context_manager.py, session_manager.py).
 */
import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import {
  AckSchema,
  AgentRecordSchema,
  AgentStatusSchema,
  AgentTypeSchema,
  ContextDocumentSchema,
  ContextPushSchema,
  ContextScopeSchema,
  PublicKeysSchema,
  SESSION_STATUSES,
  SessionSchema,
  SessionStatusSchema,
} from '../../protocol/records.js';
import { ERROR_CODES, LinkerError, isLinkerError } from '../../protocol/errors.js';

/** Messages of a failed parse, formatted by zod (`✖ message\n  → at path`). */
function zodError(schema: z.ZodType, value: unknown): string {
  const result = schema.safeParse(value);
  if (result.success) throw new Error(`expected ${JSON.stringify(value).slice(0, 200)} to be refused`);
  return z.prettifyError(result.error);
}

const SCOPE_MESSAGE = 'scope must be "global", "agent:<agent id>" or "session:<session id>"';

describe('ContextScopeSchema', () => {
  it('accepts global, agent:<id> and session:<id>', () => {
    for (const scope of [
      'global',
      'agent:claude_cli',
      'agent:gemini',
      'session:sess_123',
      'session:415b269d-4ec2-4584-85ac-73bd551aa931',
      'agent:team.research:gemini-2',
      `agent:${'a'.repeat(128)}`,
      `session:${'s'.repeat(128)}`,
    ]) {
      expect(ContextScopeSchema.safeParse(scope).success, scope).toBe(true);
    }
  });

  it('refuses anything else with a message naming the three forms', () => {
    for (const scope of [
      '',
      'Global',
      'global ',
      ' global',
      'globals',
      'agent:',
      'session:',
      'agent',
      'agents:claude_cli',
      'user:claude_cli',
      'channel:skynet_core',
      'agent:claude cli',
      'agent:team/gemini',
      'session:sess_123\n',
      'agent:café',
      `agent:${'a'.repeat(129)}`,
      `session:${'s'.repeat(129)}`,
    ]) {
      expect(zodError(ContextScopeSchema, scope), JSON.stringify(scope)).toContain(`✖ ${SCOPE_MESSAGE}`);
    }
  });

  it('refuses a non-string', () => {
    expect(zodError(ContextScopeSchema, 5)).toContain('expected string');
    expect(ContextScopeSchema.safeParse(null).success).toBe(false);
  });
});

describe('ContextDocumentSchema and ContextPushSchema', () => {
  // The seed's context_manager.py document, as the hub stores it.
  const doc = {
    scope: 'global',
    version: 3,
    data: {
      global_summary: 'État actuel de la tâche globale',
      last_user_intent: "Ce que l'utilisateur a demandé",
      shared_knowledge: { facts: ['RAG = retrieval-augmented generation'], decisions: [] },
    },
    updated_by: 'claude_cli',
    updated_at: '2025-11-19T12:34:56Z',
  };

  it('accepts the seed context document, and an empty one', () => {
    expect(ContextDocumentSchema.parse(doc)).toEqual(doc);
    expect(ContextDocumentSchema.safeParse({ scope: 'agent:gemini', version: 0, data: {}, updated_by: null, updated_at: null }).success).toBe(true);
  });

  it('refuses a bad version, a bad scope, non-JSON data and unknown fields', () => {
    expect(zodError(ContextDocumentSchema, { ...doc, version: -1 })).toContain('→ at version');
    expect(zodError(ContextDocumentSchema, { ...doc, version: 1.5 })).toContain('→ at version');
    expect(zodError(ContextDocumentSchema, { ...doc, scope: 'everyone' })).toBe(`✖ ${SCOPE_MESSAGE}\n  → at scope`);
    expect(zodError(ContextDocumentSchema, { ...doc, data: { when: new Date() } })).toContain('→ at data.when');
    expect(zodError(ContextDocumentSchema, { ...doc, owner: 'x' })).toContain('Unrecognized key: "owner"');
    expect(zodError(ContextDocumentSchema, { ...doc, updated_at: 'hier' })).toBe('✖ must be an ISO 8601 timestamp\n  → at updated_at');
  });

  it('a push needs a JSON object patch; expected_version is optional', () => {
    expect(ContextPushSchema.safeParse({ scope: 'global', patch: { last_intent: 'Recherche papiers récents' } }).success).toBe(true);
    expect(ContextPushSchema.safeParse({ scope: 'session:sess_123', patch: {}, expected_version: 0 }).success).toBe(true);
    expect(zodError(ContextPushSchema, { scope: 'global', patch: [1, 2] })).toBe('✖ patch must be a JSON object\n  → at patch');
    expect(zodError(ContextPushSchema, { scope: 'global', patch: 'x' })).toBe('✖ patch must be a JSON object\n  → at patch');
    expect(zodError(ContextPushSchema, { scope: 'global', patch: {}, expected_version: -1 })).toContain('→ at expected_version');
    expect(zodError(ContextPushSchema, { scope: 'global', patch: {}, force: true })).toContain('Unrecognized key: "force"');
  });
});

describe('SessionSchema', () => {
  // The seed's session_manager.py session, with the messages of steps 3 and 6.
  const session = {
    session_id: 'sess_123',
    participants: ['claude_cli', 'gemini'],
    created_by: 'claude_cli',
    created_at: '2025-11-19T12:34:00Z',
    updated_at: '2025-11-19T12:35:12.000Z',
    status: 'active',
    metadata: { goal: 'Analyser et générer rapport', deadline: '2025-11-20T18:00:00+01:00', tags: ['rag'] },
    messages: [
      { message_id: '831f13bf-a851-4ea6-ade4-11875074c289', from: 'claude_cli', to: 'gemini', type: 'task', timestamp: '2025-11-19T12:34:56.000Z' },
      { message_id: 'a9f79ecc-d2ff-4289-8729-9e1c6c8ad348', from: 'gemini', to: 'claude_cli', type: 'reply', timestamp: '2025-11-19T12:35:12.000Z' },
    ],
  };

  it('accepts the seed session, in every status', () => {
    expect(SessionSchema.parse(session)).toEqual(session);
    expect(SESSION_STATUSES).toEqual(['active', 'paused', 'completed']);
    for (const status of SESSION_STATUSES) expect(SessionSchema.safeParse({ ...session, status }).success).toBe(true);
    // A broadcast in a session has no recipient; metadata may be empty.
    const broadcast = { message_id: 'm1', from: 'gemini', to: null, type: 'broadcast', timestamp: '2025-11-19T12:36:00Z' };
    expect(SessionSchema.safeParse({ ...session, metadata: {}, messages: [broadcast] }).success).toBe(true);
  });

  it('refuses an unknown status with the list of statuses', () => {
    expect(zodError(SessionStatusSchema, 'archived')).toBe('✖ status must be one of active, paused, completed');
    expect(zodError(SessionSchema, { ...session, status: 'closed' })).toBe('✖ status must be one of active, paused, completed\n  → at status');
  });

  it('refuses bad ids, bad timestamps, bad metadata and unknown fields', () => {
    expect(zodError(SessionSchema, { ...session, session_id: 'sess 123' })).toBe(
      '✖ session id may only contain letters, digits and _ . : -\n  → at session_id',
    );
    expect(zodError(SessionSchema, { ...session, participants: ['claude_cli', ''] })).toContain('agent id must not be empty\n  → at participants[1]');
    expect(zodError(SessionSchema, { ...session, created_at: '19/11/2025' })).toBe('✖ must be an ISO 8601 timestamp\n  → at created_at');
    expect(zodError(SessionSchema, { ...session, metadata: { deadline: 'demain' } })).toBe('✖ must be an ISO 8601 timestamp\n  → at metadata.deadline');
    expect(zodError(SessionSchema, { ...session, metadata: { goal: 'x'.repeat(10_001) } })).toContain('→ at metadata.goal');
    expect(zodError(SessionSchema, { ...session, owner: 'x' })).toContain('Unrecognized key: "owner"');
    const [first] = session.messages;
    expect(zodError(SessionSchema, { ...session, messages: [{ ...first, body: 'x' }] })).toContain('Unrecognized key: "body"');
    expect(zodError(SessionSchema, { ...session, messages: [{ ...first, type: 'ping' }] })).toBe(
      '✖ type must be one of task, reply, context_update, broadcast, heartbeat\n  → at messages[0].type',
    );
  });
});

describe('AgentRecordSchema and AgentStatusSchema', () => {
  const record = {
    agent_id: 'gemini',
    agent_type: 'researcher',
    metadata: { model: 'gemini-2.5-pro', connector: 'gemini' },
    public_keys: { box: 'A'.repeat(43) + '=', sign: 'B'.repeat(43) + '=' },
    created_at: '2025-11-19T12:30:00Z',
    last_seen: '2025-11-19T12:35:12.000Z',
  };
  const status = { ...record, online: true, connected_since: '2025-11-19T12:30:05Z' };

  it('a status is a record plus online and connected_since', () => {
    expect(AgentRecordSchema.parse(record)).toEqual(record);
    expect(AgentStatusSchema.parse(status)).toEqual(status);
    const offline = { ...record, public_keys: {}, last_seen: null, online: false, connected_since: null };
    expect(AgentStatusSchema.safeParse(offline).success).toBe(true);
  });

  it('both are strict: a record has no presence fields, a status needs them', () => {
    expect(zodError(AgentRecordSchema, status)).toBe('✖ Unrecognized keys: "online", "connected_since"');
    expect(zodError(AgentStatusSchema, { ...status, password: 'x' })).toContain('Unrecognized key: "password"');
    expect(zodError(AgentStatusSchema, record)).toContain('→ at online');
    expect(zodError(AgentStatusSchema, { ...status, online: 'yes' })).toContain('→ at online');
    expect(zodError(AgentStatusSchema, { ...status, connected_since: 'now' })).toBe('✖ must be an ISO 8601 timestamp\n  → at connected_since');
  });

  it('checks the agent id, the agent type and the public keys with clear messages', () => {
    expect(zodError(AgentStatusSchema, { ...status, agent_id: 'gemini pro' })).toBe('✖ agent id may only contain letters, digits and _ . : -\n  → at agent_id');
    expect(zodError(AgentTypeSchema, '')).toContain('agent type must not be empty');
    expect(zodError(AgentTypeSchema, 'p'.repeat(65))).toBe('✖ agent type must be at most 64 characters');
    expect(zodError(AgentStatusSchema, { ...status, agent_type: 'res/earcher' })).toBe(
      '✖ agent type may only contain letters, digits and _ . : -\n  → at agent_type',
    );
    expect(zodError(PublicKeysSchema, { box: 'abc' })).toBe('✖ box key must be 32 bytes in base64\n  → at box');
    expect(zodError(AgentStatusSchema, { ...status, public_keys: { sign: 'A'.repeat(44) } })).toBe(
      '✖ sign key must be 32 bytes in base64\n  → at public_keys.sign',
    );
    expect(zodError(PublicKeysSchema, { ed25519: 'x' })).toContain('Unrecognized key: "ed25519"');
  });
});

describe('AckSchema', () => {
  it('names the message, the agent and the time', () => {
    const ack = { message_id: '831f13bf-a851-4ea6-ade4-11875074c289', by: 'gemini', at: '2025-11-19T12:34:57Z' };
    expect(AckSchema.parse(ack)).toEqual(ack);
    expect(zodError(AckSchema, { ...ack, by: '' })).toContain('agent id must not be empty\n  → at by');
    expect(zodError(AckSchema, { ...ack, extra: 1 })).toContain('Unrecognized key: "extra"');
  });
});

describe('LinkerError', () => {
  it('carries a code, a message, details and a cause', () => {
    const cause = new Error('WATCH failed');
    const error = new LinkerError('CONFLICT', 'context global is at version 4, not 3', { current_version: 4 }, { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(LinkerError);
    expect(error.name).toBe('LinkerError');
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toBe('context global is at version 4, not 3');
    expect(error.details).toEqual({ current_version: 4 });
    expect(error.cause).toBe(cause);
    expect(String(error)).toBe('LinkerError: context global is at version 4, not 3');
    expect(error.stack).toContain('LinkerError');
  });

  it('details are optional', () => {
    const error = new LinkerError('NOT_FOUND', 'no session sess_404');
    expect(error.details).toBeUndefined();
    expect(error.cause).toBeUndefined();
  });

  it('isLinkerError tells a LinkerError from other errors', () => {
    expect(isLinkerError(new LinkerError('TIMEOUT', 'no reply within 30s'))).toBe(true);
    expect(isLinkerError(new Error('boom'))).toBe(false);
    expect(isLinkerError({ code: 'CONFLICT', message: 'look-alike' })).toBe(false);
    expect(isLinkerError(undefined)).toBe(false);
  });

  it('every error code is a stable string equal to its name', () => {
    for (const [name, code] of Object.entries(ERROR_CODES)) expect(code).toBe(name);
    expect(Object.keys(ERROR_CODES)).toEqual(
      expect.arrayContaining(['BAD_REQUEST', 'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'CONFLICT', 'PAYLOAD_TOO_LARGE', 'TIMEOUT']),
    );
  });
});
