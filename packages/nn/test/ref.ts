// Independent float64 references (plain loops) and finite-difference helpers for the tests.
import { Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';

export interface Arr {
  data: Float64Array;
  shape: number[];
}

export function randn(shape: number[], seed: number): Arr {
  const n = shape.reduce((a, b) => a * b, 1);
  return { data: Float64Array.from(new Rng(seed).normal(n)), shape };
}

export function linearRef(x: Arr, w: Arr, b?: Arr): Arr {
  const [n, inF] = x.shape;
  const outF = w.shape[0];
  const y = new Float64Array(n * outF);
  for (let i = 0; i < n; i++)
    for (let o = 0; o < outF; o++) {
      let s = b ? b.data[o] : 0;
      for (let k = 0; k < inF; k++) s += x.data[i * inF + k] * w.data[o * inF + k];
      y[i * outF + o] = s;
    }
  return { data: y, shape: [n, outF] };
}

export interface ConvP {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

export function conv2dRef(x: Arr, w: Arr, b: Arr | undefined, p: ConvP): Arr {
  const [n, c, h, wd] = x.shape;
  const [oc, icg, kh, kw] = w.shape;
  const g = p.groups;
  const ocg = oc / g;
  const oh = Math.floor((h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0]) + 1;
  const ow = Math.floor((wd + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1]) + 1;
  const y = new Float64Array(n * oc * oh * ow);
  for (let bi = 0; bi < n; bi++)
    for (let o = 0; o < oc; o++) {
      const grp = Math.floor(o / ocg);
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let s = b ? b.data[o] : 0;
          for (let ci = 0; ci < icg; ci++) {
            const cin = grp * icg + ci;
            for (let u = 0; u < kh; u++) {
              const yy = i * p.stride[0] - p.padding[0] + u * p.dilation[0];
              if (yy < 0 || yy >= h) continue;
              for (let v = 0; v < kw; v++) {
                const xx = j * p.stride[1] - p.padding[1] + v * p.dilation[1];
                if (xx < 0 || xx >= wd) continue;
                s += x.data[((bi * c + cin) * h + yy) * wd + xx] * w.data[((o * icg + ci) * kh + u) * kw + v];
              }
            }
          }
          y[((bi * oc + o) * oh + i) * ow + j] = s;
        }
    }
  void c;
  return { data: y, shape: [n, oc, oh, ow] };
}

export function poolRef(
  x: Arr,
  k: [number, number],
  s: [number, number],
  p: [number, number],
  mode: 'max' | 'avg',
): Arr {
  const [n, c, h, w] = x.shape;
  const oh = Math.floor((h + 2 * p[0] - k[0]) / s[0]) + 1;
  const ow = Math.floor((w + 2 * p[1] - k[1]) / s[1]) + 1;
  const y = new Float64Array(n * c * oh * ow);
  for (let bc = 0; bc < n * c; bc++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let acc = mode === 'max' ? Number.NEGATIVE_INFINITY : 0;
        for (let u = 0; u < k[0]; u++)
          for (let v = 0; v < k[1]; v++) {
            const yy = i * s[0] - p[0] + u;
            const xx = j * s[1] - p[1] + v;
            const inside = yy >= 0 && yy < h && xx >= 0 && xx < w;
            const val = inside
              ? x.data[(bc * h + yy) * w + xx]
              : mode === 'max'
                ? Number.NEGATIVE_INFINITY
                : 0;
            acc = mode === 'max' ? Math.max(acc, val) : acc + val;
          }
        y[(bc * oh + i) * ow + j] = mode === 'max' ? acc : acc / (k[0] * k[1]);
      }
  return { data: y, shape: [n, c, oh, ow] };
}

/** Batch norm in training mode; returns output and batch mean / biased var. */
export function batchNormRef(x: Arr, gamma: Arr, beta: Arr, eps: number) {
  const [n, c, h, w] = x.shape;
  const mean = new Float64Array(c);
  const vr = new Float64Array(c);
  const m = n * h * w;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let b = 0; b < n; b++) for (let k = 0; k < h * w; k++) s += x.data[(b * c + ch) * h * w + k];
    mean[ch] = s / m;
    let q = 0;
    for (let b = 0; b < n; b++)
      for (let k = 0; k < h * w; k++) q += (x.data[(b * c + ch) * h * w + k] - mean[ch]) ** 2;
    vr[ch] = q / m;
  }
  const y = new Float64Array(x.data.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let k = 0; k < h * w; k++) {
        const idx = (b * c + ch) * h * w + k;
        y[idx] = ((x.data[idx] - mean[ch]) / Math.sqrt(vr[ch] + eps)) * gamma.data[ch] + beta.data[ch];
      }
  return { y: { data: y, shape: x.shape }, mean, var: vr };
}

/**
 * Central finite differences of `f(inputs) . r` (f in float64) with respect to every element
 * of `inputs[which]`.
 */
export function fdGrad(
  f: (a: Arr[]) => Arr,
  inputs: Arr[],
  which: number,
  r: Float64Array,
  h = 1e-6,
): Float64Array {
  const t = inputs[which];
  const g = new Float64Array(t.data.length);
  const dot = (a: Arr) => a.data.reduce((s, v, i) => s + v * r[i], 0);
  for (let i = 0; i < t.data.length; i++) {
    const orig = t.data[i];
    t.data[i] = orig + h;
    const up = dot(f(inputs));
    t.data[i] = orig - h;
    const dn = dot(f(inputs));
    t.data[i] = orig;
    g[i] = (up - dn) / (2 * h);
  }
  return g;
}

/** max |a - b| / (atol + rtol |b|) <= 1 elementwise. */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, atol = 1e-4, rtol = 1e-4): void {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    if (Number.isNaN(e) || e > worst) {
      worst = e;
      at = i;
    }
  }
  if (!(worst <= 1)) throw new Error(`mismatch at ${at}: ${a[at]} vs ${b[at]} (ratio ${worst})`);
}

export const T = (a: Arr) => tf.tensor(Float32Array.from(a.data), a.shape);
export const A = (t: tf.Tensor): Arr => ({ data: Float64Array.from(t.dataSync()), shape: t.shape });

/** tfjs gradients of sum(f(x, w...) * r) against float64 finite differences of the reference. */
export function checkGrads(
  f: (ts: tf.Tensor[]) => tf.Tensor,
  ref: (a: Arr[]) => Arr,
  inputs: Arr[],
  seed: number,
  tol = 2e-3,
) {
  const out = ref(inputs);
  const r = randn(out.shape, seed).data;
  const rt = tf.tensor(Float32Array.from(r), out.shape);
  const ts = inputs.map(T);
  const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(xs), rt)))(ts);
  inputs.forEach((_, k) => {
    expectClose(grads[k].dataSync(), fdGrad(ref, inputs, k, r), tol, tol);
  });
  tf.dispose([...grads, ...ts, rt]);
}
