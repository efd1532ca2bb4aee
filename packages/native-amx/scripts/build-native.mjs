#!/usr/bin/env node
// Builds the native addon from source with node-gyp and the machine's C++ compiler.
// Never fails the surrounding install/build: on failure it records the reason in
// build/native-status.json, and importing @qbnn/native-amx reports it (qbnn then runs on the
// JS reference kernels). Set QBNN_NATIVE_STRICT=1 to make a failed build fail the command.
// Set QBNN_SANITIZE=1 for an AddressSanitizer + UBSan build, QBNN_NATIVE_SKIP=1 to skip.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(pkgDir, 'build');
const statusFile = join(buildDir, 'native-status.json');
const require = createRequire(import.meta.url);

function record(status) {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(statusFile, `${JSON.stringify({ ...status, time: new Date().toISOString() }, null, 2)}\n`);
}

if (process.env.QBNN_NATIVE_SKIP === '1') {
  record({ ok: false, reason: 'build skipped (QBNN_NATIVE_SKIP=1)' });
  process.exit(0);
}

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch (e) {
  record({ ok: false, reason: `node-gyp not installed: ${e.message}` });
  process.exit(0);
}

// Node's headers ship with Debian's nodejs package under /usr/include/node: point node-gyp
// there so nothing is downloaded. Otherwise node-gyp uses its own cache/download rules.
const args = [gyp, 'rebuild', '--release', `--jobs=${process.env.QBNN_NATIVE_JOBS ?? 'max'}`];
if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h'))
  args.push('--nodedir=/usr');
const wantIncremental = existsSync(join(buildDir, 'Makefile')) && process.env.QBNN_NATIVE_REBUILD !== '1';
if (wantIncremental) args[1] = 'build';

const t0 = Date.now();
// A full rebuild prints megabytes of compiler notes (GCC's AVX-512 headers): room for them, or
// spawnSync fails with ENOBUFS and a good build reads as a failed one.
const MAX_BUFFER = 256 << 20;
let r = spawnSync(process.execPath, args, {
  cwd: pkgDir,
  stdio: ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
  maxBuffer: MAX_BUFFER,
});
if (r.status !== 0 && wantIncremental) {
  args[1] = 'rebuild';
  r = spawnSync(process.execPath, args, {
    cwd: pkgDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    maxBuffer: MAX_BUFFER,
  });
}
const seconds = (Date.now() - t0) / 1000;
if (r.status === 0) {
  record({ ok: true, sanitize: process.env.QBNN_SANITIZE === '1', seconds });
  console.log(`@qbnn/native-amx: native addon built in ${seconds.toFixed(1)} s`);
} else {
  const tail = `${r.stdout ?? ''}\n${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`
    .trim()
    .split('\n')
    .slice(-25);
  record({ ok: false, reason: `node-gyp failed (exit ${r.status})`, log: tail });
  console.warn(
    `@qbnn/native-amx: native build FAILED; the package will load without it.\n${tail.join('\n')}`,
  );
  if (process.env.QBNN_NATIVE_STRICT === '1') process.exit(1);
}
