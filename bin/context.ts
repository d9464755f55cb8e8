/** `skynet-linker context push|pull`: the shared context of a scope. */
import { Command, Option } from 'clipanion';
import { readFileSync, writeFileSync } from 'node:fs';
import { ContextScopeSchema } from '../protocol/records.js';
import { CliError } from './errors.js';
import { intOption, LinkerCommand } from './base.js';

function resolveScope(scope: string | undefined, agentId: string | null): string {
  const s = scope ?? (agentId ? `agent:${agentId}` : 'global');
  if (!ContextScopeSchema.safeParse(s).success) throw new CliError('USAGE', `--scope must be global, agent:<id> or session:<id> (got "${s}")`);
  return s;
}

export class ContextPushCommand extends LinkerCommand {
  static override paths = [['context', 'push']];
  static override usage = Command.Usage({
    description: 'Merge a JSON file into a shared context',
    details: `
      The file is a JSON object applied as a merge patch: objects merge, \`null\` deletes, lists under \`shared_knowledge\` (facts, decisions) are unioned without duplicates. Default scope: \`agent:<agent-id>\` with --agent-id, else \`global\`. \`--expected-version\` makes it a compare-and-set (exit 7 on conflict).
    `,
    examples: [
      ['The seed push', 'skynet-linker context push --agent-id claude_cli --context-file context.json'],
      ['Into the global context', 'skynet-linker context push --scope global --context-file facts.json'],
    ],
  });
  agentId = Option.String('--agent-id', { description: 'Act as this agent (env SKYNET_LINKER_AGENT_ID)' });
  contextFile = Option.String('--context-file', { required: true, description: 'JSON object to merge' });
  scope = Option.String('--scope', { description: 'global | agent:<id> | session:<id>' });
  expectedVersion = intOption('--expected-version', 0, Number.MAX_SAFE_INTEGER, 'Only apply if the current version is this');

  async run() {
    const agentId = this.actingAgentId(this.agentId);
    const scope = resolveScope(this.scope, agentId);
    let patch: unknown;
    try {
      patch = JSON.parse(readFileSync(this.contextFile, 'utf8'));
    } catch (err) {
      throw new CliError(
        'USAGE',
        `--context-file ${this.contextFile}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not valid JSON'}`,
      );
    }
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch))
      throw new CliError('USAGE', `--context-file ${this.contextFile}: must hold a JSON object`);
    const trpc = await this.clientAs(agentId);
    const doc = await trpc.context.push.mutate({
      scope,
      patch: patch as Record<string, never>,
      expected_version: this.expectedVersion,
    });
    this.print(`${scope} is now at version ${doc.version}`);
  }
}

export class ContextPullCommand extends LinkerCommand {
  static override paths = [['context', 'pull']];
  static override usage = Command.Usage({
    description: 'Fetch a shared context as JSON',
    details: 'Writes `{ scope, version, data, updated_by, updated_at }` to --output, or stdout without it. `--data-only` writes just `data`.',
    examples: [
      ['The seed pull', 'skynet-linker context pull --agent-id claude_cli --output context_local.json'],
      ['Global context to stdout', 'skynet-linker context pull --scope global'],
    ],
  });
  agentId = Option.String('--agent-id', { description: 'Act as this agent (env SKYNET_LINKER_AGENT_ID)' });
  scope = Option.String('--scope', { description: 'global | agent:<id> | session:<id>' });
  output = Option.String('--output', { description: 'File to write (default stdout)' });
  dataOnly = Option.Boolean('--data-only', false, { description: 'Write only the data object' });

  async run() {
    const agentId = this.actingAgentId(this.agentId);
    const scope = resolveScope(this.scope, agentId);
    const trpc = await this.clientAs(agentId);
    const doc = await trpc.context.pull.query({ scope });
    const text = JSON.stringify(this.dataOnly ? doc.data : doc, null, 2) + '\n';
    if (this.output) {
      writeFileSync(this.output, text);
      this.context.stderr.write(`wrote ${scope} (version ${doc.version}) to ${this.output}\n`);
    } else this.context.stdout.write(text);
  }
}

export class ContextResetCommand extends LinkerCommand {
  static override paths = [['context', 'reset']];
  static override usage = Command.Usage({
    description: 'Empty a shared context (admin), e.g. one that answers DATA_CORRUPTED',
    details:
      'Writes an empty document as the next version of the scope, whatever the current one holds (a record that fails its integrity check included). Needs an admin token.',
    examples: [['Reset the global context', 'skynet-linker context reset --scope global']],
  });
  scope = Option.String('--scope', { required: true, description: 'global | agent:<id> | session:<id>' });
  agentId = Option.String('--agent-id', { description: 'Act as this agent (default: the admin credential)' });

  async run() {
    const scope = resolveScope(this.scope, null);
    const doc = await (await this.clientAs(this.actingAgentId(this.agentId))).context.reset.mutate({ scope });
    this.print(`${scope} reset: now empty at version ${doc.version}`);
  }
}
