/**
 * WAL checkpoints off the event loop. A checkpoint copies the WAL back into the database file and
 * fsyncs both: run by the hub's own connection (SQLite's auto-checkpoint, every 1,000 pages) it
 * stalled the event loop for the fsyncs, several times a second under load. Here a worker thread
 * holds a second connection and runs PASSIVE checkpoints (they never block the writer) when asked;
 * the hub's connection has auto-checkpoint off and only appends to the WAL.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The thread's code (eval'd: no file to find from sources or from dist/). */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { timeout: 10000 });
db.pragma('synchronous = ' + workerData.synchronous);
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  let error = null;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    error = String(err && err.message || err);
  }
  parentPort.postMessage({ done: true, error });
});
`;

/** How often at most a checkpoint is asked for while writes go on. */
const INTERVAL_MS = 200;

export class Checkpointer {
  private readonly worker: Worker;
  private running = false;
  private pending = false;
  private lastAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly exited: Promise<void>;
  /** The last checkpoint error (the next one may succeed; the WAL just grows meanwhile). */
  lastError: string | null = null;

  constructor(path: string, synchronous: 'NORMAL' | 'FULL') {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(THREAD, { eval: true, workerData: { module, path, synchronous } });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (m: { error: string | null }) => {
      this.running = false;
      this.lastError = m.error;
      if (this.pending) this.schedule();
    });
    this.worker.on('error', (err) => {
      this.lastError = err.message;
    });
    this.worker.unref();
  }

  /** Called after each commit: a checkpoint runs soon (at most one at a time, one per INTERVAL_MS). */
  wrote(): void {
    this.pending = true;
    if (!this.running && !this.timer) this.schedule();
  }

  private schedule(): void {
    const wait = Math.max(0, this.lastAt + INTERVAL_MS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pending = false;
      this.running = true;
      this.lastAt = Date.now();
      this.worker.postMessage('checkpoint');
    }, wait);
    this.timer.unref();
  }

  /** Stops the thread once its checkpoint (if any) is done; its connection is closed first. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    // Referenced again while it closes, or a process with nothing else to do would exit first.
    this.worker.ref();
    this.worker.postMessage('close');
    await this.exited;
  }
}
