/** `skynet-linker serve`: starts a hub on the embedded store (default) or on Redis. */
import { Command, Option } from 'clipanion';
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import * as t from 'typanion';
import { join } from 'node:path';
import { pino } from 'pino';
import { KeyRing } from '../crypto/keyring.js';
import { createKeyFile, DEFAULT_KEY_FILE_NAME, readKeyFile, writeKeyFile } from '../crypto/keyfile-node.js';
import { CryptoError } from '../crypto/errors.js';
import { RedisStore } from '../memory/redis/store.js';
import { createSharedMemory } from '../memory/index.js';
import type { Durability, SqliteStore } from '../memory/sqlite/store.js';
import { importPreviousBuild } from '../memory/sqlite/upgrade.js';
import { keyRingSealer, plainText, type ValueSealer } from '../memory/sealing.js';
import type { Scope } from '../memory/tokens.js';
import { createHub, type Hub, type HubOptions } from '../transport/hub.js';
import { findConfigPath, loadConfig, type Config } from './config.js';
import { CliError, describeError, EXIT_CODES } from './errors.js';
import { adminCredentialPath, dataHome, ensureDir, keyFilePassphrase, readCredential, writeCredential } from './home.js';
import { LOG_LEVELS, readableLogLines } from './log-lines.js';

const AUTOSAVE = 'autosave';

/** Loads the at-rest key ring from the key file, creating both on first run. */
export async function loadOrCreateKeyRing(home: string): Promise<{ ring: KeyRing; path: string; save: () => Promise<void> }> {
  const path = join(home, DEFAULT_KEY_FILE_NAME);
  const { passphrase } = keyFilePassphrase(home);
  let ring: KeyRing;
  if (existsSync(path)) {
    try {
      const data = (await readKeyFile(path, passphrase)) as { at_rest?: unknown };
      ring = KeyRing.fromExport(data.at_rest);
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'BAD_PASSPHRASE') {
        throw new CliError('AUTH', `${path}: wrong passphrase (set SKYNET_LINKER_PASSPHRASE to the one this key file was written with)`);
      }
      throw new CliError('ERROR', `${path}: cannot read the key file: ${(err as Error).message}`);
    }
  } else {
    // First start. Nodes starting together on one data directory must end up with one key ring:
    // the file is created only if absent, and whoever loses the race uses the winner's.
    ring = KeyRing.generate();
    if (!(await createKeyFile(path, { at_rest: ring.export() }, passphrase))) ring = await readWinnersKeyRing(path, passphrase);
  }
  const save = async () => {
    const existing = existsSync(path) ? ((await readKeyFile(path, passphrase)) as Record<string, unknown>) : {};
    await writeKeyFile(path, { ...existing, at_rest: ring.export() }, passphrase);
  };
  return { ring, path, save };
}

/**
 * The key ring another node just created. With hard links its file is complete from the start; on
 * a file system without them it may still be being written: retry for a couple of seconds.
 */
