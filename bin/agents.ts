/** `skynet-linker agents add|list|remove`. */
import { Command, Option } from 'clipanion';
import { CliError, describeError } from './errors.js';
import { LinkerCommand, parseFormat, formatOption } from './base.js';
import { agentLine } from './format.js';

const SCOPES = ['agent', 'monitor', 'admin'] as const;
type Scope = (typeof SCOPES)[number];

export class AgentsAddCommand extends LinkerCommand {
  static override paths = [['agents', 'add']];
  static override usage = Command.Usage({
    description: 'Register an agent and issue its token',
    details: 'The token is printed once and never stored in clear. Needs an admin credential (the local one `serve` created, or --token).',
    examples: [
      ['Add a planner', 'skynet-linker agents add claude_cli --type planner'],
      ['A monitoring token, as JSON', 'skynet-linker agents add ops --type operator --scopes monitor --format json'],
    ],
  });
  agentId = Option.String({ name: 'agent-id' });
  type = Option.String('--type', { description: "Agent type (planner, researcher, coder, ...; default agent, or the existing agent's type)" });
  scopes = Option.String('--scopes', 'agent', { description: 'Comma-separated: agent, monitor, admin' });
  format = formatOption();

  async run() {
    const format = parseFormat(this.format);
    const scopes = this.scopes
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = scopes.find((s) => !(SCOPES as readonly string[]).includes(s));
    if (bad) throw new CliError('USAGE', `--scopes: unknown scope "${bad}" (use agent, monitor, admin)`);
    const trpc = await this.clientAs(null);
    // Adding an agent that exists issues it one more token: its type stays unless --type says otherwise.
    const existing = await trpc.agents.get.query({ agent_id: this.agentId }).catch((err: unknown) => {
      if (describeError(err).kind === 'NOT_FOUND') return null;
      throw err;
    });
    const agentType = this.type ?? existing?.agent_type ?? 'agent';
    const result = await trpc.agents.add.mutate({ agent_id: this.agentId, agent_type: agentType, scopes: scopes as Scope[] });
    if (format === 'json') {
      this.printJson({
        agent_id: result.agent.agent_id,
        agent_type: result.agent.agent_type,
        scopes: result.scopes,
        token: result.token,
        existed: existing !== null,
      });
    } else {
      if (existing) {
        const typeNote =
          existing.agent_type === result.agent.agent_type
            ? `type ${existing.agent_type} kept`
            : `type changed from ${existing.agent_type} to ${result.agent.agent_type}`;
        this.print(
          `${result.agent.agent_id} already existed (${typeNote}): issued another token with scopes ${result.scopes.join(',')}; its earlier tokens keep working (\`agents remove\` revokes them all)`,
        );
      } else this.print(`added ${result.agent.agent_id} (${result.agent.agent_type}) with scopes ${result.scopes.join(',')}`);
      this.print(`token (shown once): ${result.token}`);
    }
  }
}

export class AgentsListCommand extends LinkerCommand {
  static override paths = [['agents', 'list']];
  static override usage = Command.Usage({
    description: 'List agents with presence (cluster-wide)',
    examples: [
      ['List', 'skynet-linker agents list'],
      ['As JSON', 'skynet-linker agents list --format json'],
    ],
  });
  format = formatOption();

  async run() {
    const format = parseFormat(this.format);
    const trpc = await this.clientAs(null);
    const agents = await trpc.agents.list.query();
    if (format === 'json') this.printJson(agents);
    else if (agents.length === 0) this.print('no agents registered');
    else for (const a of agents) this.print(agentLine(a));
  }
}

export class AgentsRemoveCommand extends LinkerCommand {
  static override paths = [['agents', 'remove']];
  static override usage = Command.Usage({ description: 'Remove an agent and revoke its tokens', examples: [['Remove', 'skynet-linker agents remove gpt4']] });
  agentId = Option.String({ name: 'agent-id' });

  async run() {
    const trpc = await this.clientAs(null);
    const r = await trpc.agents.remove.mutate({ agent_id: this.agentId });
    this.print(`removed ${r.agent_id} (${r.tokens_revoked} token${r.tokens_revoked === 1 ? '' : 's'} revoked)`);
  }
}
