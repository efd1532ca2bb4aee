import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type FlagSpec, parseFlags, UsageError } from '../src/args.js';
import { COMMANDS } from '../src/cli.js';
import { run } from './run.js';

describe('qbnn command line', () => {
  test('--help lists every command; <cmd> --help lists its flags', async () => {
    const h = await run('--help');
    expect(h.code).toBe(0);
    for (const c of ['demo', 'train', 'quantize', 'eval', 'report', 'sweep'])
      expect(h.out).toContain(`  ${c}`);
    for (const c of COMMANDS) {
      const r = await run(c.name, '--help');
      expect(r.code).toBe(0);
      for (const flag of Object.keys(c.flags)) expect(r.out).toContain(`--${flag}`);
    }
    expect((await run('quantize', '--help')).out).toMatch(/--mode\s+.*one of ptq\|qat/);
  });

  test('no command prints the help and fails; an unknown command names the commands', async () => {
    const none = await run();
    expect(none.code).toBe(2);
    expect(none.out).toContain('usage: qbnn <command>');
    const bad = await run('trian');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("unknown command 'trian'");
    expect(bad.err).toContain('demo, train, quantize, eval, report, sweep');
  });

  test('bad flag values: exit 2 with a message naming the flag and the allowed values', async () => {
    const cases: [string[], RegExp][] = [
      [['quantize', '--mode', 'int4'], /--mode must be one of ptq, qat; got 'int4'/],
      [['quantize', '--checkpoint', 'x', '--wbits', '9'], /--wbits must be in \[2, 8\]; got 9/],
      [['quantize', '--wbits', 'eight'], /--wbits must be an integer; got 'eight'/],
      [['train', '--epochs', '0'], /--epochs must be in \[1, 1000\]; got 0/],
      [['train', '--model', 'vgg'], /--model must be one of lenet5, mlp; got 'vgg'/],
      [['train', '--data', 'cifar'], /--data must be one of mnist, fashion-mnist; got 'cifar'/],
      [
        ['eval', '--ood', 'svhn'],
        /--ood must be one of auto, fashion-mnist, shifted, none or a \.pt \/ \.safetensors file; got 'svhn'/,
      ],
      [
        ['quantize', '--checkpoint', 'x', '--data', 'cifar'],
        /--data must be one of mnist, fashion-mnist or a \.pt \/ \.safetensors file; got 'cifar'/,
      ],
      [['demo', '--samples', '0'], /--samples must be in \[1, 1000\]; got 0/],
      [['demo', '--frobnicate'], /Unknown option '--frobnicate'.*Flags of 'demo': --out-dir/],
      [['quantize'], /--checkpoint <file> is required/],
      [['eval'], /give --checkpoint <file> and\/or --quantized/],
      [['report'], /--results <file> is required/],
      [
        ['sweep', '--weight-bits', '1-9'],
        /--weight-bits must be a bit width or a range 'from-to' within 2-8; got '1-9'/,
      ],
    ];
    for (const [argv, message] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err, argv.join(' ')).toMatch(message);
      expect(r.err).toContain(`--help`);
    }
  });

  test('unreadable or foreign files are usage errors naming the flag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qbnn-cli-args-'));
    const missing = await run('report', '--results', join(dir, 'nope.json'));
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('--results');
    writeFileSync(join(dir, 'other.json'), '{"hello": 1}');
    const foreign = await run('report', '--results', join(dir, 'other.json'));
    expect(foreign.code).toBe(2);
    expect(foreign.err).toContain("not a qbnn results file (format 'qbnn-results/1')");
    rmSync(dir, { recursive: true, force: true });
  });

  test('an unknown posterior lists the registered ones and points to --plugin', async () => {
    const r = await run('train', '--posterior', 'laplace', '--quiet', '--no-native');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /--posterior: unknown posterior 'laplace' \(registered: gaussian, mcdropout, radial, sghmc/,
    );
    expect(r.err).toContain('--plugin');
  });
});

describe('numeric flags: bounded, and bad values are usage errors naming the flag', () => {
  const numeric = COMMANDS.flatMap((c) =>
    Object.entries(c.flags)
      .filter(([, s]) => s.type === 'int' || s.type === 'number')
      .map(([name, s]) => ({ command: c, name, spec: s as FlagSpec & { min?: number; max?: number } })),
  );
  // sizes, counts and batches: 1e9 of any of them would allocate or run without bound
  const sized = /samples|batch|size|members|epochs|passes|folds|seconds|timeout/;

  test('every numeric flag has a finite minimum and maximum (memory and time stay bounded)', () => {
    const unbounded = numeric
      .filter(({ spec }) => !(Number.isFinite(spec.min) && Number.isFinite(spec.max)))
      .map(({ command, name }) => `${command.name} --${name}`);
    expect(unbounded).toEqual([]);
  });

  test('-1, 1.5, NaN, Infinity and 1e9 are refused before any work, naming the flag', () => {
    const accepted: string[] = [];
    for (const { command, name, spec } of numeric) {
      const bad = ['-1', 'NaN', 'Infinity', '-Infinity', '1e400', ''];
      if (spec.type === 'int') bad.push('1.5');
      if (sized.test(name)) bad.push('1e9');
      for (const v of bad) {
        for (const argv of [[`--${name}=${v}`], [`--${name}`, v]]) {
          try {
            parseFlags(command.name, argv, command.flags);
            accepted.push(`${command.name} ${argv.join(' ')}`);
          } catch (err) {
            expect(err, `${command.name} ${argv.join(' ')}`).toBeInstanceOf(UsageError);
            expect((err as Error).message, `${command.name} ${argv.join(' ')}`).toContain(`--${name}`);
          }
        }
      }
    }
    expect(accepted).toEqual([]);
  });

  test('a negative number after the flag is read as its value: the range is reported', () => {
    expect(() =>
      parseFlags('eval', ['--samples', '-1'], COMMANDS.find((c) => c.name === 'eval')!.flags),
    ).toThrow('--samples must be in [1, 1000]; got -1');
  });
});

describe('errors', () => {
  test('a typed error (a damaged file to import) prints its code and message, no stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qbnn-cli-err-'));
    try {
      const file = join(dir, 'damaged.pt');
      writeFileSync(file, Buffer.from('PK\x03\x04 this is not a zip archive'));
      const r = await run('import', file, '--arch', 'lenet5', '--out', join(dir, 'out.safetensors'));
      expect(r.code, r.err).toBe(1);
      expect(r.err).toMatch(/qbnn import: error \[ERR_[A-Z_]+\]: [^ ]*damaged\.pt: /);
      expect(r.err).not.toMatch(/qbnn import: .*qbnn import:/); // the prefix was printed twice
      expect(r.err).not.toMatch(/\n\s+at /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
