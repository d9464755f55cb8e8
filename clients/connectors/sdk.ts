/**
 * Vendor SDKs are optional peer dependencies: a panel that installs skynet-linker for its typed
 * client does not pull 60 MB of SDKs it never runs. Each API connector loads its SDK when it is
 * created, through `loadSdk`, which turns a missing package into one clear error naming what to
 * install; `sdkInstalled` lets `connectors list` say so before anyone tries.
 */
import { ConnectorConfigError } from './types.js';

/** The SDK each built-in API connector loads, with the version this build is tested against. */
export const CONNECTOR_SDKS: Readonly<Record<string, { package: string; version: string }>> = {
  anthropic: { package: '@anthropic-ai/sdk', version: '1.13.0' },
  openai: { package: 'openai', version: '6.49.0' },
  perplexity: { package: 'openai', version: '6.49.0' },
  gemini: { package: '@google/genai', version: '1.52.0' },
};

function installHint(pkg: string): string {
  const version = Object.values(CONNECTOR_SDKS).find((s) => s.package === pkg)?.version;
  return `npm install ${pkg}${version ? `@${version}` : ''}`;
}

function isMissing(err: unknown, pkg: string): boolean {
  const e = err as { code?: string; message?: string } | null;
  return (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') && (e.message ?? '').includes(`'${pkg}'`);
}

/**
 * Runs `load` (a literal `import('<pkg>')`, so bundlers and TypeScript see it) and rejects with a
 * {@link ConnectorConfigError} naming the package when it is not installed.
 */
export async function loadSdk<T>(connector: string, pkg: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (isMissing(err, pkg)) {
      throw new ConnectorConfigError(
        `${connector}: the ${pkg} package is not installed (it is an optional peer dependency of skynet-linker): ${installHint(pkg)}`,
      );
    }
    throw err;
  }
}

/** Whether `pkg` can be imported from here (without loading it). */
export function sdkInstalled(pkg: string): boolean {
  try {
    import.meta.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
