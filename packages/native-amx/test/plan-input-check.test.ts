// plan.run's float input: the check that it is finite before anything runs (plan.cc
// firstNonFinite: 64 bytes at a time, then value by value in the block that has one) names the
// first value that is not finite, whichever lane of a block or the tail it is in, for float32 and
// float64 inputs (expected index: a JS scan of the same array); and the input quantisation
// (quantizeAvx512) gives clamp(roundHalfEven(x / scale) + zero point, 0, qmax) of the float64
// division, as core's roundHalfEven in JS, on exact halves, their neighbours one ulp away and
// values far out of range (a multiply by 1 / scale without a fallback at halves fails it).
import { type PlanDescription, type PlanStep, roundHalfEven } from '@qbnn/core';
import { describe, expect, test } from 'vitest';
import { nativeAvailable, nativeKernels } from '../src/index.js';
import { identityLayer, ints } from './helpers.js';

/** quantize -> identity linear layer: the logits are the quantised input bytes. */
function identityPlan(n: number, scale = 1, zeroPoint = 0, qmax = 255): PlanDescription {
  const slot = (index: number) => ({ shared: false, index });
  const steps: PlanStep[] = [
    { op: 'quantize', out: slot(0), scale, zeroPoint, qmax },
    { op: 'layer', layer: 0, in: slot(0), out: slot(1) },
  ];
  return {
    inputSize: n,
    classes: n,
    taskSlots: [n, 4 * n],
    sharedSlots: [],
    steps,
    sharedSteps: steps.map(() => false),
    layers: [identityLayer(n)],
    output: slot(1),
  };
}

function runIdentity(desc: PlanDescription, x: Float32Array | Float64Array, batch: number): number[] {
  const plan = nativeKernels.createPlan?.(desc);
  if (!plan) throw new Error('the native provider has no plans');
  try {
    return [...plan.run({ x, batch, samples: 1, keys: new Uint32Array(8), scalars: new Float64Array(2) })];
  } finally {
    plan.dispose();
  }
}

describe.skipIf(!nativeAvailable)('plan.run: the first value of x that is not finite', () => {
  const n = 37; // a batch of 3: 111 values, 6 whole float32 blocks and a tail of 15
  const batch = 3;
  const base = ints(3, n * batch, 0, 255);
  const run = (x: Float32Array | Float64Array) => runIdentity(identityPlan(n), x, batch);

  test('finite input runs', () => {
    for (const T of [Float32Array, Float64Array]) expect(run(T.from(base))).toEqual(base);
  });

  const CASES: [string, [number, number][]][] = [
    ['the first value', [[0, Number.NaN]]],
    [
      'the last lane of a block and a later one',
      [
        [15, Number.POSITIVE_INFINITY],
        [40, Number.NaN],
      ],
    ],
    [
      'two in one block: the lower lane',
      [
        [19, Number.NEGATIVE_INFINITY],
        [17, Number.NaN],
      ],
    ],
    ['in the tail', [[103, Number.POSITIVE_INFINITY]]],
    ['the last value', [[n * batch - 1, Number.NEGATIVE_INFINITY]]],
  ];
  for (const [name, bad] of CASES) {
    test(name, () => {
      for (const T of [Float32Array, Float64Array]) {
        const x = T.from(base);
        for (const [i, v] of bad) x[i] = v;
        const first = x.findIndex((v) => !Number.isFinite(v));
        expect(() => run(x), `${T.name}`).toThrow(`x[${first}] must be a finite number, got ${x[first]}`);
      }
    });
  }
});

describe.skipIf(!nativeAvailable)('plan.run: the input quantisation on and next to rounding halves', () => {
  const next = (v: number, dir: 1 | -1) => {
    const b = new Float64Array([v]);
    const u = new BigInt64Array(b.buffer);
    u[0] += BigInt(v > 0 ? dir : -dir);
    return b[0]!;
  };
  for (const [scale, zp, qmax] of [
    [3, 7, 255],
    [0.1, 0, 255],
    [1 / 255, 3, 15],
    [0.003921425810047225, 0, 255], // LeNet-5's input scale
  ] as const) {
    test(`scale ${scale}, zero point ${zp}, qmax ${qmax}`, () => {
      const values: number[] = [];
      for (let k = -12; k < 300; k++) {
        const half = (k + 0.5) * scale; // x / scale within an ulp or two of k + 1/2
        values.push(half, next(half, 1), next(half, -1), k * scale);
      }
      values.push(1e9, -1e9, 2 ** 21 * scale, -(2 ** 21) * scale, 0, -0);
      while (values.length % 8 !== 3) values.push(scale * 0.25); // a tail
      for (const T of [Float64Array, Float32Array]) {
        const x = T.from(values);
        const want = Array.from(x, (v) => Math.min(Math.max(roundHalfEven(v / scale) + zp, 0), qmax));
        expect(runIdentity(identityPlan(x.length, scale, zp, qmax), x, 1), T.name).toEqual(want);
      }
    });
  }
});
