import { execFileSync, spawnSync } from 'node:child_process';

const PYTHON = '/usr/bin/python3';

/**
 * Whether Debian's PyTorch is importable. Under CI=true its absence is an error (CI installs it
 * with `bash scripts/setup.sh --test`), so the interop tests can never skip silently there.
 */
export function haveTorch(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
  if (r.status === 0) return true;
  if (process.env.CI === 'true') {
    throw new Error(`${PYTHON} cannot import torch under CI=true: run 'bash scripts/setup.sh --test'`);
  }
  console.warn(
    `interop tests skipped: ${PYTHON} cannot import torch (bash scripts/setup.sh --test installs it)`,
  );
  return false;
}

/**
 * Runs a Python script and returns its stdout; with `torch` (default) torch is imported first and
 * limited to one thread.
 */
export function python(script: string, opts: { torch?: boolean } = {}): string {
  const prelude = (opts.torch ?? true) ? 'import torch\ntorch.set_num_threads(1)\n' : '';
  return execFileSync(PYTHON, ['-c', `${prelude}${script}`], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
}
