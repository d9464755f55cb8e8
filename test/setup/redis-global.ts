/**
 * Starts a private redis-server on a free port for the whole run (or uses REDIS_URL), and hands
 * its URL to tests through `inject('redisUrl')`. Tests never touch the shared 6379 instance.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { freePort, waitForRedis } from './redis-process.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let child: ChildProcess | undefined;
let dir: string | undefined;

export default async function setup(project: TestProject) {
  if (process.env.REDIS_URL) {
    project.provide('redisUrl', process.env.REDIS_URL);
    return;
  }
  const port = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'skynet-redis-'));
  child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  const failed = new Promise<never>((_, reject) => {
    child!.once('error', (err) =>
      reject(
        new Error(
          `could not start redis-server (${err.message}). Install it (apt-get install redis-server) or set REDIS_URL=redis://host:port to use a running Redis.`,
        ),
      ),
    );
  });
  const url = `redis://127.0.0.1:${port}`;
  await Promise.race([waitForRedis(url), failed]);
  project.provide('redisUrl', url);
  return async () => {
    child?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
}
