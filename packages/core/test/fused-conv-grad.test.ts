// The FusedConv2D gradient qbnn registers (fused-conv-grad.ts: bias, linear activation) against
// float64 central finite differences of a brute-force convolution, on cpu and wasm, NCHW and NHWC,
// with stride and padding; and a clear error for what it does not cover.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, QbnnError } from '../src/index.js';
import { rng } from './kernel-cases.js';

// x [n, c, h, w] (NCHW values), filter HWIO [kh, kw, c, o], y NCHW; loss = sum(r * (conv + b)).
function loss64(
  x: Float64Array,
  f: Float64Array,
  b: Float64Array,
  r: Float64Array,
  [n, c, h, w]: number[],
  [kh, kw, , o]: number[],
  [sh, sw]: number[],
  [ph, pw]: number[],
  [oh, ow]: number[],
): number {
  let l = 0;
  for (let bi = 0; bi < n; bi++)
    for (let q = 0; q < o; q++)
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let s = b[q];
          for (let u = 0; u < kh; u++)
            for (let v = 0; v < kw; v++) {
              const ih = i * sh + u - ph;
              const iw = j * sw + v - pw;
              if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
              for (let ch = 0; ch < c; ch++)
                s += x[((bi * c + ch) * h + ih) * w + iw] * f[((u * kw + v) * c + ch) * o + q];
            }
          l += s * r[((bi * o + q) * oh + i) * ow + j];
        }
  return l;
}

describe('FusedConv2D gradient (bias, linear activation)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  // (tfjs-backend-wasm's own FusedConv2D takes NHWC only; NCHW on wasm is @qbnn/native-amx's,
  // tested with it in apps/bench/test/train-native.test.ts.)
  for (const [backend, layout] of [
    ['cpu', 'NCHW'],
    ['cpu', 'NHWC'],
    ['wasm', 'NHWC'],
  ] as const)
    it(`matches float64 finite differences on ${backend}, ${layout}, stride (1, 2), padding (1, 0)`, async () => {
      await tf.setBackend(backend);
      const r = rng(5);
      const xs = [2, 3, 6, 5]; // NCHW
      const fs = [3, 2, 3, 4];
      const [st, pad] = [
        [1, 2],
        [1, 0],
      ];
      const oh = Math.floor((xs[2] + 2 * pad[0] - fs[0]) / st[0]) + 1;
      const ow = Math.floor((xs[3] + 2 * pad[1] - fs[1]) / st[1]) + 1;
      const vals = (n: number) => Float64Array.from({ length: n }, () => r() * 2 - 1);
      const x64 = vals(xs.reduce((a, v) => a * v, 1));
      const f64 = vals(fs.reduce((a, v) => a * v, 1));
      const b64 = vals(fs[3]);
      const r64 = vals(xs[0] * fs[3] * oh * ow);
      const x = tf.tensor(Float32Array.from(x64), xs);
      const rr = tf.tensor(Float32Array.from(r64), [xs[0], fs[3], oh, ow]);
      const toLayout = (t: tf.Tensor) => (layout === 'NCHW' ? t : tf.transpose(t, [0, 2, 3, 1]));
      const padding: tf.backend_util.ExplicitPadding =
        layout === 'NCHW'
          ? [
              [0, 0],
              [0, 0],
              [pad[0], pad[0]],
              [pad[1], pad[1]],
            ]
          : [
              [0, 0],
              [pad[0], pad[0]],
              [pad[1], pad[1]],
              [0, 0],
            ];
      const attrs = {
        strides: st,
        pad: padding,
        dataFormat: layout,
        dilations: [1, 1],
        activation: 'linear',
      };
      const [gx, gf, gb] = tf.grads((xi: tf.Tensor, fi: tf.Tensor, bi: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf
              .engine()
              .runKernel(
                tf.FusedConv2D,
                { x: xi, filter: fi, bias: bi },
                attrs as unknown as tf.NamedAttrMap,
              ) as tf.Tensor,
            toLayout(rr),
          ),
        ),
      )([toLayout(x), tf.tensor(Float32Array.from(f64), fs), tf.tensor(Float32Array.from(b64), [fs[3]])]);
      const geo = [xs, fs, st, pad, [oh, ow]] as const;
      const fd = (v: Float64Array, f: (z: Float64Array) => number) =>
        Array.from(v, (_, i) => {
          const z = Float64Array.from(v);
          z[i] += 1e-3;
          const up = f(z);
          z[i] -= 2e-3;
          return (up - f(z)) / 2e-3;
        });
      const close = (got: tf.Tensor, want: number[]) => {
        const g = got.dataSync();
        expect(g.length).toBe(want.length);
        for (let i = 0; i < want.length; i++)
          expect(Math.abs(g[i] - want[i])).toBeLessThan(1e-3 * (1 + Math.abs(want[i])));
      };
      close(
        layout === 'NCHW' ? gx : tf.transpose(gx, [0, 3, 1, 2]),
        fd(x64, (z) => loss64(z, f64, b64, r64, ...geo)),
      );
      close(
        gf,
        fd(f64, (z) => loss64(x64, z, b64, r64, ...geo)),
      );
      close(
        gb,
        fd(b64, (z) => loss64(x64, f64, z, r64, ...geo)),
      );
    });

  it('refuses an activation it does not differentiate, naming it', async () => {
    await tf.setBackend('cpu');
    const x = tf.ones([1, 1, 4, 4]);
    const f = tf.ones([2, 2, 1, 1]);
    const b = tf.ones([1]);
    const grad = (activation: string) =>
      tf.grads((xi: tf.Tensor) =>
        tf.sum(
          tf.engine().runKernel(tf.FusedConv2D, { x: xi, filter: f, bias: b }, {
            strides: 1,
            pad: 'valid',
            dataFormat: 'NCHW',
            dilations: 1,
            activation,
          } as unknown as tf.NamedAttrMap) as tf.Tensor,
        ),
      )([x]);
    expect(() => grad('relu')).toThrow(QbnnError);
    expect(() => grad('relu')).toThrow(/only a linear activation and dilation 1, got relu/);
  });
});
