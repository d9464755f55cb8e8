/**
 * The sealing thread (a worker_threads entry, see seal-pool.ts): seals batches of messages with
 * copies of the hub's key rings, so XChaCha20-Poly1305 (pure JS, about 12 µs per 700-byte
 * message) runs beside the event loop instead of on it. Same bytes as `KeyRing.sealString`.
 */
import { parentPort } from 'node:worker_threads';
import { KeyRing, type KeyRingExport } from '../crypto/keyring.js';
import { sealNative } from './seal-pool.js';

export type SealThreadRequest =
  | { kind: 'keys'; ring: number; keys: KeyRingExport }
  | { kind: 'forget'; ring: number }
  | { kind: 'seal'; seq: number; rings: number[]; texts: string[]; ads: string[] };

export type SealThreadReply = { seq: number; sealed: string[] } | { seq: number; error: string };

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
  if (msg.kind === 'forget') {
    forget(msg.ring);
    return;
  }
  try {
    const sealed = new Array<string>(msg.texts.length);
    for (let i = 0; i < msg.texts.length; i++) {
      const ring = rings.get(msg.rings[i]!);
      if (!ring) throw new Error(`sealing thread: no keys for ring ${msg.rings[i]}`);
      sealed[i] = sealNative(ring, msg.texts[i]!, msg.ads[i]!);
    }
    parentPort!.postMessage({ seq: msg.seq, sealed } satisfies SealThreadReply);
  } catch (err) {
    parentPort!.postMessage({ seq: msg.seq, error: err instanceof Error ? err.message : String(err) } satisfies SealThreadReply);
  }
});
