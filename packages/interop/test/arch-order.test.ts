import { initBackend } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildArch } from '../src/index.js';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('architecture layers run in the order they are listed', () => {
  it('named and unnamed (index) layers mixed: Linear, ReLU, Linear matches a float64 loop', () => {
    // An unnamed ReLU between two named layers takes the name '1'; held as object keys, '1' came
    // first in JavaScript, so the ReLU ran on the input and none ran between the layers.
    const model = buildArch({
      layers: [
        { name: 'fc1', type: 'Linear', in_features: 3, out_features: 4 },
        { type: 'ReLU' },
        { name: 'fc2', type: 'Linear', in_features: 4, out_features: 2 },
      ],
    });
    expect(model.namedModules().map(([p]) => p)).toEqual(['', 'fc1', '1', 'fc2']);
    const sd = model.stateDict();
    const w1 = sd['fc1.weight'].dataSync();
    const b1 = sd['fc1.bias'].dataSync();
    const w2 = sd['fc2.weight'].dataSync();
    const b2 = sd['fc2.bias'].dataSync();
    const x = [-1.5, 2, -0.25, 0.75, -3, 1];
    const want: number[] = [];
    for (let r = 0; r < 2; r++) {
      const h = [0, 1, 2, 3].map((j) => {
        let s = b1[j];
        for (let k = 0; k < 3; k++) s += w1[j * 3 + k] * x[r * 3 + k];
        return Math.max(0, s);
      });
      for (let o = 0; o < 2; o++) {
        let s = b2[o];
        for (let j = 0; j < 4; j++) s += w2[o * 4 + j] * h[j];
        want.push(s);
      }
    }
    const got = tf.tidy(() => model.apply(tf.tensor2d(x, [2, 3])).dataSync());
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 5);
    model.dispose();
  });

  it('layer names that are Object.prototype members are names like any other', () => {
    const model = buildArch({
      layers: [{ name: 'toString', type: 'Linear', in_features: 2, out_features: 2 }],
    });
    expect(model.namedModules().map(([p]) => p)).toEqual(['', 'toString']);
    model.dispose();
  });
});
