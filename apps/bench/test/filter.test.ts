// --filter (filter.ts) and the limit of the peers suite (limits.ts).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { initBackend } from '@qbnn/core';
import { lenet5 } from '@qbnn/nn';
import { describe, expect, it } from 'vitest';
import { accepts, formatFilter, parseFilter, trackFilter } from '../src/filter.js';
import { lenet5Work, limitImagesPerSecond } from '../src/limits.js';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

describe('--filter', () => {
  it('parses key=value lists with alternatives and rejects malformed parts', () => {
    const f = parseFilter('model=lenet5,impl=native,batch=32|256,L=20');
    expect(formatFilter(f)).toBe('model=lenet5,impl=native,batch=32|256,L=20');
    expect(() => parseFilter('model')).toThrow(/key=value/);
    expect(() => parseFilter('=x')).toThrow(/key=value/);
    expect(() => parseFilter('batch=')).toThrow(/key=value/);
  });

  it('matches whole values or their words; keys a cell lacks do not constrain it', () => {
    const f = parseFilter('impl=native,batch=32|256,mode=weights');
    expect(accepts(f, { impl: 'int8-native', batch: 32, mode: 'weights' })).toBe(true);
    expect(accepts(f, { impl: 'int8-native', batch: 256 })).toBe(true);
    expect(accepts(f, { impl: 'int8-js', batch: 32 })).toBe(false);
    expect(accepts(f, { impl: 'int8-native', batch: 1 })).toBe(false);
    expect(accepts(f, { impl: 'int8-native', batch: 32, mode: 'local' })).toBe(false);
    expect(accepts(f, { model: 'mlp' })).toBe(true);
    expect(accepts(new Map(), { impl: 'anything' })).toBe(true);
  });

  it('tracks the keys no cell had (a misspelt key constrained nothing) and the cells selected', () => {
    const use = trackFilter(parseFilter('modle=resnet18,impl=native,batch=7'));
    expect(use.accepts({ model: 'lenet5', impl: 'int8-native' })).toBe(true);
    expect(use.accepts({ model: 'mlp', impl: 'int8-js', batch: 32 })).toBe(false);
    expect(use.unused()).toEqual(['modle']);
    expect(use.selected).toBe(1);
  });

  it('runs only the matching bnn cells through the CLI', { timeout: 180_000 }, async (ctx) => {
    if (!existsSync(main)) ctx.skip(`${main} is not built (pnpm build runs first in CI)`);
    // 'tfjs' matches fp32-tfjs-wasm only (plain tfjs-wasm, run in a child process when the native
    // fp32 kernels are active), not fp32-native
    const filter = 'model=mlp,posterior=gaussian,impl=int8-native|tfjs,mode=weights,L=1';
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [main, 'bnn', '--quick', '--json', '--filter', filter],
      { maxBuffer: 64 << 20, timeout: 170_000 },
    );
    const doc = JSON.parse(stdout) as {
      command: string;
      results: { case: string; impl: string; params: Record<string, unknown> }[];
    };
    expect(doc.command).toContain(`--filter ${filter}`);
    expect(doc.results.length).toBeGreaterThan(0);
    for (const r of doc.results) {
      expect(r.case).toBe('bnn mlp/gaussian');
      expect(['int8-native', 'fp32-tfjs-wasm']).toContain(r.impl);
      expect(r.params).toMatchObject({ mode: 'weights', L: 1 });
    }
    expect(doc.results.some((r) => r.impl === 'fp32-tfjs-wasm')).toBe(true);
  });
});

describe('the limit of MC inference', () => {
  it("counts LeNet-5's weights like the zoo model and its multiply-adds layer by layer", async () => {
    await initBackend({ backend: 'wasm' });
    const model = lenet5();
    let weights = 0;
    for (const [name, v] of model.namedParameters()) if (name.endsWith('weight')) weights += v.size;
    model.dispose();
    const work = lenet5Work();
    expect(work.weightsPerSample).toBe(weights);
    // conv1 28x28x20x25, conv2 14x14x50x500, fc1 2450x500, fc2 500x10
    expect(work.macsPerImage).toBe(28 * 28 * 20 * 25 + 14 * 14 * 50 * 500 + 2450 * 500 + 500 * 10);
  });

  it('adds the integer work at the peak and the sampling at the sampler rate', () => {
    const work = { macsPerImage: 1e6, weightsPerSample: 1e5 };
    // L = 10, B = 4: 10 x 4 x 2e6 ops at 1e12 ops/s = 80 us; 10 x 1e5 samples at 1e9/s = 1 ms
    expect(limitImagesPerSecond(4, 10, work, 1e12, 1e9)).toBeCloseTo(4 / (80e-6 + 1e-3), 6);
  });

  it('at batch 1 takes the sampling as plans run it there, the dotted multiply-adds inside it', () => {
    const work = { macsPerImage: 1e6, weightsPerSample: 1e5 };
    const one = { seconds: 5e-5, dottedMacs: 4e5 };
    // L = 10, B = 1: 10 x 2 x 6e5 ops at 1e12 ops/s = 12 us; 10 x 50 us of sampling
    expect(limitImagesPerSecond(1, 10, work, 1e12, 1e9, one)).toBeCloseTo(1 / (12e-6 + 5e-4), 6);
    // other batches ignore it
    expect(limitImagesPerSecond(4, 10, work, 1e12, 1e9, one)).toBeCloseTo(4 / (80e-6 + 1e-3), 6);
  });
});
