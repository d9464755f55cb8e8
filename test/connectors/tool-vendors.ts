/**
 * Vendor stand-ins that answer with tool calls, in each vendor's real shape: OpenAI Chat
 * Completions `tool_calls`, Anthropic Messages `tool_use` blocks, Gemini `functionCall` parts;
 * and readers for what the connector sent back (`tool` messages, `tool_result` blocks,
 * `functionResponse` parts). A scripted model decides each turn from the request it got.
 */
import type { ServerResponse } from 'node:http';
import { anthropicConnector } from '../../clients/connectors/anthropic.js';
import { geminiConnector } from '../../clients/connectors/gemini.js';
import { openaiConnector } from '../../clients/connectors/openai.js';
import type { ConnectorDefinition } from '../../clients/connectors/types.js';
import { sendJson, startFakeVendor, type FakeVendor, type RecordedRequest } from './fake-vendor.js';

export const KEY = 'test-key-0123456789';

export interface ToolCall {
  name: string;
  args: Record<string, unknown>;
}

/** What the scripted model does on one turn: call tools, or answer in text. */
export type Turn = { calls: ToolCall[] } | { text: string };

export interface ToolVendor {
  name: 'openai' | 'anthropic' | 'gemini';
  def: ConnectorDefinition;
  baseUrl(url: string): string;
  /** The prompt text of the first user turn. */
  promptOf(req: RecordedRequest): string;
  /** Names of the tools the request declares. */
  toolNames(req: RecordedRequest): string[];
  /** The declared JSON Schema of one tool's arguments. */
  toolSchema(req: RecordedRequest, name: string): Record<string, any> | undefined;
  /** The tool results the connector sent back in this request (latest turn), as text. */
  toolResults(req: RecordedRequest): string[];
  respond(res: ServerResponse, turn: Turn, index: number): void;
}

const usage = { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 };

export const TOOL_VENDORS: ToolVendor[] = [
  {
    name: 'openai',
    def: openaiConnector,
    baseUrl: (url) => `${url}/v1`,
    promptOf: (req) => String(req.body.messages.find((m: { role: string }) => m.role === 'user')?.content ?? ''),
    toolNames: (req) => (req.body.tools ?? []).map((t: { function: { name: string } }) => t.function.name),
    toolSchema: (req, name) => (req.body.tools ?? []).find((t: { function: { name: string } }) => t.function.name === name)?.function.parameters,
    toolResults(req) {
      const messages = req.body.messages as { role: string; content: string }[];
      const out: string[] = [];
      for (let i = messages.length - 1; i >= 0 && messages[i]!.role === 'tool'; i--) out.unshift(messages[i]!.content);
      return out;
    },
    respond(res, turn, index) {
      const message =
        'text' in turn
          ? { role: 'assistant', content: turn.text, refusal: null, annotations: [] }
          : {
              role: 'assistant',
              content: null,
              refusal: null,
              annotations: [],
              tool_calls: turn.calls.map((c, i) => ({
                id: `call_${index}_${i}`,
                type: 'function',
                function: { name: c.name, arguments: JSON.stringify(c.args) },
              })),
            };
      sendJson(res, 200, {
        id: `chatcmpl-${index}`,
        object: 'chat.completion',
        created: 1741570283,
        model: 'gpt-5-mini-2025-08-07',
        choices: [{ index: 0, message, logprobs: null, finish_reason: 'text' in turn ? 'stop' : 'tool_calls' }],
        usage,
        service_tier: 'default',
        system_fingerprint: null,
      });
    },
  },
  {
    name: 'anthropic',
    def: anthropicConnector,
    baseUrl: (url) => url,
    promptOf: (req) => String(req.body.messages[0]?.content ?? ''),
    toolNames: (req) => (req.body.tools ?? []).map((t: { name: string }) => t.name),
    toolSchema: (req, name) => (req.body.tools ?? []).find((t: { name: string }) => t.name === name)?.input_schema,
    toolResults(req) {
      const last = req.body.messages.at(-1) as { role: string; content: unknown };
      if (last.role !== 'user' || !Array.isArray(last.content)) return [];
      return (last.content as { type: string; content: string }[]).filter((b) => b.type === 'tool_result').map((b) => b.content);
    },
    respond(res, turn, index) {
      const content =
        'text' in turn
          ? [{ type: 'text', text: turn.text }]
          : turn.calls.map((c, i) => ({ type: 'tool_use', id: `toolu_${index}_${i}`, name: c.name, input: c.args }));
      sendJson(res, 200, {
        id: `msg_${index}`,
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-6',
        content,
        stop_reason: 'text' in turn ? 'end_turn' : 'tool_use',
        stop_sequence: null,
        usage: { input_tokens: 120, output_tokens: 30 },
      });
    },
  },
  {
    name: 'gemini',
    def: geminiConnector,
    baseUrl: (url) => url,
    promptOf: (req) => String(req.body.contents[0]?.parts?.[0]?.text ?? ''),
    toolNames: (req) => (req.body.tools ?? []).flatMap((t: { functionDeclarations: { name: string }[] }) => t.functionDeclarations.map((d) => d.name)),
    toolSchema: (req, name) =>
      (req.body.tools ?? [])
        .flatMap((t: { functionDeclarations: { name: string; parametersJsonSchema: unknown }[] }) => t.functionDeclarations)
        .find((d: { name: string }) => d.name === name)?.parametersJsonSchema,
    toolResults(req) {
      const last = req.body.contents.at(-1) as { role: string; parts: { functionResponse?: { response: { output?: unknown; error?: string } } }[] };
      return last.parts
        .filter((p) => p.functionResponse)
        .map((p) => {
          const r = p.functionResponse!.response;
          return r.error !== undefined ? `error: ${r.error}` : JSON.stringify(r.output);
        });
    },
    respond(res, turn) {
      const parts = 'text' in turn ? [{ text: turn.text }] : turn.calls.map((c) => ({ functionCall: { name: c.name, args: c.args } }));
      sendJson(res, 200, {
        candidates: [{ content: { parts, role: 'model' }, finishReason: 'STOP', index: 0 }],
        usageMetadata: { promptTokenCount: 120, candidatesTokenCount: 30, totalTokenCount: 150 },
        modelVersion: 'gemini-2.5-flash',
        responseId: 'resp',
      });
    },
  },
];

/** A vendor stand-in whose model plays `script`: given the request (and its index), what to do. */
export function startScriptedModel(vendor: ToolVendor, script: (req: RecordedRequest, index: number) => Turn): Promise<FakeVendor> {
  return startFakeVendor((req, res, index) => {
    try {
      vendor.respond(res, script(req, index), index);
    } catch (err) {
      sendJson(res, 500, { error: { message: `stand-in script failed: ${(err as Error).message}` } });
    }
  });
}

export function connectorEnv(vendor: ToolVendor, url: string): Record<string, string> {
  const names = vendor.def.env!;
  return { [names.apiKey]: KEY, [names.baseUrl]: vendor.baseUrl(url) };
}
