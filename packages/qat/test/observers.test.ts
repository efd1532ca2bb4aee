import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createObserver,
  HistogramObserver,
  MinMaxObserver,
  MovingAverageMinMaxObserver,
} from '../src/observers.js';
import { useCpu } from './setup-tf.js';

beforeAll(useCpu);

const spec8u = { bits: 8, signed: false, symmetric: false };

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('MinMaxObserver', () => {
  it('tracks the running range and yields params that represent it', () => {
    const o = new MinMaxObserver(spec8u);
    o.observe(tf.tensor([0.5, 2, -1]));
    o.observe(tf.tensor([3, 0]));
    const { min, max } = o.range();
    expect(min[0]).toBe(-1);
    expect(max[0]).toBe(3);
    const p = o.calculateQParams();
    expect(p.scale[0]).toBeCloseTo(4 / 255, 12);
    // -1 maps to 0 and 3 to 255 (within one step)
    expect(p.zeroPoint[0]).toBe(Math.round(1 / (4 / 255)));
  });

  it('per-channel ranges along an axis match a brute-force loop', () => {
    const rnd = lcg(1);
    const shape = [4, 3, 5];
    const data = Float32Array.from({ length: 60 }, () => rnd() * 10 - 5);
    const o = new MinMaxObserver({ bits: 4, signed: true, symmetric: true, axis: 1 });
    o.observe({ data, shape });
    const { min, max } = o.range();
    for (let c = 0; c < 3; c++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let a = 0; a < 4; a++)
        for (let b = 0; b < 5; b++) {
          const v = data[a * 15 + c * 5 + b];
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      expect(min[c]).toBe(lo);
      expect(max[c]).toBe(hi);
    }
    const p = o.calculateQParams();
    expect(p.scale.length).toBe(3);
    for (let c = 0; c < 3; c++) {
      expect(p.zeroPoint[c]).toBe(0);
      expect(p.scale[c]).toBeCloseTo(Math.max(-min[c], max[c]) / 7, 12);
    }
  });

  it('rejects NaN', () => {
    const o = new MinMaxObserver(spec8u);
    expect(() => o.observe({ data: [1, Number.NaN], shape: [2] })).toThrow(/non-finite/);
  });

  it('degenerate all-zero input still gives a finite positive scale', () => {
    const o = new MinMaxObserver(spec8u);
    o.observe({ data: [0, 0, 0], shape: [3] });
    const p = o.calculateQParams();
    expect(Number.isFinite(p.scale[0]) && p.scale[0] > 0).toBe(true);
  });
});

describe('MovingAverageMinMaxObserver', () => {
  it('follows r <- r + c (batch - r)', () => {
    const o = new MovingAverageMinMaxObserver(spec8u, 0.25);
    o.observe({ data: [0, 4], shape: [2] });
    o.observe({ data: [-4, 8], shape: [2] });
    const { min, max } = o.range();
    expect(min[0]).toBeCloseTo(-1, 12);
    expect(max[0]).toBeCloseTo(5, 12);
  });
});

describe('HistogramObserver', () => {
  it('clips at percentiles close to the sorted-sample percentiles', () => {
    const rnd = lcg(7);
    const o = new HistogramObserver(spec8u, 99, 2048);
    const all: number[] = [];
    for (let b = 0; b < 4; b++) {
      // later batches widen the range: exercises re-binning
      const data = Array.from({ length: 5000 }, () => (rnd() - 0.5) * (b + 1) * 2);
      all.push(...data);
      o.observe({ data, shape: [data.length] });
    }
    all.sort((a, b) => a - b);
    const q = (p: number) => all[Math.floor(p * (all.length - 1))];
    const p = o.calculateQParams();
    const lo = -p.zeroPoint[0] * p.scale[0];
    const hi = (255 - p.zeroPoint[0]) * p.scale[0];
    const width = all[all.length - 1] - all[0];
    expect(Math.abs(lo - q(0.01))).toBeLessThan(0.02 * width);
    expect(Math.abs(hi - q(0.99))).toBeLessThan(0.02 * width);
    // clipping really happened
    expect(hi).toBeLessThan(all[all.length - 1]);
  });

  it('factory builds each kind', () => {
    expect(createObserver('minmax', spec8u)).toBeInstanceOf(MinMaxObserver);
    expect(createObserver('ema', spec8u)).toBeInstanceOf(MovingAverageMinMaxObserver);
    expect(createObserver('histogram', spec8u)).toBeInstanceOf(HistogramObserver);
  });
});
