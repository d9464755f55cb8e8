/**
 * What every client command shares: where the hub is (--server), who we are (--token, or a
 * credential found in the data directory), --config, --verbose; one error path with exit codes;
 * and a fast reachability probe so an unreachable hub is said within seconds, not a hang.
 */
import { Command, Option } from 'clipanion';
import * as t from 'typanion';
import WebSocket from 'ws';
import { connectAgent, type AgentOptions, type LinkerAgent } from '../clients/agent.js';
import { createLinkerClient, type LinkerConnection } from '../clients/client.js';
import { loadConfig, findConfigPath, type Config } from './config.js';
import { CliError, describeError, EXIT_CODES } from './errors.js';
import { adminCredentialPath, agentCredentialPath, dataHome, readCredential, writeCredential, type LocalCredential } from './home.js';
import { checkHubUrl, DEFAULT_SERVER, isClosedConnection, probeHub, type HubUrl } from './hub-url.js';

export { DEFAULT_SERVER };

export abstract class LinkerCommand extends Command {
  server = Option.String('--server', {
    description: `Hub URL (env SKYNET_LINKER_SERVER; default: the hub \`serve\` started on this machine, else ${DEFAULT_SERVER})`,
  });
  token = Option.String('--token', { description: 'Agent token (env SKYNET_LINKER_TOKEN); default: a credential from the data directory' });
  configPath = Option.String('--config', { description: 'config.yaml to read (env SKYNET_LINKER_CONFIG; default ./config.yaml)' });
  verbose = Option.Boolean('--verbose', false, { description: 'Show stack traces on errors' });

  private cachedConfig: Config | undefined;
  private connections: LinkerConnection[] = [];
  /** One probe per URL and one connection per identity for the whole command (checking a saved token reuses it). */
  private probes = new Map<string, Promise<void>>();
  private clients = new Map<string, LinkerConnection['trpc']>();

  get home(): string {
    return dataHome();
  }

  get config(): Config {
    this.cachedConfig ??= loadConfig(findConfigPath(this.configPath, this.home));
    return this.cachedConfig;
  }

  serverUrl(): string {
    return this.hubUrl().url;
  }

