#!/usr/bin/env node
// Builds two variants of the addon in scratch directories and runs this package's tests
// against each:
//  - sanitized: AddressSanitizer + UndefinedBehaviorSanitizer (QBNN_SANITIZE=1). Node itself is
//    not built with ASan, so the ASan runtime of the same compiler is LD_PRELOADed and leak
//    detection is off (V8 and Node keep allocations to exit). Any finding aborts the run.
//  - portable: only the portable C++ (QBNN_PORTABLE=1, what aarch64 compiles), i.e. the scalar
//    path and the emulated AMX tiles, proving that build is complete and exact.
//   node packages/native-amx/scripts/test-variants.mjs [sanitized|portable]...
//   (or: pnpm --filter @qbnn/native-amx test:variants)
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoDir = join(pkgDir, '..', '..');
const require = createRequire(import.meta.url);
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['sanitized', 'portable'];

function build(name, env) {
  const work = join(tmpdir(), `qbnn-native-${name}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  cpSync(join(pkgDir, 'native'), join(work, 'native'), { recursive: true });
  // The gyp file with node-addon-api's include directory made absolute.
  const addonApi = dirname(require.resolve('node-addon-api/package.json'));
  const pattern = `"<!(node -p \\"require('node-addon-api').include_dir\\")"`;
  const gyp = readFileSync(join(pkgDir, 'binding.gyp'), 'utf8');
  if (!gyp.includes(pattern)) throw new Error('binding.gyp include_dirs pattern changed');
  writeFileSync(join(work, 'binding.gyp'), gyp.replace(pattern, JSON.stringify(addonApi)));
  const args = [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', '--release', '--jobs=max'];
  if (existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
  console.log(`test-variants: building the ${name} addon in ${work}`);
  const b = spawnSync(process.execPath, args, {
    cwd: work,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...env },
  });
  if (b.status !== 0) throw new Error(`the ${name} build failed`);
  return work;
}

function runTests(name, env) {
  const vitest = join(repoDir, 'node_modules', 'vitest', 'vitest.mjs');
  const t = spawnSync(process.execPath, [vitest, 'run', 'packages/native-amx'], {
    cwd: repoDir,
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  if (t.status !== 0)
    throw new Error(`tests failed on the ${name} addon (exit ${t.status}, signal ${t.signal})`);
}

try {
  if (wanted.includes('sanitized')) {
    if (process.platform !== 'linux') {
      console.log('test-variants: sanitized run skipped (needs Linux and a compiler with libasan)');
    } else {
      const cxx = process.env.CXX ?? 'g++';
      let libasan = '';
      try {
        libasan = execFileSync(cxx, ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
      } catch {}
      if (!libasan || !existsSync(libasan))
        throw new Error(`${cxx} has no libasan.so; install its sanitizer runtime`);
      const work = build('sanitized', { QBNN_SANITIZE: '1' });
      try {
        runTests('sanitized', {
          QBNN_NATIVE_PATH: join(work, 'build', 'Release', 'qbnn_native.node'),
          QBNN_EXPECT_SANITIZED: '1',
          LD_PRELOAD: libasan,
          ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0',
          UBSAN_OPTIONS: 'halt_on_error=1:abort_on_error=1:print_stacktrace=1',
        });
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
      console.log('test-variants: clean under AddressSanitizer + UndefinedBehaviorSanitizer');
    }
  }
  if (wanted.includes('portable')) {
    const work = build('portable', { QBNN_PORTABLE: '1' });
    try {
      runTests('portable', {
        QBNN_NATIVE_PATH: join(work, 'build', 'Release', 'qbnn_native.node'),
        QBNN_EXPECT_PORTABLE: '1',
      });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    console.log('test-variants: the portable (scalar + emulated AMX) build is exact');
  }
} catch (e) {
  console.error(`test-variants: ${e.message}`);
  process.exit(1);
}
