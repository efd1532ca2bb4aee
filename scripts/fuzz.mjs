#!/usr/bin/env node
// A longer run of the property-based fuzz suites than CI's (issue 17):
//   pnpm fuzz [--runs N] [--seed S] [--minutes M] [vitest filters...]
// runs every fuzz test file with N cases a property (default 5000) from seed S (default: random,
// printed so a failure can be replayed) and fails if the whole run takes more than M minutes
// (default 30): a hang is a finding too. Filters narrow the files (e.g. `metrics`).
import { spawn } from 'node:child_process';

const FILES = [
  'packages/metrics/test/fuzz.test.ts',
  'packages/nn/test/fuzz.test.ts',
  'packages/posteriors/test/fuzz.test.ts',
  'packages/core/test/quant-fuzz.test.ts',
  'packages/data/test/idx-hostile.test.ts',
  'packages/qat/test/fuzz.test.ts',
  'apps/cli/test/args.fuzz.test.ts',
];

const args = process.argv.slice(2);
const take = (flag, fallback) => {
  const i = args.indexOf(flag);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  if (v === undefined || !/^\d+$/.test(v)) {
    console.error(`fuzz: ${flag} needs a non-negative integer, got ${v}`);
    process.exit(2);
  }
  return Number(v);
};
const runs = take('--runs', 5000);
const seed = take('--seed', Math.floor(Math.random() * 2 ** 31));
const minutes = take('--minutes', 30);
const files = args.length > 0 ? FILES.filter((f) => args.some((a) => f.includes(a))) : FILES;
if (files.length === 0) {
  console.error(`fuzz: no fuzz file matches ${args.join(' ')} (files: ${FILES.join(', ')})`);
  process.exit(2);
}

console.log(`fuzz: ${runs} runs a property, seed ${seed}, limit ${minutes} min: ${files.join(' ')}`);
const child = spawn('pnpm', ['exec', 'vitest', 'run', '--testTimeout', String(minutes * 60_000), ...files], {
  stdio: 'inherit',
  detached: true, // its own process group, so a hung run is killed with its vitest workers
  env: { ...process.env, QBNN_FUZZ_RUNS: String(runs), QBNN_FUZZ_SEED: String(seed) },
});
const timer = setTimeout(() => {
  console.error(`fuzz: still running after ${minutes} min with seed ${seed}: a hang? (killing the run)`);
  process.kill(-child.pid, 'SIGKILL');
}, minutes * 60_000);
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  if (code !== 0)
    console.error(`fuzz: FAILED (${signal ?? `exit ${code}`}); replay with --seed ${seed} --runs ${runs}`);
  else console.log(`fuzz: passed, seed ${seed}`);
  process.exit(code ?? 1);
});