  /** The hub to talk to and where that came from (see hub-url.ts for the order). */
  hubUrl(): HubUrl {
    if (this.server !== undefined) return { url: this.server, source: 'flag' };
    if (process.env.SKYNET_LINKER_SERVER) return { url: process.env.SKYNET_LINKER_SERVER, source: 'env' };
    if (this.config.server?.url) return { url: this.config.server.url, source: 'config' };
    if (this.config.server?.port !== undefined) return { url: `ws://localhost:${this.config.server.port}/ws`, source: 'config' };
    const local = readCredential(adminCredentialPath(this.home))?.server;
    if (local && /^(wss?|https?):\/\//.test(local)) return { url: local, source: 'local-hub' };
    return { url: DEFAULT_SERVER, source: 'default' };
  }

  /** The agent to act as: flag, SKYNET_LINKER_AGENT_ID, or null (the token decides). */
  actingAgentId(flag?: string): string | null {
    return flag ?? process.env.SKYNET_LINKER_AGENT_ID ?? null;
  }

  abstract run(): Promise<number | void>;

  async execute(): Promise<number> {
    try {
      // A malformed --server is a usage error, said before anything else (credentials, probes).
      const hub = this.hubUrl();
      if (hub.source === 'flag' || hub.source === 'env') checkHubUrl(hub.url, hub.source === 'flag' ? '--server' : 'SKYNET_LINKER_SERVER');
      const code = await this.run();
      return code ?? EXIT_CODES.OK;
    } catch (thrown) {
      const err = await this.explainClosedConnection(thrown);
      const { kind, message } = describeError(err);
      this.context.stderr.write(`error: ${message}\n`);
      if (this.verbose || process.env.DEBUG) this.context.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
      return EXIT_CODES[kind];
    } finally {
      await Promise.all(this.connections.map((c) => c.close().catch(() => {})));
    }
  }

  /** Fails within `timeoutMs` with exit code 5 when nothing (or no healthy hub) answers at the hub URL. */
  async probe(url: string, timeoutMs = 4000): Promise<void> {
    const hub = this.hubUrl();
    await probeHub(hub.url === url ? hub : { url, source: 'flag' }, { adminPath: adminCredentialPath(this.home), timeoutMs });
  }

  /**
   * The hub refuses a connection it cannot authenticate (its store is down) by closing it: the
   * client only says "Active connection is not open". Ask /health what happened, so every
   * command reports a store outage as SERVICE_UNAVAILABLE (exit 5).
   */
  private async explainClosedConnection(err: unknown): Promise<unknown> {
    if (!isClosedConnection(err)) return err;
    try {
      await this.probe(this.serverUrl(), 2000);
    } catch (probeError) {
      return probeError;
    }
    return new CliError('UNREACHABLE', `the hub at ${this.serverUrl()} closed the connection before answering (${(err as Error).message}); retry`);
  }

  /**
   * Resolves the credential to use: --token / SKYNET_LINKER_TOKEN; else, acting as `agentId`, the
   * token this CLI saved for it (issuing one with the local admin credential the first time);
   * else the local admin credential written by `serve`.
   */
  async credential(agentId: string | null, opts: { agentType?: string | undefined } = {}): Promise<{ token: string | undefined; agentId: string | null }> {
    const explicit = this.token ?? process.env.SKYNET_LINKER_TOKEN;
    if (explicit) return { token: explicit, agentId };
    const fromConfig = agentId ? this.config.auth?.tokens?.find((t) => t.agent_id === agentId) : undefined;
    if (fromConfig) return { token: fromConfig.token ?? process.env[fromConfig.token_env ?? ''], agentId };
    if (this.config.auth?.insecure_no_auth) return { token: undefined, agentId };
    const admin = readCredential(adminCredentialPath(this.home));
    if (!agentId || agentId === admin?.agent_id) {
      if (!admin) throw new CliError('AUTH', `no credentials: pass --token (or SKYNET_LINKER_TOKEN), or run \`skynet-linker serve\` on this machine first`);
      return { token: admin.token, agentId: admin.agent_id };
    }
    const saved = readCredential(agentCredentialPath(this.home, agentId));
    // A saved token goes stale when the agent is removed, a snapshot is restored or the store is
    // wiped: with the admin credential at hand, check it and issue a fresh one when it is refused.
    if (saved && (!admin || (await this.tokenAccepted(saved.token, agentId)))) return { token: saved.token, agentId };
    if (!admin) {
      throw new CliError('AUTH', `no token for ${agentId}: pass --token (from \`skynet-linker agents add ${agentId}\`), or run the hub on this machine`);
    }
    return { token: await this.issueLocalToken(admin, agentId, opts.agentType), agentId };
  }

  private async tokenAccepted(token: string, agentId: string): Promise<boolean> {
    const trpc = await this.client(token, agentId);
    try {
      await trpc.agents.whoami.query();
      return true;
    } catch (err) {
      if (describeError(err).kind === 'AUTH') return false;
      throw err;
    }
  }

  private async issueLocalToken(admin: LocalCredential, agentId: string, agentType: string | undefined): Promise<string> {
    const trpc = await this.client(admin.token, admin.agent_id);
    const known = await trpc.agents.get.query({ agent_id: agentId }).catch(() => null);
    const { token } = await trpc.agents.add.mutate({ agent_id: agentId, agent_type: agentType ?? known?.agent_type ?? 'agent', scopes: ['agent'] });
    writeCredential(agentCredentialPath(this.home, agentId), { agent_id: agentId, token, server: this.serverUrl() });
    return token;
  }

  async client(token: string | undefined, agentId: string | null, agentType?: string) {
    const url = this.serverUrl();
    await this.reachable(url);
    const key = JSON.stringify([token, agentId, agentType]);
    let trpc = this.clients.get(key);
    if (!trpc) {
      const conn = createLinkerClient({ url, token, agentId: agentId ?? undefined, agentType, WebSocket, EventSource: undefined });
      this.connections.push(conn);
      this.clients.set(key, (trpc = conn.trpc));
    }
    return trpc;
  }

  /** `probe`, once per URL for the whole command. */
  private reachable(url: string): Promise<void> {
    let p = this.probes.get(url);
    if (!p) this.probes.set(url, (p = this.probe(url)));
    return p;
  }

  /** A typed client acting as `agentId` (or as the token's agent). */
  async clientAs(agentId: string | null, agentType?: string) {
    const cred = await this.credential(agentId, { agentType });
    return this.client(cred.token, cred.agentId, agentType);
  }

  async agentRuntime(agentId: string, opts: Omit<AgentOptions, 'url' | 'agentId' | 'WebSocket'>): Promise<LinkerAgent> {
    const url = this.serverUrl();
    await this.reachable(url);
    const cred = await this.credential(agentId, { agentType: opts.agentType });
    return connectAgent({ ...opts, url, token: cred.token, agentId, WebSocket });
  }

  print(line: string): void {
    this.context.stdout.write(line + '\n');
  }

  printJson(value: unknown): void {
    this.context.stdout.write(JSON.stringify(value) + '\n');
  }
}

/** Parses `60s`, `5m`, `1500ms`, `2h` or plain seconds into milliseconds (one parser for every flag). */
export { parseDurationMs as parseDuration } from './connector-settings.js';

/** `--format text|json`, checked by clipanion when it parses the line (exit 2 with the flag named). */
export function formatOption() {
  return Option.String('--format', { description: 'text or json', validator: t.isEnum(['text', 'json'] as const) });
}

/** An integer flag in [min, max], checked and converted by clipanion (typanion). */
export function intOption(name: string, min: number, max: number, description: string) {
  return Option.String(name, { description, validator: t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(min, max)]) });
}

export function parseFormat(text: string | undefined): 'text' | 'json' {
  if (text === undefined || text === 'text') return 'text';
  if (text === 'json') return 'json';
  throw new CliError('USAGE', `--format must be text or json (got "${text}")`);
}
