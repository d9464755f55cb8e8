/**
 * The one prompt every connector sends: the task, the pulled shared context (global and session)
 * and the session's recent messages, so the agents on the bus really share one context.
 * Bounded: each context and each message is cut at a size limit, with a note saying so.
 */
import type { JsonValue } from '../../protocol/json.js';
import type { ConnectorTask, ContextView, SessionTurn } from './types.js';

export interface PromptOptions {
  /** Replaces the default system prompt. */
  system?: string;
  /** Largest JSON text of one context document. Default 24 000 characters. */
  maxContextChars?: number;
  /** Largest text of one earlier message. Default 2 000 characters. */
  maxTurnChars?: number;
  /** Most earlier messages included (the newest). Default 20. */
  maxTurns?: number;
}

export interface BuiltPrompt {
  /** Instructions (the system message where the API has one). */
  system: string;
  /** The task with its context (the user message). */
  user: string;
}

export function defaultSystemPrompt(task: Pick<ConnectorTask, 'agentId' | 'from'>): string {
  return [
    `You are ${task.agentId}, an AI agent connected to the Skynet Linker coordination bus.`,
    `Agent ${task.from} sent you the task below. The shared context and the recent messages of the session are what the agents working with you know: use them where they help.`,
    `Answer the task itself; your answer is sent back to ${task.from} as a reply.`,
  ].join(' ');
}

function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}\n[... cut: ${text.length - max} more characters]`;
}

function asText(content: JsonValue): string {
  return typeof content === 'string' ? content : JSON.stringify(content, null, 2);
}

/** An earlier message's text: a connector reply shows its answer, a failed reply its error. */
function turnText(content: JsonValue): string {
  if (typeof content === 'object' && content !== null && !Array.isArray(content)) {
    if (content.failed === true) return `(failed) ${typeof content.error === 'string' ? content.error : JSON.stringify(content.error ?? null)}`;
    if (typeof content.content === 'string' && typeof content.connector === 'string') return content.content;
  }
  return asText(content);
}

function contextSection(title: string, view: ContextView | null, max: number): string | null {
  if (!view || Object.keys(view.data).length === 0) return null;
  return `## ${title} (scope ${view.scope}, version ${view.version})\n\`\`\`json\n${clip(JSON.stringify(view.data, null, 2), max)}\n\`\`\``;
}

function turnLine(turn: SessionTurn, max: number): string {
  const head = `- ${turn.timestamp} ${turn.from} -> ${turn.to ?? '(channel)'} [${turn.type}]`;
  if (turn.content === undefined) return `${head} (content not available to this agent)`;
  const body = clip(turnText(turn.content), max).replace(/\n/g, '\n  ');
  return `${head}:\n  ${body}`;
}

/** Builds the system and user messages for a task. Every connector uses this. */
export function buildPrompt(task: ConnectorTask, opts: PromptOptions = {}): BuiltPrompt {
  const maxContext = opts.maxContextChars ?? 24_000;
  const maxTurn = opts.maxTurnChars ?? 2_000;
  const maxTurns = opts.maxTurns ?? 20;
  const sections: string[] = [];
  const global = contextSection('Shared context', task.context.global, maxContext);
  if (global) sections.push(global);
  const session = contextSection(`Session context${task.sessionId ? ` of ${task.sessionId}` : ''}`, task.context.session, maxContext);
  if (session) sections.push(session);
  const turns = task.history.slice(-maxTurns);
  if (turns.length > 0) {
    const skipped = task.history.length - turns.length;
    sections.push(
      `## Recent messages of session ${task.sessionId ?? ''} (oldest first${skipped > 0 ? `; ${skipped} older not shown` : ''})\n${turns.map((t) => turnLine(t, maxTurn)).join('\n')}`,
    );
  }
  sections.push(`## Task from ${task.from}${task.sessionId ? ` in session ${task.sessionId}` : ''} (message ${task.id})\n${asText(task.content)}`);
  return { system: opts.system ?? defaultSystemPrompt(task), user: sections.join('\n\n') };
}

/** The prompt as one text (for programs that take a single prompt). */
export function promptText(prompt: BuiltPrompt): string {
  return `${prompt.system}\n\n${prompt.user}`;
}

/** A task with no shared context and no history: for direct use and tests. */
export function simpleTask(content: JsonValue, extra: Partial<ConnectorTask> = {}): ConnectorTask {
  return {
    id: extra.id ?? globalThis.crypto.randomUUID(),
    from: extra.from ?? 'user',
    agentId: extra.agentId ?? 'connector',
    content,
    sessionId: extra.sessionId ?? null,
    context: extra.context ?? { global: null, session: null },
    history: extra.history ?? [],
    ...(extra.signal ? { signal: extra.signal } : {}),
  };
}
