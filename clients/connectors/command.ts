/**
 * `command`: runs any program once per task (e.g. `codex exec {prompt}`, `claude -p {prompt}`, a
 * script). No shell: the template is split into arguments here (quotes and backslashes as in a
 * shell, nothing expanded) and placeholders are substituted inside each argument, so a prompt is
 * always exactly one argument whatever it contains. Without `{prompt}` in the template the prompt
 * goes to stdin. stdout is the answer (bounded); stderr is kept (bounded) for the error message; a
 * non-zero exit is a failure; on timeout the program's process group gets SIGTERM, then SIGKILL.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { buildPrompt, promptText } from './prompt.js';
import { formatMs, oneLine } from './call.js';
import {
  ConnectorConfigError,
  ConnectorError,
  type Connector,
  type ConnectorDefinition,
  type ConnectorOptions,
  type ConnectorReply,
  type ConnectorTask,
} from './types.js';

export const DEFAULT_COMMAND_TIMEOUT_MS = 600_000;
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
export const DEFAULT_KILL_GRACE_MS = 2_000;
/** Linux refuses a single argument longer than this (MAX_ARG_STRLEN). */
const MAX_ARG_BYTES = 128 * 1024;
/** stderr kept for error messages (the end of it). */
const STDERR_KEEP_BYTES = 64 * 1024;
const STDERR_IN_MESSAGE_CHARS = 2_000;

export const PLACEHOLDERS = ['prompt', 'task', 'session_id', 'from', 'message_id', 'agent_id'] as const;
const PLACEHOLDER_RE = new RegExp(`\\{(${PLACEHOLDERS.join('|')})\\}`, 'g');

/** Splits a command template into arguments like a shell would, without expanding anything. */
export function splitTemplate(template: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!;
    if (quote === "'") {
      if (ch === "'") quote = null;
      else current += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === '\\' && (template[i + 1] === '"' || template[i + 1] === '\\')) current += template[++i];
      else current += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inArg = true;
    } else if (ch === '\\' && i + 1 < template.length) {
      current += template[++i];
      inArg = true;
    } else if (/\s/.test(ch)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += ch;
      inArg = true;
    }
  }
  if (quote) throw new ConnectorConfigError(`command: unterminated ${quote} quote in --exec template: ${template}`);
  if (inArg) args.push(current);
  return args;
}

/** Substitutes `{prompt}`, `{task}`, ... inside each argument (other braces are left alone). */
export function renderArgs(args: string[], vars: Record<(typeof PLACEHOLDERS)[number], string>): string[] {
  return args.map((a) => a.replace(PLACEHOLDER_RE, (_, name: (typeof PLACEHOLDERS)[number]) => vars[name]));
}

