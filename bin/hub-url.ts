/**
 * Which hub a client command talks to, and whether it answers. The URL comes from --server, then
 * SKYNET_LINKER_SERVER, then config.yaml (`server.url`, else `server.port`), then the URL the last
 * `serve` on this machine recorded in admin.json, then the default: a hub started with `--port
 * 8021` is found without a flag. The probe asks `GET /health` (same port as /ws), so a hub whose
 * Redis is down, a port held by something else and a TLS mismatch each get their own message.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { CliError } from './errors.js';

export const DEFAULT_SERVER = 'ws://localhost:8000/ws';

export interface HubUrl {
  url: string;
  /** Where the URL came from, said in errors when the user did not type it. */
  source: 'flag' | 'env' | 'config' | 'local-hub' | 'default';
}

/** Refuses anything but ws://, wss://, http:// and https:// URLs, with a message naming the flag. */
export function checkHubUrl(url: string, from: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError('USAGE', `${from}: "${url}" is not a URL (expected e.g. ws://localhost:8000/ws or http://localhost:8000)`);
  }
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(parsed.protocol)) {
    throw new CliError('USAGE', `${from}: "${url}" must start with ws://, wss://, http:// or https:// (e.g. ws://localhost:8000/ws)`);
  }
  return parsed;
}

function sourceNote(hub: HubUrl, adminPath: string): string {
  if (hub.source === 'local-hub') return ` (the URL the last \`skynet-linker serve\` on this machine recorded in ${adminPath})`;
  if (hub.source === 'default') return ' (the default)';
  if (hub.source === 'config') return ' (from config.yaml)';
  return '';
}

type Health = { status?: string; store?: { kind?: string; reachable?: boolean } };

function parseHealth(text: string): Health | null {
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Health) : null;
  } catch {
    return null;
  }
}

/** `GET url` with node:http(s) (fetch refuses some ports, e.g. 6000, and hides error codes). */
function getHealth(url: string, timeoutMs: number): Promise<{ status: number; body: string } | { error: string } | 'timeout'> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = get(url, { method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 64 * 1024) body += chunk;
      });
      res.on('end', () => finish({ status: res.statusCode ?? 0, body }));
      res.on('error', (err: NodeJS.ErrnoException) => finish({ error: err.code ?? err.message }));
    });
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    let done = false;
    const finish = (r: { status: number; body: string } | { error: string } | 'timeout') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    req.on('error', (err: NodeJS.ErrnoException) => finish({ error: err.code ?? err.message }));
    req.end();
  });
}

/**
 * Fails within `timeoutMs` when nothing usable answers at the hub URL: exit 5 (unreachable, or
 * its store is down), exit 2 for a URL that is not one.
 */
export async function probeHub(hub: HubUrl, opts: { adminPath: string; timeoutMs?: number }): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 4000;
  const parsed = checkHubUrl(hub.url, hub.source === 'flag' ? '--server' : hub.source === 'env' ? 'SKYNET_LINKER_SERVER' : 'server.url');
  const tls = parsed.protocol === 'wss:' || parsed.protocol === 'https:';
  const health = `${tls ? 'https' : 'http'}://${parsed.host}/health`;
  const where = `${hub.url}${sourceNote(hub, opts.adminPath)}`;
  const hint = '(is `skynet-linker serve` running? set --server or SKYNET_LINKER_SERVER)';
  const res = await getHealth(health, timeoutMs);
  if (res === 'timeout') throw new CliError('UNREACHABLE', `cannot reach the hub at ${where}: no answer within ${timeoutMs} ms ${hint}`);
  if ('error' in res) {
    const code = res.error;
    if (tls && (code === 'EPROTO' || /ERR_SSL|wrong version number/i.test(code))) {
      throw new CliError(
        'UNREACHABLE',
        `cannot reach the hub at ${where}: the TLS handshake failed (${code}); the hub serves plain ws:// and http:// unless started with --tls-cert: try ${hub.url.replace(/^wss:/, 'ws:').replace(/^https:/, 'http:')}`,
      );
    }
    if (tls && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
      throw new CliError(
        'UNREACHABLE',
        `cannot reach the hub at ${where}: its TLS certificate is not trusted (${code}); point NODE_EXTRA_CA_CERTS at the CA that signed it`,
      );
    }
    if (!tls && /ECONNRESET|UND_ERR_SOCKET|other side closed/i.test(code)) {
      throw new CliError(
        'UNREACHABLE',
        `cannot reach the hub at ${where}: the connection was closed without an answer (${code}); a hub started with --tls-cert speaks wss:// and https://`,
      );
    }
    throw new CliError('UNREACHABLE', `cannot reach the hub at ${where}: ${code} ${hint}`);
  }
  const body = parseHealth(res.body);
  if (res.status === 503 && body?.store?.reachable === false) {
    throw new CliError(
      'UNREACHABLE',
      `SERVICE_UNAVAILABLE: the hub at ${hub.url} is up but its store (${body.store.kind ?? 'Redis'}) is unreachable; retry once it is back`,
    );
  }
  if (res.status !== 200 || typeof body?.status !== 'string') {
    throw new CliError(
      'UNREACHABLE',
      `something answers at ${where}, but not a Skynet Linker hub (GET /health: HTTP ${res.status}); check the port (\`serve\` prints its URL)`,
    );
  }
}

/** Errors of the WebSocket client when the hub closed the connection before answering. */
export function isClosedConnection(err: unknown): boolean {
  return err instanceof Error && /Active connection is not open|WebSocket closed|Closed before connection was established|Unable to connect/i.test(err.message);
}
