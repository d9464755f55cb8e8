/**
 * `skynet-linker keys generate|rotate|show`: agents' end-to-end key pairs in the encrypted key
 * file `.skynet_linker.keys` (mode 0600), and rotation of the hub's at-rest key ring.
 */
import { Command, Option } from 'clipanion';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { boxKeyPair } from '../crypto/nacl.js';
import { signingKeyPair } from '../crypto/sign.js';
import { fromBase64, toBase64 } from '../crypto/bytes.js';
import { CryptoError } from '../crypto/errors.js';
import { DEFAULT_KEY_FILE_NAME, readKeyFile, writeKeyFile } from '../crypto/keyfile-node.js';
import { AgentIdSchema } from '../protocol/ids.js';
import { CliError } from './errors.js';
import { LinkerCommand, parseFormat, formatOption } from './base.js';
import { ensureDir, keyFilePassphrase } from './home.js';

interface AgentKeys {
  box: { publicKey: string; secretKey: string };
  sign: { publicKey: string; secretKey: string };
  created_at: string;
}
interface KeyFileData {
  at_rest?: unknown;
  agents?: Record<string, AgentKeys>;
}

abstract class KeyFileCommand extends LinkerCommand {
  keyFile = Option.String('--key-file', { description: `Key file (default <data dir>/${DEFAULT_KEY_FILE_NAME})` });

  keyFilePath(): string {
    return this.keyFile ?? join(ensureDir(this.home), DEFAULT_KEY_FILE_NAME);
  }

  async read(): Promise<KeyFileData> {
    const path = this.keyFilePath();
    if (!existsSync(path)) return {};
    try {
      return (await readKeyFile(path, keyFilePassphrase(this.home).passphrase)) as KeyFileData;
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'BAD_PASSPHRASE') throw new CliError('AUTH', `${path}: wrong passphrase (SKYNET_LINKER_PASSPHRASE)`);
      throw new CliError('ERROR', `${path}: ${(err as Error).message}`);
    }
  }
}

/** Loads an agent's end-to-end keys from the key file (for `connect --e2e`). */
export async function agentKeysFromFile(home: string, agentId: string, keyFile?: string) {
  const path = keyFile ?? join(home, DEFAULT_KEY_FILE_NAME);
  if (!existsSync(path)) return null;
  const data = (await readKeyFile(path, keyFilePassphrase(home).passphrase)) as KeyFileData;
  const k = data.agents?.[agentId];
  if (!k) return null;
  return {
    box: { publicKey: fromBase64(k.box.publicKey), secretKey: fromBase64(k.box.secretKey) },
    sign: { publicKey: fromBase64(k.sign.publicKey), secretKey: fromBase64(k.sign.secretKey) },
  };
}

export class KeysGenerateCommand extends KeyFileCommand {
  static override paths = [['keys', 'generate']];
  static override usage = Command.Usage({
    description: "Generate an agent's end-to-end key pairs (NaCl box + Ed25519)",
    details:
      'Secret keys go to the encrypted key file (mode 0600); public keys are printed and, with --publish, registered on the hub so other agents can seal to this one and verify its signatures.',
    examples: [['Generate and publish', 'skynet-linker keys generate --agent-id gemini --publish']],
  });
  agentId = Option.String('--agent-id', { required: true, description: 'Agent the keys belong to' });
  publish = Option.Boolean('--publish', false, { description: 'Register the public keys on the hub' });
  force = Option.Boolean('--force', false, { description: 'Replace existing keys for this agent' });
  format = formatOption();

  async run() {
    const format = parseFormat(this.format);
    if (!AgentIdSchema.safeParse(this.agentId).success) throw new CliError('USAGE', `--agent-id: invalid agent id "${this.agentId}"`);
    const data = await this.read();
    if (data.agents?.[this.agentId] && !this.force)
      throw new CliError('CONFLICT', `${this.keyFilePath()} already holds keys for ${this.agentId} (use --force to replace them)`);
    const box = boxKeyPair();
    const sign = signingKeyPair();
    const entry: AgentKeys = {
      box: { publicKey: toBase64(box.publicKey), secretKey: toBase64(box.secretKey) },
      sign: { publicKey: toBase64(sign.publicKey), secretKey: toBase64(sign.secretKey) },
      created_at: new Date().toISOString(),
    };
    await writeKeyFile(this.keyFilePath(), { ...data, agents: { ...data.agents, [this.agentId]: entry } }, keyFilePassphrase(this.home).passphrase);
    if (this.publish) {
      const trpc = await this.clientAs(this.agentId);
      await trpc.agents.update.mutate({ public_keys: { box: entry.box.publicKey, sign: entry.sign.publicKey } });
    }
    const pub = { agent_id: this.agentId, box: entry.box.publicKey, sign: entry.sign.publicKey, key_file: this.keyFilePath(), published: this.publish };
    if (format === 'json') this.printJson(pub);
    else {
      this.print(`keys for ${this.agentId} written to ${pub.key_file}${this.publish ? ' and published on the hub' : ''}`);
      this.print(`box public key:  ${pub.box}`);
      this.print(`sign public key: ${pub.sign}`);
    }
  }
}

export class KeysShowCommand extends KeyFileCommand {
  static override paths = [['keys', 'show']];
  static override usage = Command.Usage({
    description: 'Show public keys from the key file (never secret keys)',
    examples: [
      ['All agents', 'skynet-linker keys show'],
      ['One agent', 'skynet-linker keys show --agent-id gemini'],
    ],
  });
  agentId = Option.String('--agent-id', { description: 'Only this agent' });
  format = formatOption();

  async run() {
    const format = parseFormat(this.format);
    const data = await this.read();
    const agents = Object.entries(data.agents ?? {})
      .filter(([id]) => !this.agentId || id === this.agentId)
      .map(([agent_id, k]) => ({ agent_id, box: k.box.publicKey, sign: k.sign.publicKey, created_at: k.created_at }));
    if (this.agentId && agents.length === 0) throw new CliError('NOT_FOUND', `no keys for ${this.agentId} in ${this.keyFilePath()}`);
    const atRest = data.at_rest ? (data.at_rest as { activeKeyId?: string; keys?: Record<string, string> }) : null;
    const summary = {
      key_file: this.keyFilePath(),
      at_rest: atRest ? { active_key_id: atRest.activeKeyId, key_ids: Object.keys(atRest.keys ?? {}) } : null,
      agents,
    };
    if (format === 'json') return this.printJson(summary);
    this.print(`key file: ${summary.key_file}`);
    this.print(
      summary.at_rest ? `at-rest keys: ${summary.at_rest.key_ids.join(', ')} (active ${summary.at_rest.active_key_id})` : 'at-rest keys: none in this file',
    );
    for (const a of agents) this.print(`- ${a.agent_id}: box ${a.box} sign ${a.sign}`);
  }
}

export class KeysRotateCommand extends LinkerCommand {
  static override paths = [['keys', 'rotate']];
  static override usage = Command.Usage({
    description: "Rotate the hub's at-rest sealing key (admin)",
    details: 'New values are sealed with a new key; old values keep opening with the old ones. The hub writes the new key ring to its key file.',
    examples: [['Rotate', 'skynet-linker keys rotate']],
  });
  format = formatOption();
  async run() {
    const format = parseFormat(this.format);
    const r = await (await this.clientAs(null)).admin.keysRotate.mutate();
    if (format === 'json') this.printJson(r);
    else this.print(`active at-rest key is now ${r.activeKeyId} (${r.keyIds.length} keys in the ring)`);
  }
}