/** The executable `program` names, searched on PATH like execvp; null when there is none. */
export function findProgram(program: string, env: Record<string, string | undefined>, cwd: string): string | null {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (program.includes('/')) {
    const full = isAbsolute(program) ? program : resolve(cwd, program);
    return executable(full) ? full : null;
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const full = join(dir, program);
    if (executable(full)) return full;
  }
  return null;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    // The child leads its own process group (detached): this reaches what it started too.
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function stderrTail(chunks: Buffer[]): string {
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return '';
  return text.length > STDERR_IN_MESSAGE_CHARS ? `...${text.slice(-STDERR_IN_MESSAGE_CHARS)}` : text;
}

export interface CommandPreset {
  name: string;
  title: string;
  exec: string;
}

/** The `command` connector, or a preset of it (`codex`, `claude-cli`, `gemini-cli`) with its own default template. */
export function commandDefinition(preset: CommandPreset | null): ConnectorDefinition {
  const name = preset?.name ?? 'command';
  const def: ConnectorDefinition = {
    name,
    title: preset?.title ?? 'any program per task (--exec "<program> [args] {prompt}"; no {prompt}: prompt on stdin)',
    kind: 'command',
    ...(preset ? { defaultExec: preset.exec } : {}),
    create: async (options) => createCommandConnector(name, options.exec ?? preset?.exec, options),
  };
  return def;
}

export async function createCommandConnector(name: string, template: string | undefined, options: ConnectorOptions): Promise<Connector> {
  if (!template?.trim()) {
    throw new ConnectorConfigError(`${name}: no program to run: pass --exec '<program> [args] {prompt}' (or exec: under connectors.${name} in config.yaml)`);
  }
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const args = splitTemplate(template);
  const program = args[0];
  if (!program) throw new ConnectorConfigError(`${name}: the --exec template is empty`);
  if (new RegExp(PLACEHOLDER_RE.source).test(program)) throw new ConnectorConfigError(`${name}: the program itself cannot be a placeholder: ${template}`);
  const found = findProgram(program, env, cwd);
  if (!found) {
    throw new ConnectorConfigError(
      `${name}: program "${program}" ${program.includes('/') ? 'does not exist or is not executable' : 'not found on PATH'} (install it, or give its full path in --exec)`,
    );
  }
  const resolved: string = found;
  const input = options.input ?? (args.slice(1).some((a) => a.includes('{prompt}')) ? 'arg' : 'stdin');
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const maxOutput = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new ConnectorConfigError(`${name}: timeout must be a positive number of milliseconds`);
  if (!Number.isInteger(maxOutput) || maxOutput < 1) throw new ConnectorConfigError(`${name}: max output bytes must be a positive integer`);
  const running = new Set<ChildProcess>();
  const shown = `\`${oneLine(template, 120)}\``;

  function run(task: ConnectorTask): Promise<string> {
    const text = promptText(buildPrompt(task, { system: options.system }));
    const vars = {
      prompt: text,
      task: typeof task.content === 'string' ? task.content : JSON.stringify(task.content),
      session_id: task.sessionId ?? '',
      from: task.from,
      message_id: task.id,
      agent_id: task.agentId,
    };
    const argv = renderArgs(args, vars);
    const tooLong = argv.find((a) => Buffer.byteLength(a) > MAX_ARG_BYTES);
    if (tooLong !== undefined) {
      return Promise.reject(
        new ConnectorError(
          `${name}: an argument of ${shown} would be ${Buffer.byteLength(tooLong)} bytes, over the ${MAX_ARG_BYTES} bytes one argument may hold; pass the prompt on stdin instead (a template without {prompt})`,
          'config',
        ),
      );
    }
    const childEnv: Record<string, string | undefined> = {
      ...env,
      SKYNET_LINKER_TASK_ID: task.id,
      SKYNET_LINKER_FROM_AGENT: task.from,
      SKYNET_LINKER_AGENT_ID: task.agentId,
      SKYNET_LINKER_SESSION_ID: task.sessionId ?? '',
    };
    // The program answers a task; it does not get this agent's credentials.
    delete childEnv.SKYNET_LINKER_TOKEN;

    return new Promise<string>((resolvePromise, reject) => {
      const stdio: StdioOptions = [input === 'stdin' ? 'pipe' : 'ignore', 'pipe', 'pipe'];
      let child: ChildProcess;
      try {
        child = spawn(resolved, argv.slice(1), { cwd, env: childEnv as NodeJS.ProcessEnv, stdio, detached: true, argv0: program });
      } catch (e) {
        // E.g. a NUL character in an argument: refused before anything runs.
        return reject(new ConnectorError(`${name}: cannot run ${shown}: ${oneLine((e as Error).message, 300)}`, 'exit'));
      }
      running.add(child);
      const out: Buffer[] = [];
      let outBytes = 0;
      const err: Buffer[] = [];
      let errBytes = 0;
      let failure: ConnectorError | null = null;
      let killTimer: ReturnType<typeof setTimeout> | undefined;
      let closeTimer: ReturnType<typeof setTimeout> | undefined;
      let stoppedWith: NodeJS.Signals | null = null;
      let settled = false;

      const stop = (why: ConnectorError) => {
        if (failure) return;
        failure = why;
        stoppedWith = 'SIGTERM';
        killGroup(child, 'SIGTERM');
        killTimer = setTimeout(() => {
          stoppedWith = 'SIGKILL';
          killGroup(child, 'SIGKILL');
        }, killGraceMs);
      };
      const timer = setTimeout(() => stop(new ConnectorError(`${name}: ${shown} timed out after ${formatMs(timeoutMs)}`, 'timeout')), timeoutMs);
      const onAbort = () => stop(new ConnectorError(`${name}: ${shown} was stopped: the agent is closing`, 'aborted'));
      task.signal?.addEventListener('abort', onAbort, { once: true });
      if (task.signal?.aborted) onAbort();

      const finish = (outcome: { code: number | null; signal: NodeJS.Signals | null } | { spawnError: Error }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(killTimer);
        clearTimeout(closeTimer);
        task.signal?.removeEventListener('abort', onAbort);
        running.delete(child);
        const stderr = stderrTail(err);
        const withStderr = (msg: string) => (stderr ? `${msg}; stderr: ${stderr}` : msg);
        if ('spawnError' in outcome) {
          return reject(new ConnectorError(`${name}: cannot run ${shown}: ${outcome.spawnError.message}`, 'exit'));
        }
        if (failure) {
          const how = failure.kind === 'timeout' || failure.kind === 'aborted' ? ` (killed with ${stoppedWith ?? 'SIGTERM'})` : '';
          return reject(new ConnectorError(withStderr(`${failure.message}${how}`), failure.kind));
        }
        if (outcome.code !== 0) {
          const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code}`;
          return reject(new ConnectorError(withStderr(`${name}: ${shown} ${how}`), 'exit'));
        }
        resolvePromise(Buffer.concat(out).toString('utf8'));
      };

      child.stdout!.on('data', (chunk: Buffer) => {
        if (failure) return;
        outBytes += chunk.length;
        if (outBytes > maxOutput) {
          stop(
            new ConnectorError(
              `${name}: ${shown} wrote more than ${maxOutput} bytes on stdout (the output limit, max_output_bytes); it was stopped`,
              'output_limit',
            ),
          );
          return;
        }
        out.push(chunk);
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        err.push(chunk);
        errBytes += chunk.length;
        while (errBytes > STDERR_KEEP_BYTES && err.length > 1) errBytes -= err.shift()!.length;
      });
      child.once('error', (e: Error) => finish({ spawnError: e }));
      child.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
        // Something the program started may still hold its stdout open: do not wait for it forever.
        closeTimer = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish({ code, signal });
        }, 2_000);
      });
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => finish({ code, signal }));
      if (input === 'stdin' && child.stdin) {
        // A program that exits without reading its input closes the pipe: not an error of ours.
        child.stdin.on('error', () => {});
        child.stdin.end(text);
      }
    });
  }

  return {
    name,
    describe: () => `${name} (runs ${shown}, prompt on ${input === 'arg' ? 'the command line' : 'stdin'}, timeout ${timeoutMs} ms)`,
    async answer(task): Promise<ConnectorReply> {
      const started = performance.now();
      const stdout = await run(task);
      return { content: stdout.replace(/\s+$/, ''), usage: { model: program, latency_ms: Math.round(performance.now() - started) } };
    },
    async close() {
      for (const child of running) killGroup(child, 'SIGKILL');
    },
  };
}

export const commandConnector = commandDefinition(null);
