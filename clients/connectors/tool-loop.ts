/**
 * What the connectors' function calling shares: the bus tools as a task offers them (definitions
 * with JSON Schema, a call that never throws, a bound on rounds), how a result is written back to
 * the model, and the failure when a model keeps calling tools past the bound.
 */
import type { ToolOutcome } from '../bus-tools/tools.js';
import { ConnectorError } from './types.js';

/** Rounds of tool calls per task before the answer fails (each round may hold several calls). */
export const DEFAULT_MAX_TOOL_ROUNDS = 8;

export interface ToolDefinition {
  name: string;
  description: string;
  /** JSON Schema (draft 2020-12) of the arguments: an object schema. */
  parameters: Record<string, unknown>;
}

/** The bus tools offered to the model while it answers one task. */
export interface TaskTools {
  definitions: readonly ToolDefinition[];
  /** Runs one call; a bad argument or a hub refusal is `{ ok: false, error }`, never a throw. */
  call(name: string, args: unknown): Promise<ToolOutcome>;
  maxRounds: number;
}

/** The text a tool result goes back to the model as. */
export function toolResultText(outcome: ToolOutcome): string {
  return outcome.ok ? JSON.stringify(outcome.result) : `error: ${outcome.error}`;
}

/** Arguments a vendor sent as a JSON string (OpenAI), parsed; a bad string is reported to the model, not thrown. */
export function parseToolArguments(text: unknown): { ok: true; value: unknown } | { ok: false; error: string } {
  if (typeof text !== 'string' || text.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, error: `the arguments are not valid JSON (${(err as Error).message})` };
  }
}

export function toolRoundsExceeded(vendor: string, maxRounds: number): ConnectorError {
  return new ConnectorError(`${vendor}: the model was still calling tools after ${maxRounds} rounds (the limit per task); no answer`, 'invalid_response');
}

/** Token counts summed over the rounds of one answer. */
export class UsageTotal {
  input = 0;
  output = 0;
  private seenInput = false;
  private seenOutput = false;
  add(input: unknown, output: unknown): void {
    if (typeof input === 'number') {
      this.input += input;
      this.seenInput = true;
    }
    if (typeof output === 'number') {
      this.output += output;
      this.seenOutput = true;
    }
  }
  fields(): { input_tokens?: number; output_tokens?: number } {
    return { ...(this.seenInput ? { input_tokens: this.input } : {}), ...(this.seenOutput ? { output_tokens: this.output } : {}) };
  }
}
