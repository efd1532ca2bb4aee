#!/usr/bin/env node
// Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer (QBNN_SANITIZE=1) in a
// scratch directory and runs this package's tests against it. Node itself is not built with
// ASan, so the ASan runtime of the same compiler is LD_PRELOADed and leak detection is off
// (V8 and Node keep allocations to exit). Any ASan report or UBSan finding fails the run.
//   node packages/native-amx/scripts/test-sanitized.mjs   (or: pnpm --filter @qbnn/native-amx test:sanitize)
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoDir = join(pkgDir, '..', '..');
const require = createRequire(import.meta.url);

if (process.platform !== 'linux') {
  console.log('test-sanitized: skipped (needs Linux and gcc/clang with libasan)');
  process.exit(0);
}
const cxx = process.env.CXX ?? 'g++';
let libasan;
try {
  libasan = execFileSync(cxx, ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
} catch {
  libasan = '';
}
if (!libasan || !existsSync(libasan)) {
  console.error(`test-sanitized: ${cxx} has no libasan.so; install the compiler's sanitizer runtime`);
  process.exit(1);
}

// A scratch copy of the sources with a gyp file whose paths are absolute.
const work = join(tmpdir(), `qbnn-native-asan-${process.pid}`);
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
cpSync(join(pkgDir, 'native'), join(work, 'native'), { recursive: true });
const addonApi = dirname(require.resolve('node-addon-api/package.json'));
const gyp = readFileSync(join(pkgDir, 'binding.gyp'), 'utf8').replace(
  `"<!(node -p \\"require('node-addon-api').include_dir\\")"`,
  JSON.stringify(addonApi),
);
if (gyp.includes('<!(node -p \\"require(')) throw new Error('binding.gyp include_dirs pattern changed');
writeFileSync(join(work, 'binding.gyp'), gyp);

const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const args = [nodeGyp, 'rebuild', '--release', '--jobs=max'];
if (existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
console.log(`test-sanitized: building with ASan + UBSan in ${work}`);
const b = spawnSync(process.execPath, args, {
  cwd: work,
  stdio: 'inherit',
  env: { ...process.env, QBNN_SANITIZE: '1' },
});
if (b.status !== 0) {
  console.error('test-sanitized: the sanitized build failed');
  process.exit(1);
}
const addonPath = join(work, 'build', 'Release', 'qbnn_native.node');

const vitest = join(repoDir, 'node_modules', 'vitest', 'vitest.mjs');
const t = spawnSync(process.execPath, [vitest, 'run', 'packages/native-amx'], {
  cwd: repoDir,
  stdio: 'inherit',
  env: {
    ...process.env,
    QBNN_NATIVE_PATH: addonPath,
    QBNN_EXPECT_SANITIZED: '1',
    LD_PRELOAD: libasan,
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0',
    UBSAN_OPTIONS: 'halt_on_error=1:abort_on_error=1:print_stacktrace=1',
  },
});
rmSync(work, { recursive: true, force: true });
if (t.status !== 0) {
  console.error(`test-sanitized: tests failed under ASan/UBSan (exit ${t.status}, signal ${t.signal})`);
  process.exit(1);
}
console.log('test-sanitized: clean under AddressSanitizer + UndefinedBehaviorSanitizer');
