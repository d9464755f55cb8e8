/**
 * CLI errors and exit codes. Every failure prints one line on stderr (no stack trace unless
 * --verbose or DEBUG is set) and exits with a documented code.
 */
import { TRPCClientError } from '@trpc/client';

export const EXIT_CODES = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  AUTH: 3,
  NOT_FOUND: 4,
  UNREACHABLE: 5,
  TIMEOUT: 6,
  CONFLICT: 7,
  /** `send --wait-reply`: the reply came, and says the task failed (`{ "failed": true, ... }`). */
  REPLY_FAILED: 8,
  /** Ctrl-C (SIGINT) or SIGTERM stopped a command that was waiting (128 + SIGINT, as shells do). */
  INTERRUPTED: 130,
} as const;
export type ExitKind = keyof typeof EXIT_CODES;

export class CliError extends Error {
  constructor(
    readonly kind: ExitKind,
    message: string,
  ) {
    super(message);
  }
}

/** Maps any error to an exit kind and a one-line message. */
export function describeError(err: unknown): { kind: ExitKind; message: string } {
  if (err instanceof CliError) return { kind: err.kind, message: err.message };
  if (err instanceof TRPCClientError) {
    const code = (err.data as { code?: string } | undefined)?.code;
    const kind: ExitKind =
      code === 'UNAUTHORIZED' || code === 'FORBIDDEN'
        ? 'AUTH'
        : code === 'NOT_FOUND'
          ? 'NOT_FOUND'
          : code === 'BAD_REQUEST' || code === 'PAYLOAD_TOO_LARGE' || code === 'PARSE_ERROR'
            ? 'USAGE'
            : code === 'CONFLICT'
              ? 'CONFLICT'
              : code === 'SERVICE_UNAVAILABLE'
                ? 'UNREACHABLE'
                : code === 'TIMEOUT'
                  ? 'TIMEOUT'
                  : 'ERROR';
    return { kind, message: `${code ? `${code}: ` : ''}${firstLine(err.message)}` };
  }
  return { kind: 'ERROR', message: err instanceof Error ? firstLine(err.message) : String(err) };
}

function firstLine(text: string): string {
  // zod errors arrive as JSON arrays of issues: say the first one plainly.
  try {
    const issues = JSON.parse(text) as { path?: (string | number)[]; message?: string }[];
    if (Array.isArray(issues) && issues[0]?.message) {
      return `${issues[0].path?.length ? issues[0].path.join('.') + ': ' : ''}${issues[0].message}`;
    }
  } catch {
    // not JSON
  }
  return text.split('\n')[0] ?? text;
}
