/** Help and usage-error wording: named value placeholders and the nearest option to a typo. */

/** Placeholders for options whose name alone does not say what value they take. */
const PLACEHOLDERS: Record<string, string> = {
  '--server': 'url',
  '--redis': 'url',
  '--cors-origin': 'origin',
  '--config': 'file',
  '--context-file': 'file',
  '--payload-file': 'file',
  '--output': 'file',
  '--tls-cert': 'pem',
  '--tls-key': 'pem',
  '--data-dir': 'dir',
  '--content': 'text',
  '--timeout': 'duration',
  '--ttl': 'duration',
  '--snapshot-interval': 'seconds',
  '--drain-timeout': 'seconds',
  '--format': 'text|json',
  '--log-format': 'text|json',
  '--log-level': 'level',
  '--to': 'agent-id',
  '--reply-to': 'message-id',
  '--session': 'session-id',
  '--priority': '1-10',
  '--exec': 'template',
  '--expected-version': 'n',
  '--participants': 'a,b',
  '--scopes': 'agent,monitor,admin',
};

/** `[--port #0]` → `[--port <port>]`, `--server #0` → `--server <url>`. */
export function withPlaceholders(usage: string): string {
  return usage.replace(/(--[a-z][a-z0-9-]*)((?: #\d+)+)/g, (_all, name: string) => `${name} <${PLACEHOLDERS[name] ?? name.slice(2)}>`);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** The option of `names` closest to a mistyped one, if it is close enough to be what was meant. */
export function nearestOption(typed: string, names: string[]): string | null {
  const bare = typed.replace(/=.*$/, '');
  let best: { name: string; d: number } | null = null;
  for (const name of new Set(names)) {
    const d = editDistance(bare, name);
    if (!best || d < best.d) best = { name, d };
  }
  // A third of the name, at least 2 edits: `--prot` finds `--port`, `--bogus` finds nothing.
  return best && best.d <= Math.max(2, Math.floor(bare.length / 3)) ? best.name : null;
}
