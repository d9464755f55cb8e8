/** Human output: the seed's monitor line and agent list line, and relative times. */
import type { Envelope } from '../protocol/envelope.js';
import type { AgentStatus } from '../protocol/records.js';

function clock(iso: string): string {
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function preview(envelope: Envelope, max = 80): string {
  if (envelope.encrypted) return '[encrypted]';
  const c = envelope.payload.content;
  const text = typeof c === 'string' ? c : JSON.stringify(c);
  const cut = text.length > max ? `${text.slice(0, max - 1)}…` : text;
  return JSON.stringify(cut);
}

/**
 * `[12:34:56] claude_cli → gemini: task "Recherche XYZ"` (channel messages show `#channel`);
 * `withId` adds the message id, which answering by hand needs (`send --reply-to <id>`).
 */
export function messageLine(envelope: Envelope, opts: { withId?: boolean } = {}): string {
  const to = envelope.to_agent ?? `#${envelope.channel ?? '?'}`;
  return `[${clock(envelope.timestamp)}] ${envelope.from_agent} → ${to}: ${envelope.type} ${preview(envelope)}${opts.withId ? ` (id ${envelope.id})` : ''}`;
}

export function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** `- claude_cli (planner) - online` / `- gpt4 (coder) - offline (last seen: 5m ago)`. */
export function agentLine(a: AgentStatus, now = Date.now()): string {
  const state = a.online ? 'online' : a.last_seen ? `offline (last seen: ${ago(a.last_seen, now)})` : 'offline (never seen)';
  return `- ${a.agent_id} (${a.agent_type}) - ${state}`;
}
