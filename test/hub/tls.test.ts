/** TLS: the hub serves wss:// and https:// with a certificate and key given as PEM files. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestHub, type TestHub } from './harness.js';
import { createLinkerClient } from '../../clients/client.js';

describe('TLS', () => {
  let dir: string;
  let t: TestHub;
  let cert: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skynet-tls-'));
    // A throwaway self-signed certificate for 127.0.0.1, made with the system's openssl.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    t = await startTestHub('embedded', { tls: { certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem') } });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('advertises wss:// and https:// URLs', () => {
    expect(t.hub.url).toBe(`wss://127.0.0.1:${t.hub.port}/ws`);
    expect(t.hub.httpUrl).toBe(`https://127.0.0.1:${t.hub.port}`);
  });

  it('answers /health over https', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      request(`${t.hub.httpUrl}/health`, { ca: cert }, (res) => {
        let data = '';
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve(data));
      })
        .on('error', reject)
        .end();
    });
    expect(JSON.parse(body)).toMatchObject({ status: 'ok', store: { kind: 'embedded', reachable: true } });
  });

  it('carries typed calls over wss with the certificate trusted', async () => {
    const token = await t.addAgent('tls_agent');
    class TrustingWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { ca: cert });
      }
    }
    const { trpc, close } = createLinkerClient({ url: t.hub.url, token, WebSocket: TrustingWebSocket });
    try {
      expect(await trpc.agents.whoami.query()).toEqual({ agent_id: 'tls_agent', scopes: ['agent'] });
    } finally {
      await close();
    }
  });

  it('refuses a client that does not trust the certificate', async () => {
    const ws = new WebSocket(t.hub.url);
    const error = await new Promise<Error>((resolve) => ws.once('error', resolve));
    expect(error.message).toMatch(/self[- ]signed certificate/);
  });
});
