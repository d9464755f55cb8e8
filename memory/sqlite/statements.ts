/**
 * The SQL of the SQLite store, as named statements (the way the Redis store's Lua lives in
 * redis/lua/): the schema, then every statement the store prepares, each with what it binds.
 * Stream ids are `ms-seq` split into two integer columns, so the primary key orders entries the
 * way Redis orders a stream and a cursor is a row-value comparison on that key.
 */

/** Bumped when the schema changes; the store refuses a database of a newer version. */
export const SCHEMA_VERSION = 1;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- One row per stream: its newest id (what the next entry follows), length, and the highest id
-- its cap trimmed away (StreamInfo.maxDeletedId; NULL when nothing ever was).
CREATE TABLE IF NOT EXISTS streams (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  last_ms INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  length INTEGER NOT NULL,
  deleted_ms INTEGER,
  deleted_seq INTEGER
);
-- Fields as one JSON object (keeps their order; any name or value, NUL included). A rowid table:
-- entries (a sealed message is about 1 KiB) are appended at its end in dense pages, and only the
-- small index is kept in stream order (keyed by stream, a WITHOUT ROWID table interleaved every
-- inbox's appends across half-full pages: 4.6 KiB of file per message, measured).
CREATE TABLE IF NOT EXISTS entries (
  id INTEGER PRIMARY KEY,
  stream INTEGER NOT NULL,
  ms INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  fields TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_by_stream ON entries (stream, ms, seq);
CREATE TABLE IF NOT EXISTS docs (key TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hashes (key TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (key, field)) WITHOUT ROWID;
-- expires_at: ms since the epoch, NULL for never.
CREATE TABLE IF NOT EXISTS vals (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER) WITHOUT ROWID;
`;

/** Every prepared statement, by name. `?` parameters are listed in each comment, in order. */
export const SQL = {
  // meta
  getMeta: 'SELECT value FROM meta WHERE name = ?', // name
  setMeta: 'INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value', // name, value
  /** The newest id of any stream: the store's ids keep growing from there after a restart. */
  maxLastId: 'SELECT last_ms AS ms, last_seq AS seq FROM streams ORDER BY last_ms DESC, last_seq DESC LIMIT 1',

  // streams
  streamByKey: 'SELECT id, last_ms, last_seq, length, deleted_ms, deleted_seq FROM streams WHERE key = ?', // key
  insertStream: 'INSERT INTO streams (key, last_ms, last_seq, length) VALUES (?, ?, ?, 1)', // key, ms, seq
  bumpStream: 'UPDATE streams SET last_ms = ?, last_seq = ?, length = length + 1 WHERE id = ?', // ms, seq, stream
  insertEntry: 'INSERT INTO entries (stream, ms, seq, fields) VALUES (?, ?, ?, ?)', // stream, ms, seq, fields
  /** The entry at a position from the oldest (0-based): the last one a trim removes. */
  entryAtOffset: 'SELECT ms, seq FROM entries WHERE stream = ? ORDER BY ms, seq LIMIT 1 OFFSET ?', // stream, offset
  trimThrough: 'DELETE FROM entries WHERE stream = ? AND (ms, seq) <= (?, ?)', // stream, ms, seq
  setTrimmed: 'UPDATE streams SET length = ?, deleted_ms = ?, deleted_seq = ? WHERE id = ?', // length, ms, seq, stream
  readAfter: 'SELECT ms, seq, fields FROM entries WHERE stream = ? AND (ms, seq) > (?, ?) ORDER BY ms, seq LIMIT ?', // stream, ms, seq, count
  readFromStart: 'SELECT ms, seq, fields FROM entries WHERE stream = ? ORDER BY ms, seq LIMIT ?', // stream, count
  readBefore: 'SELECT ms, seq, fields FROM entries WHERE stream = ? AND (ms, seq) < (?, ?) ORDER BY ms DESC, seq DESC LIMIT ?', // stream, ms, seq, count
  readFromEnd: 'SELECT ms, seq, fields FROM entries WHERE stream = ? ORDER BY ms DESC, seq DESC LIMIT ?', // stream, count
  firstEntry: 'SELECT ms, seq FROM entries WHERE stream = ? ORDER BY ms, seq LIMIT 1', // stream
  deleteStreamEntries: 'DELETE FROM entries WHERE stream = (SELECT id FROM streams WHERE key = ?)', // key
  deleteStream: 'DELETE FROM streams WHERE key = ?', // key
  allStreams: 'SELECT id, key FROM streams ORDER BY key',
  allEntries: 'SELECT ms, seq, fields FROM entries WHERE stream = ? ORDER BY ms, seq', // stream
  insertStreamFull: 'INSERT INTO streams (key, last_ms, last_seq, length) VALUES (?, ?, ?, ?)', // key, ms, seq, length

  // versioned documents
  getDoc: 'SELECT version, value FROM docs WHERE key = ?', // key
  putDoc: 'INSERT INTO docs (key, version, value) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET version = excluded.version, value = excluded.value', // key, version, value
  deleteDoc: 'DELETE FROM docs WHERE key = ?', // key
  allDocs: 'SELECT key, version, value FROM docs ORDER BY key',

  // hashes
  hashSet: 'INSERT INTO hashes (key, field, value) VALUES (?, ?, ?) ON CONFLICT (key, field) DO UPDATE SET value = excluded.value', // key, field, value
  hashGet: 'SELECT value FROM hashes WHERE key = ? AND field = ?', // key, field
  hashExists: 'SELECT 1 FROM hashes WHERE key = ? AND field = ?', // key, field
  hashGetAll: 'SELECT field, value FROM hashes WHERE key = ?', // key
  hashDeleteField: 'DELETE FROM hashes WHERE key = ? AND field = ?', // key, field
  hashDeleteKey: 'DELETE FROM hashes WHERE key = ?', // key
  allHashes: 'SELECT key, field, value FROM hashes ORDER BY key',

  // values
  getValue: 'SELECT value FROM vals WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)', // key, now
  setValue:
    'INSERT INTO vals (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at', // key, value, expires_at
  deleteValue: 'DELETE FROM vals WHERE key = ?', // key
  purgeExpired: 'DELETE FROM vals WHERE expires_at IS NOT NULL AND expires_at <= ?', // now
  allValues: 'SELECT key, value FROM vals WHERE expires_at IS NULL OR expires_at > ? ORDER BY key', // now

  // import: everything but snapshots (files) and presence (in memory)
  clearEntries: 'DELETE FROM entries',
  clearStreams: 'DELETE FROM streams',
  clearDocs: 'DELETE FROM docs',
  clearHashes: 'DELETE FROM hashes',
  clearValues: 'DELETE FROM vals',
} as const;

export type StatementName = keyof typeof SQL;
