import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { LSTM } from '../src/index.js';
import { A, type Arr, expectClose, fdGrad, randn, T } from './ref.js';
import { ready } from './setup.js';

beforeAll(ready);

const sig = (v: number) => 1 / (1 + Math.exp(-v));

/** One LSTM layer in float64 loops: x [T, N, F] time-major, torch's gate order i, f, g, o. */
function lstmRef(x: Arr, wih: Arr, whh: Arr, bih: Arr, bhh: Arr): Arr {
  const [steps, n, f] = x.shape;
  const h4 = wih.shape[0];
  const hs = h4 / 4;
  const h = new Float64Array(n * hs);
  const c = new Float64Array(n * hs);
  const out = new Float64Array(steps * n * hs);
  for (let t = 0; t < steps; t++) {
    const hPrev = h.slice();
    for (let b = 0; b < n; b++) {
      const gate = new Float64Array(h4);
      for (let r = 0; r < h4; r++) {
        let s = bih.data[r] + bhh.data[r];
        for (let k = 0; k < f; k++) s += wih.data[r * f + k] * x.data[(t * n + b) * f + k];
        for (let k = 0; k < hs; k++) s += whh.data[r * hs + k] * hPrev[b * hs + k];
        gate[r] = s;
      }
      for (let j = 0; j < hs; j++) {
        const i = sig(gate[j]);
        const fg = sig(gate[hs + j]);
        const g = Math.tanh(gate[2 * hs + j]);
        const o = sig(gate[3 * hs + j]);
        c[b * hs + j] = fg * c[b * hs + j] + i * g;
        h[b * hs + j] = o * Math.tanh(c[b * hs + j]);
        out[(t * n + b) * hs + j] = h[b * hs + j];
      }
    }
  }
  return { data: out, shape: [steps, n, hs] };
}

describe('LSTM', () => {
  it('matches the float64 recurrence, with torch names, shapes and layouts', () => {
    const lstm = new LSTM(3, 4, { seed: 2 });
    expect(Object.keys(lstm.stateDict())).toEqual([
      'weight_ih_l0',
      'weight_hh_l0',
      'bias_ih_l0',
      'bias_hh_l0',
    ]);
    expect(lstm.param('weight_hh_l0').shape).toEqual([16, 4]);
    const x = randn([5, 2, 3], 1);
    const p = ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0'].map((k) => A(lstm.param(k)));
    const ref = lstmRef(x, p[0], p[1], p[2], p[3]);
    expectClose(lstm.apply(T(x)).dataSync(), ref.data, 1e-5, 1e-5);
    // batch first, last step only
    const bf = new LSTM(3, 4, { seed: 2, batchFirst: true, output: 'last' });
    const xb = tf.transpose(T(x), [1, 0, 2]);
    const last = bf.apply(xb);
    expect(last.shape).toEqual([2, 4]);
    expectClose(last.dataSync(), ref.data.slice(4 * 2 * 4), 1e-5, 1e-5);
    expect(() => lstm.apply(tf.zeros([5, 2, 4]))).toThrow(/expected input \[T, N, 3\]/);
    lstm.dispose();
    bf.dispose();
  });

  it('two stacked layers equal two single layers in a row', () => {
    const two = new LSTM(3, 4, { seed: 5, numLayers: 2 });
    const a = new LSTM(3, 4, { seed: 1 });
    const b = new LSTM(4, 4, { seed: 1 });
    for (const k of ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']) {
      a.param(`${k}_l0`).assign(two.param(`${k}_l0`));
      b.param(`${k}_l0`).assign(two.param(`${k}_l1`));
    }
    const x = T(randn([3, 2, 3], 4));
    expectClose(two.apply(x).dataSync(), b.apply(a.apply(x)).dataSync(), 1e-6, 1e-6);
  });

  it('gradients of input and every weight match finite differences of the float64 recurrence', () => {
    const lstm = new LSTM(2, 3, { seed: 7 });
    const names = ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0'];
    const inputs = [randn([4, 2, 2], 3), ...names.map((k) => A(lstm.param(k)))];
    const ref = (a: Arr[]) => lstmRef(a[0], a[1], a[2], a[3], a[4]);
    const r = randn([4, 2, 3], 11).data;
    const rt = tf.tensor(Float32Array.from(r), [4, 2, 3]);
    const x = T(inputs[0]);
    const vars = names.map((k) => lstm.param(k));
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(lstm.apply(x), rt)) as tf.Scalar, vars);
    vars.forEach((v, i) => {
      expectClose(grads[v.name].dataSync(), fdGrad(ref, inputs, i + 1, r), 2e-3, 2e-3);
    });
    const gx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(lstm.apply(xi), rt)))(x);
    expectClose(gx.dataSync(), fdGrad(ref, inputs, 0, r), 2e-3, 2e-3);
  });
});
