// The built package in plain node (not only under vitest), and the generated registration files.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = existsSync(join(pkg, 'dist/backend/index.js'));

describe('plain node on dist/', () => {
  if (!built) console.warn('backend-dist.test: packages/core/dist is absent (run pnpm build); skipping');
  it.skipIf(!built)('initBackend from dist picks wasm and a conv gradient matches finite differences', () => {
    const out = execFileSync(process.execPath, [join(pkg, 'scripts/dist-smoke.mjs')], {
      cwd: pkg,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const res = JSON.parse(out.trim().split('\n').pop() ?? '{}');
    expect(res).toMatchObject({ ok: true, oneInstance: true, chained: true, backend: 'wasm' });
    expect(res.gradientCount).toBeGreaterThanOrEqual(95);
  });
});

describe('generated files', () => {
  it('gradients.gen.ts and chained-ops.gen.ts match what scripts/gen-gradients.mjs produces now', () => {
    // Throws (exit 1) when the installed tfjs-core or the script changed without regenerating.
    const out = execFileSync(process.execPath, [join(pkg, 'scripts/gen-gradients.mjs'), '--check'], {
      cwd: pkg,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(out).toContain('gradients.gen.ts is up to date');
    expect(out).toContain('chained-ops.gen.ts is up to date');
  });
});