async function readWinnersKeyRing(path: string, passphrase: string): Promise<KeyRing> {
  for (let attempt = 0; ; attempt++) {
    try {
      return KeyRing.fromExport(((await readKeyFile(path, passphrase)) as { at_rest?: unknown }).at_rest);
    } catch (err) {
      if (!(err instanceof CryptoError && err.code === 'BAD_KEY_FILE') || attempt >= 40) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The embedded store's database; a data directory another hub holds is a clear error. */
async function openDatabase(dataDir: string, durability: Durability): Promise<SqliteStore> {
  // Loaded only to serve on it: client commands (this same binary) never load the native module.
  const [{ SqliteStore }, { DataDirInUseError }] = await Promise.all([import('../memory/sqlite/store.js'), import('../memory/sqlite/lock.js')]);
  try {
    return new SqliteStore({ dataDir, durability });
  } catch (err) {
    if (err instanceof DataDirInUseError) throw new CliError('CONFLICT', err.message);
    throw new CliError('ERROR', `cannot open the embedded store's database in ${dataDir}: ${(err as Error).message}`);
  }
}

/** Fails with exit 2 and the flag's name when a file a flag names cannot be read. */
function readableFile(flag: string, path: string): void {
  try {
    accessSync(path, fsConstants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError('USAGE', `${flag} ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code}`);
  }
}

export class ServeCommand extends Command {
  static override paths = [['serve']];
  static override usage = Command.Usage({
    description: 'Start the hub',
    details: `
      Serves WebSocket at /ws, tRPC over HTTP at /trpc, /health and /metrics on one port.

      Without \`--redis\` the hub runs on the embedded store: a SQLite database in the data directory (\`data/skynet-linker.db\`), where every write is committed before the hub acknowledges it, so a killed hub loses nothing it acknowledged (\`--durability power\` also survives a power loss). One hub per data directory. A data directory of an earlier build (snapshot files only) is imported at the first start. With \`--redis\` (or \`redis.url\` in config.yaml, or SKYNET_LINKER_REDIS_URL) Redis is the source of truth and several hubs can share it.

      On first start with no tokens configured it creates an admin credential in the data directory (mode 0600); CLI commands on this machine find it by themselves. \`--insecure-no-auth\` turns authentication off for experiments and says so loudly.
    `,
    examples: [
      ['Start on the embedded store', 'skynet-linker serve'],
      ['Start on Redis, on all interfaces', 'skynet-linker serve --host 0.0.0.0 --redis redis://127.0.0.1:6379'],
      ['Use a config file', 'skynet-linker serve --config config.yaml'],
    ],
  });

  host = Option.String('--host', { description: 'Interface to listen on (default 127.0.0.1)' });
  port = Option.String('--port', {
    description: 'Port (default 8000; 0 picks a free one)',
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(0, 65535)]),
  });
  redis = Option.String('--redis', { description: 'Redis URL (env SKYNET_LINKER_REDIS_URL); default: embedded store' });
  prefix = Option.String('--prefix', { description: 'Redis key prefix (default skynet:)' });
  configPath = Option.String('--config', { description: 'config.yaml to read' });
  dataDir = Option.String('--data-dir', { description: 'Data directory (env SKYNET_LINKER_HOME, default ~/.skynet-linker)' });
  insecureNoAuth = Option.Boolean('--insecure-no-auth', false, { description: 'Turn authentication off (experiments only)' });
  sealing = Option.Boolean('--sealing', true, { description: 'Seal payloads at rest (default on; --no-sealing turns it off)' });
  tlsCert = Option.String('--tls-cert', { description: 'PEM certificate: serve wss:// and https://' });
  tlsKey = Option.String('--tls-key', { description: 'PEM private key for --tls-cert' });
  cors = Option.Array('--cors-origin', { description: 'Browser origin allowed to call /trpc (repeatable)' });
  snapshotInterval = Option.String('--snapshot-interval', {
    description:
      'Embedded store: seconds between automatic "autosave" snapshots, also taken at shutdown (default 0: none; the database keeps every acknowledged write)',
    validator: t.cascade(t.isNumber(), [t.isAtLeast(0)]),
  });
  durability = Option.String('--durability', {
    description: 'Embedded store: process (default; survives a killed hub) or power (also a power loss, slower writes)',
  });
  drainTimeout = Option.String('--drain-timeout', {
    description: 'On SIGTERM/SIGINT, with other nodes on the same Redis: seconds to let clients move to one before closing their connections (default 10)',
    validator: t.cascade(t.isNumber(), [t.isAtLeast(0)]),
  });
  logLevel = Option.String('--log-level', {
    description: 'fatal|error|warn|info|debug|trace|silent (default info; logs go to stderr)',
    validator: t.isEnum(LOG_LEVELS),
  });
  logFormat = Option.String('--log-format', {
    description: 'text (readable lines; the default on a terminal) or json (one pino object per line; the default otherwise)',
    validator: t.isEnum(['text', 'json'] as const),
  });
  verbose = Option.Boolean('--verbose', false, { description: 'Log at debug level: also one line per routed message' });

  async execute(): Promise<number> {
    try {
      return await this.serve();
    } catch (err) {
      const { kind, message } = describeError(err);
      this.context.stderr.write(`error: ${message}\n`);
      return EXIT_CODES[kind];
    }
  }

  private async serve(): Promise<number> {
    const home = ensureDir(dataHome(this.dataDir));
    const config = loadConfig(findConfigPath(this.configPath, home));
    const portText = String(this.port ?? process.env.SKYNET_LINKER_PORT ?? config.server?.port ?? 8000);
    const port = Number(portText);
    // The flag is checked by clipanion; the variable is checked here.
    if (!/^\d+$/.test(portText) || port > 65535) throw new CliError('USAGE', `SKYNET_LINKER_PORT must be an integer between 0 and 65535 (got "${portText}")`);
    const host = this.host ?? process.env.SKYNET_LINKER_HOST ?? config.server?.host ?? '127.0.0.1';
    const redisUrl = this.redis ?? process.env.SKYNET_LINKER_REDIS_URL ?? config.redis?.url;
    const insecure = this.insecureNoAuth || config.auth?.insecure_no_auth === true;
    const sealingOn = this.sealing && config.sealing?.enabled !== false;
    const sealInMemory = config.sealing?.in_memory === true;
    const level = this.logLevel ?? (this.verbose ? 'debug' : undefined) ?? config.log_level ?? process.env.LOG_LEVEL ?? 'info';
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new CliError('USAGE', `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${level}")`);
    if (redisUrl && !/^rediss?:\/\/[^/]/.test(redisUrl)) {
      const from = this.redis !== undefined ? '--redis' : 'SKYNET_LINKER_REDIS_URL';
      throw new CliError(
        'USAGE',
        `${from}: "${redisUrl}" is not a Redis URL (expected redis://host:6379, rediss://… for TLS, or redis://:password@host:6379/0)`,
      );
    }
    const tlsCert = this.tlsCert ?? config.server?.tls?.cert;
    const tlsKey = this.tlsKey ?? config.server?.tls?.key;
    if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new CliError('USAGE', '--tls-cert and --tls-key go together');
    for (const [flag, file] of [
      ['--tls-cert', tlsCert],
      ['--tls-key', tlsKey],
    ] as const) {
      if (file) readableFile(flag, file);
    }
    // On a terminal a person reads the log; anywhere else a collector parses it.
    const logFormat = this.logFormat ?? (process.stderr.isTTY ? 'text' : 'json');
    const logger = pino({ level }, logFormat === 'text' ? readableLogLines((line) => process.stderr.write(line)) : pino.destination(2));

    const intervalS = Number(this.snapshotInterval ?? 0);
    if (!Number.isFinite(intervalS) || intervalS < 0)
      throw new CliError('USAGE', `--snapshot-interval must be a number of seconds (got "${this.snapshotInterval}")`);
    const durabilityText = this.durability ?? process.env.SKYNET_LINKER_DURABILITY ?? config.store?.durability ?? 'process';
    if (durabilityText !== 'process' && durabilityText !== 'power')
      throw new CliError('USAGE', `--durability must be process or power (got "${durabilityText}")`);
    const durability: Durability = durabilityText;
    const sqlite = redisUrl ? null : await openDatabase(join(home, 'data'), durability);
    const store = sqlite ?? new RedisStore({ url: redisUrl!, prefix: this.prefix ?? config.redis?.prefix });
    if (redisUrl) {
      await store.ping().catch((err) => {
        void store.close();
        throw new CliError('UNREACHABLE', `cannot reach Redis at ${redisUrl}: ${(err as Error).message}`);
      });
    }
    let sealer: ValueSealer = plainText;
    let rotateKeys: (() => Promise<{ activeKeyId: string; keyIds: string[] }>) | undefined;
    let keyPath: string | null = null;
    if (sealingOn) {
      const keys = await loadOrCreateKeyRing(home);
      sealer = keyRingSealer(keys.ring);
      keyPath = keys.path;
      rotateKeys = async () => {
        keys.ring.rotate();
        await keys.save();
        return { activeKeyId: keys.ring.activeKeyId, keyIds: keys.ring.keyIds };
      };
    }
    const out = (line: string) => this.context.stdout.write(line + '\n');
    const storeLine = sqlite
      ? `embedded store (no Redis; SQLite database ${sqlite.path}, each write committed before it is acknowledged; durability: ${durability === 'power' ? 'power loss' : 'killed process'})`
      : `Redis store at ${redisUrl}`;

    let importedLine: string | undefined;
    if (sqlite) {
      const snapshots = createSharedMemory({ store: sqlite, sealer, sealInMemory }).snapshots;
      const imported = await importPreviousBuild(sqlite, snapshots).catch(async (err) => {
        await sqlite.close();
        throw new CliError('ERROR', `cannot import the previous build's state from ${join(home, 'data', 'snapshots')}: ${(err as Error).message}`);
      });
      if (imported) {
        logger.info({ event: 'previous_build_imported', snapshot: imported.name }, 'state of the previous build imported into the database');
        importedLine = `imported the state of the previous build (snapshot ${imported.name} of ${imported.createdAt}) into ${sqlite.path}; done once, the snapshot files stay`;
      }
    }

    const tokens = (config.auth?.tokens ?? []).map((t) => {
      const token = t.token ?? process.env[t.token_env ?? ''];
      if (!token) throw new CliError('USAGE', `config: auth.tokens for ${t.agent_id}: environment variable ${t.token_env} is not set`);
      return { token, agent_id: t.agent_id, scopes: t.scopes as Scope[], agent_type: t.agent_type };
    });
    const rateLimit = config.server?.rate_limit ? { perSecond: config.server.rate_limit.per_second, burst: config.server.rate_limit.burst } : undefined;
    const drainTimeoutMs = (this.drainTimeout ?? 10) * 1000;

    let hub: Hub;
    try {
      hub = await createHub({
        store,
        sealer,
        sealInMemory,
        rotateKeys,
        host,
        port,
        insecureNoAuth: insecure,
        tokens,
        logger,
        corsOrigins: this.cors ?? config.server?.cors_origins,
        maxPayloadBytes: config.server?.max_payload_bytes,
        maxBufferedBytes: config.server?.max_buffered_bytes,
        slowConsumerTimeoutMs: config.server?.slow_consumer_timeout_ms,
        maxConnectionBufferBytes: config.server?.max_connection_buffer_bytes,
        rateLimit,
        tls: tlsCert && tlsKey ? { certPath: tlsCert, keyPath: tlsKey } : undefined,
        drainTimeoutMs,
        ...limitOptions(config.limits),
        guards: guardLimits(config.guards),
      });
    } catch (err) {
      await store.close();
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EADDRINUSE') throw new CliError('USAGE', `port ${port} on ${host} is already in use (another hub?); pick another with --port`);
      if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') throw new CliError('USAGE', `--host ${host}: not an address of this machine (${e.code})`);
      if (tlsCert && /PEM|ERR_OSSL|key values mismatch|routines/i.test(e.message ?? '')) {
        throw new CliError('USAGE', `--tls-cert ${tlsCert} / --tls-key ${tlsKey}: not a usable PEM certificate and key (${e.message.split('\n')[0]})`);
      }
      throw err;
    }
    // Listen for Ctrl-C before saying the hub is up: a signal right after the banner must stop it
    // cleanly, not kill it.
    // `npm start` delivers Ctrl-C twice (the terminal signals the process group and npm forwards
    // it): a repeat within 2 s is the same Ctrl-C; a later one stops waiting for the shutdown.
    let signalled: (signal: string) => void = () => {};
    const stopSignal = new Promise<string>((resolve) => (signalled = resolve));
    let firstSignalAt = 0;
    const onSignal = (signal: string) => {
      if (firstSignalAt === 0) {
        firstSignalAt = Date.now();
        signalled(signal);
      } else if (Date.now() - firstSignalAt > 2000) {
        this.context.stderr.write(`second ${signal}: exiting without finishing the shutdown\n`);
        process.exit(EXIT_CODES.INTERRUPTED);
      }
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    const publicUrl = hub.url.replace('//127.0.0.1:', '//localhost:').replace('//0.0.0.0:', '//localhost:');
    out(`Skynet Linker hub on ${publicUrl} — ${storeLine}`);
    // On the embedded store what rests on disk is its snapshot files (memory/sealing.ts, inProcessValues).
    const sealedWhat = hub.memory.valuesSealed ? '' : '; embedded store: snapshot files sealed';
    out(`sealing at rest: ${sealingOn ? `on (keys in ${keyPath}${sealedWhat})` : 'OFF'}`);
    if (importedLine) out(importedLine);
    for (const agent of config.agents ?? []) {
      await hub.memory.agents.upsert({ agent_id: agent.id, agent_type: agent.type });
      for (const ch of agent.channels ?? ['skynet_core']) await hub.memory.channels.join(ch, agent.id);
    }

    if (insecure) {
      out('WARNING: authentication is OFF (--insecure-no-auth): anyone who can reach this port can act as any agent.');
    } else if (!tokens.some((t) => t.scopes.includes('admin'))) {
      const path = adminCredentialPath(home);
      let cred = readCredential(path);
      if (cred && !(await hub.memory.tokens.verify(cred.token))) {
        // The credential file survives a wiped store: register it again rather than issue a new one.
        await hub.memory.tokens.register(cred.token, cred.agent_id, ['admin', 'monitor', 'agent']);
      }
      if (!cred) {
        await hub.memory.agents.upsert({ agent_id: 'admin', agent_type: 'operator' });
        const { token } = await hub.memory.tokens.issue('admin', ['admin', 'monitor', 'agent']);
        cred = { agent_id: 'admin', token, server: publicUrl };
        writeCredential(path, cred);
        out(`created an admin credential in ${path} (mode 0600); CLI commands on this machine use it automatically`);
      } else {
        writeCredential(path, { ...cred, server: publicUrl });
        out(`admin credential: ${path}`);
      }
    }

    let saving: Promise<boolean> = Promise.resolve(true);
    /** Resolves with whether the snapshot was written (a failure is logged). */
    const autosave = () => {
      if (redisUrl || intervalS === 0) return Promise.resolve(true);
      saving = saving
        .then(() => hub.memory.snapshots.create(new Date(), AUTOSAVE))
        .then(
          () => true,
          (err: unknown) => {
            logger.error({ event: 'autosave_failed', err }, 'autosave failed');
            return false;
          },
        );
      return saving;
    };
    const timer = !redisUrl && intervalS > 0 ? setInterval(() => void autosave(), intervalS * 1000) : undefined;
    timer?.unref();

    const signal = await stopSignal;
    logger.info({ event: 'shutdown', signal }, 'shutting down');
    out(
      `${signal}: shutting down (clients are told to reconnect${redisUrl ? `; with other nodes on this Redis, they get up to ${drainTimeoutMs / 1000} s to move` : ''})`,
    );
    clearInterval(timer);
    const saved = await autosave();
    await hub.close();
    if (redisUrl) out(`hub stopped; the state stays in Redis at ${redisUrl}`);
    else if (saved) out(`hub stopped; everything it acknowledged is in its database in ${join(home, 'data')} (restored at the next start)`);
    else out(`hub stopped; saving the state in ${join(home, 'data')} FAILED (see the log): the next start restores the previous snapshot`);
    return EXIT_CODES.OK;
  }
}

/** config.yaml `limits:` as hub options (docs/security.md, "Limits"). */
function limitOptions(limits: Config['limits']) {
  if (!limits) return {};
  const seconds = (s: number | undefined) => (s === undefined ? undefined : Math.round(s * 1000));
  return {
    maxContextBytes: limits.max_context_bytes,
    maxMetadataBytes: limits.max_metadata_bytes,
    maxSubscriptionsPerConnection: limits.max_subscriptions_per_connection,
    maxConcurrentCalls: limits.max_concurrent_calls,
    maxQueuedCalls: limits.max_queued_calls,
    callRateLimit: { readsPerSecond: limits.reads_per_second, writesPerSecond: limits.writes_per_second },
    authTimeoutMs: seconds(limits.auth_timeout_s),
    maxUnauthenticatedPerAddress: limits.max_unauthenticated_per_address,
    replyWindowMs: seconds(limits.reply_window_s),
    tokenRecheckMs: seconds(limits.token_recheck_s),
    overloadDelayMs: limits.overload_delay_ms,
  };
}

/** config.yaml's `guards:` section as hub options (absent fields keep their defaults). */
function guardLimits(g: Config['guards']): HubOptions['guards'] {
  if (!g) return undefined;
  return {
    ...(g.max_hops !== undefined ? { maxHops: g.max_hops } : {}),
    ...(g.session_max_agent_messages !== undefined ? { sessionMaxAgentMessages: g.session_max_agent_messages } : {}),
    ...(g.session_max_tokens !== undefined ? { sessionMaxTokens: g.session_max_tokens } : {}),
    ...(g.pair_max_messages !== undefined ? { pairMaxMessages: g.pair_max_messages } : {}),
    ...(g.pair_window_seconds !== undefined ? { pairWindowMs: g.pair_window_seconds * 1000 } : {}),
    ...(g.cycle_max_messages !== undefined ? { cycleMaxMessages: g.cycle_max_messages } : {}),
  };
}
