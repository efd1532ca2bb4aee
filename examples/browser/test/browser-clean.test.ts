import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

// The main entries of the library bundle for a browser with no Node polyfills (esbuild refuses
// every `node:` import on platform 'browser'); what needs Node lives in the '/node' entries.
const here = fileURLToPath(new URL('.', import.meta.url));

async function bundle(spec: string): Promise<string> {
  const r = await build({
    stdin: { contents: `export * from '${spec}';`, resolveDir: here, loader: 'ts' },
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    conditions: ['@qbnn/source'],
    logLevel: 'silent',
  });
  return r.outputFiles[0].text;
}

describe('browser-clean entry points', () => {
  for (const pkg of ['core', 'nn', 'posteriors', 'qat', 'metrics', 'data', 'interop', 'wasm']) {
    it(`@qbnn/${pkg} bundles for the browser without Node built-ins`, { timeout: 120_000 }, async () => {
      const js = await bundle(`@qbnn/${pkg}`);
      expect(js.length).toBeGreaterThan(1000);
      expect(js).not.toMatch(/from\s*["']node:|require\(["']node:/);
    });
  }

  for (const pkg of ['nn', 'qat', 'data', 'interop']) {
    it(`@qbnn/${pkg}/node is the Node-only part (it does not bundle for the browser)`, async () => {
      await expect(bundle(`@qbnn/${pkg}/node`)).rejects.toThrow(/node:/);
    });
  }
});
