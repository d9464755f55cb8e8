/**
 * Off-thread sealing for the send path. Sealing a message (pure-JS XChaCha20-Poly1305 plus
 * base64) was the largest single cost of a send on the event loop; here the messages a turn of
 * the event loop seals go to one worker thread as one batch, and the event loop serves other
 * agents meanwhile. One thread per process, started on first use and unref'd.
 *
 * - Order: results resolve in request order (one FIFO, one thread), so a sender's messages reach
 *   the store in the order it sent them.
 * - Small turns inline: a turn whose texts add up to at most `INLINE_BATCH_BYTES`, with nothing
 *   in flight, is sealed on the event loop. Since crypto/aead.ts halved the cost of a seal, a
 *   thread round trip (postMessage, waking the thread, the reply event, and one more busy thread
 *   on the cores) costs more than it saves for a few KB: interleaved bench runs on Redis, 2 cores,
 *   gave 115-147 µs of CPU per message inline against 130-175 through the thread. The thread
 *   takes the turns where it pays: large messages, and bursts.
 * - Keys: the thread holds a copy of each ring, refreshed before the first batch after a change
 *   (rotation, retirement).
 * - Failure: if the thread cannot start or dies, everything it held and everything after is
 *   sealed inline; nothing is lost and the bytes are the same.
 */
import { Worker } from 'node:worker_threads';
import type { KeyRing } from '../crypto/keyring.js';
import type { SealThreadReply, SealThreadRequest } from './seal-thread.js';

/** Turns of up to this many bytes of text, with nothing in flight, are sealed inline. */
export const INLINE_BATCH_BYTES = 16 * 1024;

interface Pending {
  ring: KeyRing;
  ringId: number;
  text: string;
  ad: string;
  resolve: (sealed: string) => void;
  reject: (err: Error) => void;
}

/** A KeyRing's `sealString`, with Node's native UTF-8 and base64 (the same text). */
export function sealNative(ring: KeyRing, text: string, ad: string): string {
  const sealed = ring.seal(Buffer.from(text, 'utf8'), ad);
  return Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length).toString('base64');
}

/** Where the thread's compiled entry is: beside this module once built, or in dist/ when run from sources (tests). */
function threadEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../dist/memory/seal-thread.js', here) : new URL('./seal-thread.js', here);
}

class SealThread {
  private worker: Worker | null = null;
  private broken = false;
  private queue: Pending[] = [];
  private readonly inFlight = new Map<number, Pending[]>();
  private seq = 0;
  private flushScheduled = false;
  private readonly ringIds = new WeakMap<KeyRing, number>();
  /** Ring id -> what the thread was last sent (active key id and key ids). */
  private readonly sentStamps = new Map<number, string>();
  private nextRingId = 1;
  /** Batches sent to the thread (for tests and metrics). */
  batches = 0;

  /** Batches the thread holds now. */
  get inFlightBatches(): number {
    return this.inFlight.size;
  }

  seal(ring: KeyRing, text: string, ad: string): Promise<string> {
    if (this.broken) return Promise.resolve(sealNative(ring, text, ad));
    let ringId = this.ringIds.get(ring);
    if (ringId === undefined) {
      ringId = this.nextRingId++;
      this.ringIds.set(ring, ringId);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ ring, ringId, text, ad, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    let bytes = 0;
    for (const item of batch) bytes += Buffer.byteLength(item.text, 'utf8');
    // Only with nothing in flight: an inline seal must not overtake the thread's batches.
    if (this.broken || (this.inFlight.size === 0 && bytes <= INLINE_BATCH_BYTES)) {
      this.settleInline(batch);
      return;
    }
    const worker = this.start();
    if (!worker) {
      this.settleInline(batch);
      return;
    }
    // Each ring of the batch once (a batch almost always has one): the thread gets its keys anew
    // when they changed since the last batch.
    const checked = new Set<number>();
    for (const item of batch) {
      if (checked.has(item.ringId)) continue;
      checked.add(item.ringId);
      const stamp = `${item.ring.activeKeyId}:${item.ring.keyIds.join(',')}`;
      if (this.sentStamps.get(item.ringId) !== stamp) {
        this.sentStamps.set(item.ringId, stamp);
        worker.postMessage({ kind: 'keys', ring: item.ringId, keys: item.ring.export() } satisfies SealThreadRequest);
      }
    }
    const seq = this.seq++;
    // Held work keeps the process alive; an idle thread does not.
    if (this.inFlight.size === 0) worker.ref();
    this.inFlight.set(seq, batch);
    this.batches++;
    // The texts as UTF-8 back to back in one buffer that is moved to the thread, not copied.
    const texts = new ArrayBuffer(bytes);
    const view = Buffer.from(texts);
    const ends = new Array<number>(batch.length);
    let at = 0;
    for (let i = 0; i < batch.length; i++) ends[i] = at += view.write(batch[i]!.text, at, 'utf8');
    worker.postMessage({ kind: 'seal', seq, rings: batch.map((p) => p.ringId), texts, ends, ads: batch.map((p) => p.ad) } satisfies SealThreadRequest, [texts]);
  }

  private settleInline(batch: Pending[]): void {
    for (const item of batch) {
      try {
        item.resolve(sealNative(item.ring, item.text, item.ad));
      } catch (err) {
        item.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  private start(): Worker | null {
    if (this.worker) return this.worker;
    try {
      const worker = new Worker(threadEntry());
      worker.on('message', (reply: SealThreadReply) => this.onReply(reply));
      worker.on('error', () => this.fail());
      worker.on('exit', () => this.fail());
      // After the listeners: adding a 'message' listener refs the worker's port again.
      worker.unref();
      this.worker = worker;
      return worker;
    } catch {
      this.broken = true;
      return null;
    }
  }

  private onReply(reply: SealThreadReply): void {
    const batch = this.inFlight.get(reply.seq);
    if (!batch) return;
    this.inFlight.delete(reply.seq);
    if (this.inFlight.size === 0) this.worker?.unref();
    if ('error' in reply) {
      // The thread refused (it should not): the same work, inline, says what is wrong if anything.
      this.settleInline(batch);
      return;
    }
    const sealed = Buffer.from(reply.sealed);
    for (let i = 0, start = 0; i < batch.length; i++) {
      const end = reply.ends[i]!;
      batch[i]!.resolve(sealed.toString('base64', start, end));
      start = end;
    }
  }

  /** The thread is gone: what it held and what comes next is sealed inline, in order. */
  private fail(): void {
    if (this.broken) return;
    this.broken = true;
    this.worker = null;
    const held = [...this.inFlight.keys()].sort((a, b) => a - b).flatMap((seq) => this.inFlight.get(seq)!);
    this.inFlight.clear();
    this.settleInline(held);
  }

  /** Stops the thread (tests): later seals run inline. */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (worker) await worker.terminate();
    this.fail();
  }
}

let thread: SealThread | null = null;

/** The process's sealing thread, created on first use. */
export function sealThread(): SealThread {
  thread ??= new SealThread();
  return thread;
}

export type { SealThread };
