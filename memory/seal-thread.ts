/**
 * The sealing thread (a worker_threads entry, see seal-pool.ts): seals batches of messages with
 * copies of the hub's key rings, so XChaCha20-Poly1305 (pure JS, crypto/aead.ts) runs beside the
 * event loop instead of on it. Same bytes as `KeyRing.sealString`.
 */
import { parentPort } from 'node:worker_threads';
import { KeyRing, type KeyRingExport } from '../crypto/keyring.js';

/**
 * A batch travels as one transferred buffer each way (no structured clone of strings): the UTF-8
 * texts back to back (`ends[i]` is where text i ends), and back the sealed values back to back.
 */
export type SealThreadRequest =
  | { kind: 'keys'; ring: number; keys: KeyRingExport }
  | { kind: 'seal'; seq: number; rings: number[]; texts: ArrayBuffer; ends: number[]; ads: string[] };

export type SealThreadReply = { seq: number; sealed: ArrayBuffer; ends: number[] } | { seq: number; error: string };

const rings = new Map<number, KeyRing>();

function forget(id: number): void {
  const ring = rings.get(id);
  if (!ring) return;
  for (const keyId of ring.keyIds) if (keyId !== ring.activeKeyId) ring.retire(keyId);
  rings.delete(id);
}

parentPort!.on('message', (msg: SealThreadRequest) => {
  if (msg.kind === 'keys') {
    forget(msg.ring);
    rings.set(msg.ring, KeyRing.fromExport(msg.keys));
    return;
  }
  try {
    const texts = new Uint8Array(msg.texts);
    const parts: Uint8Array[] = new Array<Uint8Array>(msg.ends.length);
    let total = 0;
    for (let i = 0, start = 0; i < msg.ends.length; i++) {
      const ring = rings.get(msg.rings[i]!);
      if (!ring) throw new Error(`sealing thread: no keys for ring ${msg.rings[i]}`);
      const end = msg.ends[i]!;
      parts[i] = ring.seal(texts.subarray(start, end), msg.ads[i]!);
      total += parts[i]!.length;
      start = end;
    }
    const sealed = new Uint8Array(total);
    const ends = new Array<number>(parts.length);
    let at = 0;
    for (let i = 0; i < parts.length; i++) {
      sealed.set(parts[i]!, at);
      ends[i] = at += parts[i]!.length;
    }
    parentPort!.postMessage({ seq: msg.seq, sealed: sealed.buffer, ends } satisfies SealThreadReply, [sealed.buffer]);
  } catch (err) {
    parentPort!.postMessage({ seq: msg.seq, error: err instanceof Error ? err.message : String(err) } satisfies SealThreadReply);
  }
});
