/** How `connect` reads connector settings: flags, then the vendors' variables, then config.yaml. */
import { describe, expect, it } from 'vitest';
import { connectorOptions, resolveConnector, setUpConnector } from '../../bin/connector-settings.js';
import type { Config } from '../../bin/config.js';

const config: Config = {
  connectors: {
    openai: { model: 'gpt-from-config', timeout: '90s', base_url: 'https://proxy.example/v1', max_retries: 4, push_context: 'agent' },
    reviewer: { type: 'anthropic', model: 'claude-opus-4-6', system: 'Review.', timeout: 30 },
    broken: { type: 'openai', modle: 'typo' },
    ghost: { type: 'nope' },
  },
};

describe('connector settings', () => {
  it('flags win over config.yaml, durations parse, numbers are seconds', () => {
    const { def, entry } = resolveConnector('openai', config);
    expect(connectorOptions(def, entry, {}, {})).toMatchObject({
      model: 'gpt-from-config',
      timeoutMs: 90_000,
      baseUrl: 'https://proxy.example/v1',
      maxRetries: 4,
    });
    expect(connectorOptions(def, entry, { model: 'gpt-flag', timeout: '5m' }, {})).toMatchObject({ model: 'gpt-flag', timeoutMs: 300_000 });
  });

  it('the vendor base URL variable wins over config.yaml', () => {
    const { def, entry } = resolveConnector('openai', config);
    const options = connectorOptions(def, entry, {}, { OPENAI_BASE_URL: 'http://localhost:11434/v1' });
    expect(options.baseUrl).toBeUndefined(); // the connector then reads OPENAI_BASE_URL
  });

  it('an entry with type is a named connector of that type', () => {
    const { def, entry } = resolveConnector('reviewer', config);
    expect(def.name).toBe('anthropic');
    expect(connectorOptions(def, entry, {}, {})).toMatchObject({ model: 'claude-opus-4-6', system: 'Review.', timeoutMs: 30_000 });
  });

  it('bad entries and unknown names are usage errors that say where', () => {
    expect(() => resolveConnector('broken', config)).toThrow('config.yaml: connectors.broken: unknown field "modle"');
    expect(() => resolveConnector('ghost', config)).toThrow(/unknown connector "nope"; available: anthropic, openai/);
    expect(() => resolveConnector('mistral', {})).toThrow(/unknown connector "mistral"/);
  });

  it('connect flags that need a connector say so; --exec is for command connectors', async () => {
    const report = { line: () => {} };
    await expect(setUpConnector({ model: 'x' }, {}, report)).rejects.toThrow('--model needs --connector <name>');
    await expect(setUpConnector({ pushContext: true }, {}, report)).rejects.toThrow('--push-context needs --connector <name>');
    await expect(setUpConnector({ connector: 'openai', exec: 'codex exec {prompt}' }, {}, report)).rejects.toThrow(
      '--exec is for command connectors; openai calls an API (use --model)',
    );
    expect(await setUpConnector({}, {}, report)).toBeNull();
  });
});
