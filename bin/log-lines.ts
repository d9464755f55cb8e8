/**
 * `serve`'s log on a terminal: one readable line per pino record instead of JSON, so the
 * walkthrough's Terminal 1 is a live view (agents connecting and leaving, and with --verbose each
 * routed message). Anywhere else the log stays pino's JSON lines, for collectors.
 */

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields that are pino's own or already said by the line. */
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'event', 'node', 'err']);

function clock(ms: unknown): string {
  const d = typeof ms === 'number' ? new Date(ms) : new Date();
  return d.toTimeString().slice(0, 8);
}

/** One readable line for one pino record (a parsed JSON object). */
export function readableLine(rec: Record<string, unknown>): string {
  const at = clock(rec.time);
  const level = typeof rec.level === 'number' ? rec.level : 30;
  switch (rec.event) {
    case 'agent_online':
      return `${at} ${String(rec.agent_id)} connected`;
    case 'agent_offline':
      return `${at} ${String(rec.agent_id)} disconnected`;
    case 'message_routed': {
      const n = Number(rec.recipients);
      return `${at} ${String(rec.agent_id)} sent ${String(rec.type)} ${String(rec.message_id)} to ${n} recipient${n === 1 ? '' : 's'}`;
    }
  }
  const fields = Object.entries(rec)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const err = rec.err as { message?: string } | undefined;
  if (err?.message) fields.push(`error=${JSON.stringify(err.message)}`);
  const tag = level >= 40 ? `${LEVEL_NAMES[level] ?? level} ` : '';
  const what = [rec.msg, rec.event && rec.event !== rec.msg ? `(${String(rec.event)})` : ''].filter(Boolean).join(' ');
  return `${at} ${tag}${what}${fields.length ? ` ${fields.join(' ')}` : ''}`;
}

/** A pino destination writing readable lines through `write`. */
export function readableLogLines(write: (text: string) => void): { write(chunk: string): void } {
  return {
    write(chunk: string) {
      for (const json of chunk.split('\n')) {
        if (!json) continue;
        try {
          write(`${readableLine(JSON.parse(json) as Record<string, unknown>)}\n`);
        } catch {
          write(`${json}\n`);
        }
      }
    },
  };
}
