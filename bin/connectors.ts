/**
 * `skynet-linker connectors list`: every connector, what it needs, whether it is ready here.
 * Keys are never printed. (How `connect --connector` builds one: connector-settings.ts.)
 */
import { Command } from 'clipanion';
import { findProgram, splitTemplate } from '../clients/connectors/command.js';
import { CONNECTORS, findConnector } from '../clients/connectors/registry.js';
import { CONNECTOR_SDKS, sdkInstalled } from '../clients/connectors/sdk.js';
import type { ConnectorDefinition } from '../clients/connectors/types.js';
import { LinkerCommand, parseFormat, formatOption } from './base.js';
import { resolveConnector, type ConnectorConfig } from './connector-settings.js';

interface ConnectorStatus {
  name: string;
  connector: string;
  kind: 'api' | 'command';
  description: string;
  needs: string;
  ready: boolean;
  status: string;
  default: string | null;
}

function statusOf(name: string, def: ConnectorDefinition, entry: ConnectorConfig, env: Record<string, string | undefined>): ConnectorStatus {
  const base = { name, connector: def.name, kind: def.kind, description: def.title };
  if (def.kind === 'api') {
    const keyEnv = entry.api_key_env ?? def.env!.apiKey;
    const extra = def.name === 'gemini' && !entry.api_key_env ? ['GOOGLE_API_KEY'] : [];
    const set = [keyEnv, ...extra].find((n) => (env[n] ?? '').trim() !== '');
    // The vendor SDKs are optional peer dependencies: say when this one is not installed.
    const sdk = CONNECTOR_SDKS[def.name];
    const sdkMissing = sdk && !sdkInstalled(sdk.package) ? `; the ${sdk.package} package is not installed (npm install ${sdk.package}@${sdk.version})` : '';
    return {
      ...base,
      needs: `${keyEnv}${extra.length ? ` (or ${extra.join(', ')})` : ''}; optional ${def.env!.baseUrl}${sdk ? `; the ${sdk.package} package` : ''}`,
      ready: set !== undefined && !sdkMissing,
      status: `${set ? `${set} is set` : `${keyEnv} is not set`} (base URL from ${def.env!.baseUrl} when set)${sdkMissing}`,
      default: entry.model ?? def.defaultModel ?? null,
    };
  }
  const exec = entry.exec ?? def.defaultExec;
  if (!exec)
    return {
      ...base,
      needs: '--exec <template>',
      ready: false,
      status: "give the program with --exec '<program> [args] {prompt}' (or exec: in config.yaml)",
      default: null,
    };
  let program: string | undefined;
  try {
    program = splitTemplate(exec)[0];
  } catch (err) {
    return { ...base, needs: 'a valid exec template', ready: false, status: (err as Error).message, default: exec };
  }
  const found = program ? findProgram(program, env, entry.cwd ?? process.cwd()) : null;
  return {
    ...base,
    needs: `${program} on PATH`,
    ready: found !== null,
    status: found ? `${program} found at ${found}` : `${program} not found on PATH`,
    default: exec,
  };
}

export class ConnectorsListCommand extends LinkerCommand {
  static override paths = [['connectors', 'list']];
  static override usage = Command.Usage({
    description: 'List the AI connectors, what each needs, and whether it is ready',
    details: `
      Shows every connector \`connect --connector <name>\` accepts (and the named ones under \`connectors:\` in config.yaml), what it needs (an API key variable, or a program on PATH), whether that is there, and its default model or command. Keys are never printed, only whether their variable is set.
    `,
    examples: [
      ['What can answer tasks here', 'skynet-linker connectors list'],
      ['As JSON', 'skynet-linker connectors list --format json'],
    ],
  });
  format = formatOption();

  async run() {
    const format = parseFormat(this.format);
    const config = this.config;
    const rows: ConnectorStatus[] = [];
    for (const def of CONNECTORS) rows.push(statusOf(def.name, def, resolveConnector(def.name, config).entry, process.env));
    for (const name of Object.keys(config.connectors ?? {})) {
      if (findConnector(name)) continue;
      const { def, entry } = resolveConnector(name, config);
      rows.push(statusOf(name, def, entry, process.env));
    }
    if (format === 'json') {
      for (const r of rows) this.printJson(r);
      return;
    }
    const width = Math.max(...rows.map((r) => r.name.length));
    for (const r of rows) {
      this.print(`${r.name.padEnd(width)}  ${r.ready ? 'ready    ' : 'not ready'}  ${r.description}`);
      this.print(`${' '.repeat(width)}  ${r.status}${r.default ? `; ${r.kind === 'api' ? 'model' : 'runs'} ${r.default}` : ''}`);
    }
  }
}
