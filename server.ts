/** Server entry: the hub, the stores and the Node-only key file helpers. */
export { createHub } from './transport/hub.js';
export type { Hub, HubOptions } from './transport/hub.js';
export { RedisStore } from './memory/redis/store.js';
export type { RedisStoreOptions } from './memory/redis/store.js';
export { SqliteStore, DATABASE_FILE } from './memory/sqlite/store.js';
export type { SqliteStoreOptions, Durability } from './memory/sqlite/store.js';
export { DataDirInUseError } from './memory/sqlite/lock.js';
export { EmbeddedStore } from './memory/embedded/store.js';
export type { EmbeddedStoreOptions } from './memory/embedded/store.js';
export type { Store, StreamEntry, StoreDump, SnapshotInfo } from './memory/store.js';
export { createSharedMemory } from './memory/index.js';
export type { SharedMemory, SharedMemoryOptions } from './memory/index.js';
export { keyRingSealer, plainText } from './memory/sealing.js';
export type { ValueSealer } from './memory/sealing.js';
export { appRouter } from './router/app.js';
export type { AppRouter } from './router/app.js';
export { DEFAULT_KEY_FILE_NAME, writeKeyFile, readKeyFile } from './crypto/keyfile-node.js';
