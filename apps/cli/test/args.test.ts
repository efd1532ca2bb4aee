import { describe, expect, test } from 'vitest';
import { parseFlags, UsageError } from '../src/args.js';

const specs = {
  mode: { type: 'string', help: 'flow', choices: ['ptq', 'qat'], default: 'ptq' },
  wbits: { type: 'int', help: 'weight bits', min: 2, max: 8, default: 8 },
  lr: { type: 'number', help: 'learning rate', min: 0 },
  json: { type: 'boolean', help: 'json', default: false },
} as const;

describe('parseFlags', () => {
  test('applies defaults and converts values', () => {
    expect(parseFlags('quantize', [], specs)).toEqual({ mode: 'ptq', wbits: 8, lr: undefined, json: false });
    expect(parseFlags('quantize', ['--mode', 'qat', '--wbits=4', '--lr', '0.001', '--json'], specs)).toEqual({
      mode: 'qat',
      wbits: 4,
      lr: 0.001,
      json: true,
    });
  });

  test.each([
    [['--mode', 'fp16'], /--mode must be one of ptq, qat; got 'fp16'/],
    [['--wbits', '9'], /--wbits must be in \[2, 8\]; got 9/],
    [['--wbits', '4.5'], /--wbits must be an integer; got '4.5'/],
    [['--lr', 'fast'], /--lr must be a number; got 'fast'/],
    [['--bits', '4'], /Unknown option '--bits'.*--mode, --wbits, --lr, --json/],
    [['--wbits'], /--wbits/],
  ])('%j is a usage error naming the flag', (argv, message) => {
    expect(() => parseFlags('quantize', argv as string[], specs)).toThrow(UsageError);
    expect(() => parseFlags('quantize', argv as string[], specs)).toThrow(message);
  });
});
