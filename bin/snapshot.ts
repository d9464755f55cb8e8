/** `skynet-linker snapshot create|list|restore` (admin). */
import { Command, Option } from 'clipanion';
import { LinkerCommand, parseFormat, formatOption } from './base.js';

export class SnapshotCreateCommand extends LinkerCommand {
  static override paths = [['snapshot', 'create']];
  static override usage = Command.Usage({ description: 'Save the whole state as a sealed snapshot', examples: [['Create', 'skynet-linker snapshot create']] });
  format = formatOption();
  async run() {
    const format = parseFormat(this.format);
    const info = await (await this.clientAs(null)).admin.snapshotCreate.mutate();
    if (format === 'json') this.printJson(info);
    else this.print(info.name);
  }
}

export class SnapshotListCommand extends LinkerCommand {
  static override paths = [['snapshot', 'list']];
  static override usage = Command.Usage({ description: 'List snapshots', examples: [['List', 'skynet-linker snapshot list']] });
  format = formatOption();
  async run() {
    const format = parseFormat(this.format);
    const list = await (await this.clientAs(null)).admin.snapshotList.query();
    if (format === 'json') this.printJson(list);
    else if (list.length === 0) this.print('no snapshots');
    else for (const s of list) this.print(`- ${s.name} (${s.createdAt}, ${s.bytes} bytes)`);
  }
}

export class SnapshotRestoreCommand extends LinkerCommand {
  static override paths = [['snapshot', 'restore']];
  static override usage = Command.Usage({
    description: 'Replace the whole state with a snapshot',
    details: 'Everything written since the snapshot is lost (messages, contexts, sessions, agents and tokens).',
    examples: [['Restore', 'skynet-linker snapshot restore 20261125T093500123Z']],
  });
  name = Option.String({ name: 'name' });
  async run() {
    const r = await (await this.clientAs(null)).admin.snapshotRestore.mutate({ name: this.name });
    this.print(`restored ${r.restored}`);
  }
}
