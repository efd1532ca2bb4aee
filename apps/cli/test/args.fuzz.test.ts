import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { type FlagSpec, parseFlags, UsageError } from '../src/args.js';
import { COMMANDS } from '../src/cli.js';
import { checkFileFlags } from '../src/file-flags.js';

// Property-based runs over the real flag tables of every command (issue 17). CI runs a bounded,
// seeded number of cases (a few seconds); QBNN_FUZZ_RUNS and QBNN_FUZZ_SEED make a longer campaign.
const RUNS = Number(process.env.QBNN_FUZZ_RUNS ?? 300);
const SEED = Number(process.env.QBNN_FUZZ_SEED ?? 17);

/** Values that stress a flag: numbers in every spelling, bounds, junk, empty, unicode, dashes. */
const value = fc.oneof(
  fc.constantFrom('', ' ', '-', '--', '-1', '0', '1', '1.5', '1e9', '1e400', 'NaN', 'Infinity', '-Infinity'),
  fc.constantFrom('0x10', '1_000', '+3', '.5', '-.5', '5.', '08', '1e-400', 'true', 'null', '__proto__'),
  fc.integer({ min: -2_000_000, max: 2_000_000 }).map(String),
  fc.double().map(String),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
);

function tokens(specs: Record<string, FlagSpec>) {
  const names = Object.keys(specs);
  const flag = fc.constantFrom(...names);
  return fc.array(
    fc.oneof(
      flag.map((n) => `--${n}`),
      fc.tuple(flag, value).map(([n, v]) => `--${n}=${v}`),
      value,
      fc.constantFrom(
        '--',
        '-h',
        '-x',
        '--no-such-flag',
        '--__proto__',
        '--constructor',
        '--toString',
        '---out',
      ),
      fc.string({ maxLength: 8 }).map((s) => `--${s}`),
    ),
    { maxLength: 10 },
  );
}

/** What a parse result must be: each flag its type, numbers in range, strings among the choices. */
function checkParsed(specs: Record<string, FlagSpec>, parsed: Record<string, unknown>): void {
  expect(Object.keys(parsed).sort()).toEqual(Object.keys(specs).sort());
  for (const [name, spec] of Object.entries(specs)) {
    const v = parsed[name];
    if (v === undefined) {
      expect(spec.default, name).toBeUndefined();
      continue;
    }
    if (spec.type === 'boolean') expect(typeof v, name).toBe('boolean');
    else if (spec.type === 'string') {
      expect(typeof v, name).toBe('string');
      if (spec.choices) expect(spec.choices, name).toContain(v);
    } else {
      expect(Number.isFinite(v), `${name} = ${v}`).toBe(true);
      if (spec.type === 'int') expect(Number.isInteger(v), `${name} = ${v}`).toBe(true);
      if (spec.min !== undefined) expect(v as number, name).toBeGreaterThanOrEqual(spec.min);
      if (spec.max !== undefined) expect(v as number, name).toBeLessThanOrEqual(spec.max);
    }
  }
}

describe('fuzz: the flag parser of every command', () => {
  for (const command of COMMANDS) {
    test(`qbnn ${command.name}: any argv parses to typed, in-range flags or throws a UsageError`, () => {
      let parses = 0;
      fc.assert(
        fc.property(tokens(command.flags), (argv) => {
          let parsed: Record<string, unknown>;
          try {
            parsed = parseFlags(command.name, argv, command.flags) as Record<string, unknown>;
          } catch (err) {
            expect(err).toBeInstanceOf(UsageError);
            expect((err as Error).message.startsWith(`qbnn ${command.name}: `)).toBe(true);
            return;
          }
          checkParsed(command.flags, parsed);
          parses++;
        }),
        { numRuns: RUNS, seed: SEED },
      );
      // both outcomes are exercised: the generator is not all junk
      expect(parses).toBeGreaterThan(RUNS / 20);
    });
  }
});

describe('fuzz: the file flag checks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qbnn-cli-fuzz-'));
  writeFileSync(join(dir, 'file'), 'x');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // path pieces that hit every branch: existing file and folder, missing, dots, NUL, devices, /proc
  const piece = fc.oneof(
    fc.constantFrom('file', 'missing', '.', '..', '', 'a\0b', 'x'.repeat(300), 'sub', '~'),
    fc.string({ maxLength: 6 }),
  );
  const path = fc.oneof(
    fc.array(piece, { maxLength: 4 }).map((p) => [dir, ...p].join('/')),
    fc.constantFrom('', '/dev/zero', '/dev/null', '/proc/x', '/proc/self/status', '/', dir, `${dir}/`),
  );

  test('any paths give absolute outputs or a UsageError naming the flag, and leave nothing behind', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(path, { maxLength: 3 }), fc.array(path, { maxLength: 3 }), (ins, outs) => {
        const inputs = ins.map((p) => ({ flag: '--checkpoint', path: p }));
        const outputs = outs.map((p, i) => ({ flag: `--out${i}`, path: p }));
        try {
          const abs = checkFileFlags('fuzz', { inputs, outputs });
          accepted++;
          expect(abs).toHaveLength(outputs.length);
          for (const a of abs) expect(a.startsWith('/')).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(UsageError);
          expect((err as Error).message).toMatch(/^qbnn fuzz: --(checkpoint|out\d) /);
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
    expect(accepted).toBeGreaterThan(RUNS / 20);
    expect(readdirSync(dir)).toEqual(['file']);
  });
});
