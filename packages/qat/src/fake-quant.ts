import { QbnnError, qRange } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import type { Observer } from './observers.js';
import type { ObserverSpec, QParams } from './spec.js';

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

function paramShape(rank: number, axis: number | undefined, channels: number): number[] {
  if (axis === undefined || channels === 1) return [];
  const ax = axis < 0 ? rank + axis : axis;
  const s = new Array<number>(rank).fill(1);
  s[ax] = channels;
  return s;
}

/**
 * Fake quantisation `S (clamp(round(x / S) + Z, qmin, qmax) - Z)` with a straight-through
 * gradient: dy passes where `round(x / S) + Z` lies in [qmin, qmax] and is zero outside.
 * Per-tensor or per-channel (`params.axis`); round is half-to-even (tf.round).
 */
export function fakeQuantize(x: tf.Tensor, params: QParams): tf.Tensor {
  const { qmin, qmax } = qRange(params.bits, params.signed);
  const C = params.scale.length;
  const shape = paramShape(x.rank, params.axis, C);
  return tf.tidy(() => {
    const s = tf.tensor(Float32Array.from(params.scale), shape, 'float32');
    const z = tf.tensor(Float32Array.from(params.zeroPoint), shape, 'float32');
    const f = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
      const r = tf.add(tf.round(tf.div(xi, s)), z);
      const q = tf.clipByValue(r, qmin, qmax);
      save([r]);
      return {
        value: tf.mul(tf.sub(q, z), s),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [rr] = saved;
          const mask = tf.cast(tf.logicalAnd(tf.greaterEqual(rr, qmin), tf.lessEqual(rr, qmax)), 'float32');
          return tf.mul(dy, mask);
        },
      };
    }) as CustomGradFn);
    return f(x);
  });
}

/**
 * Fake quantisation with a learnable per-tensor or per-channel scale (LSQ, Esser et al. 2020):
 * the input gradient is the straight-through one; the scale gradient is
 * `round(x/S) - x/S` inside the range, `qmin - Z` below and `qmax - Z` above, summed over the
 * elements of each channel and multiplied by `1 / sqrt(numel_per_channel * qmax)`.
 */
export function fakeQuantizeLearnable(
  x: tf.Tensor,
  scale: tf.Tensor,
  zeroPoint: Int32Array,
  bits: number,
  signed: boolean,
  axis?: number,
): tf.Tensor {
  const { qmin, qmax } = qRange(bits, signed);
  const C = scale.size;
  const shape = paramShape(x.rank, axis, C);
  const perChannel = shape.length > 0;
  const g = 1 / Math.sqrt((x.size / C) * Math.max(qmax, 1));
  return tf.tidy(() => {
    const f = tf.customGrad(((xi: tf.Tensor, si: tf.Tensor, save: tf.GradSaveFunc) => {
      const z = tf.tensor(Float32Array.from(zeroPoint), shape, 'float32');
      const sb = perChannel ? tf.reshape(si, shape) : tf.reshape(si, []);
      const xs = tf.div(xi, sb);
      const rx = tf.round(xs);
      const r = tf.add(rx, z);
      const q = tf.clipByValue(r, qmin, qmax);
      save([xs, rx, r, z]);
      return {
        value: tf.mul(tf.sub(q, z), sb),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs2, rx2, r2, z2] = saved;
          const below = tf.less(r2, qmin);
          const above = tf.greater(r2, qmax);
          const inside = tf.logicalNot(tf.logicalOr(below, above));
          const dx = tf.mul(dy, tf.cast(inside, 'float32'));
          const insideGrad = tf.sub(rx2, xs2);
          const lo = tf.sub(tf.scalar(qmin), z2);
          const hi = tf.sub(tf.scalar(qmax), z2);
          const local = tf.where(
            below,
            tf.broadcastTo(lo, xs2.shape),
            tf.where(above, tf.broadcastTo(hi, xs2.shape), insideGrad),
          );
          let ds = tf.mul(dy, local);
          if (perChannel) {
            const ax = axis! < 0 ? xi.rank + axis! : axis!;
            const others = [...Array(xi.rank).keys()].filter((d) => d !== ax);
            ds = tf.sum(ds, others);
          } else {
            ds = tf.sum(ds);
          }
          return [dx, tf.reshape(tf.mul(ds, g), si.shape)];
        },
      };
    }) as CustomGradFn);
    return f(x, scale);
  });
}

/** Options of a FakeQuantize module. */
export interface FakeQuantizeOptions {
  /** Learn the scale by LSQ once the observer has initialised it. */
  learnableScale?: boolean;
}

/**
 * A fake-quantisation point: an observer that tracks the range, and the fake-quant op applied
 * with the parameters computed from it. Observation and fake quantisation can be switched on and
 * off separately (torch.ao FakeQuantize): calibrate with observation on and fake-quant off,
 * train with both on, freeze the ranges by turning observation off.
 */
export class FakeQuantize {
  readonly observer: Observer;
  observerEnabled = true;
  fakeQuantEnabled = true;
  readonly learnableScale: boolean;
  private params?: QParams;
  /** The learnable scale once initialised (LSQ). */
  scaleVariable?: tf.Variable;

  constructor(observer: Observer, opts: FakeQuantizeOptions = {}) {
    this.observer = observer;
    this.learnableScale = opts.learnableScale ?? false;
  }

  get spec(): ObserverSpec {
    return this.observer.spec;
  }

  /** Observes `x` (when enabled) and returns its fake-quantised value (when enabled). */
  apply(x: tf.Tensor): tf.Tensor {
    if (this.observerEnabled && !(this.learnableScale && this.scaleVariable)) {
      this.observer.observe(x);
      this.params = this.observer.calculateQParams();
    }
    if (!this.fakeQuantEnabled || !this.params) return x;
    if (this.learnableScale) {
      if (!this.scaleVariable) {
        const p = this.params;
        this.scaleVariable = tf.variable(tf.tensor1d(Float32Array.from(p.scale)), true, undefined, 'float32');
      }
      return fakeQuantizeLearnable(
        x,
        this.scaleVariable,
        this.params.zeroPoint,
        this.params.bits,
        this.params.signed,
        this.params.axis,
      );
    }
    return fakeQuantize(x, this.params);
  }

  /** Observes without changing the value. */
  observe(x: tf.Tensor): void {
    this.observer.observe(x);
    this.params = this.observer.calculateQParams();
  }

  /** Current parameters (learned scale included), or an error before any observation. */
  qparams(): QParams {
    if (!this.params) throw new QbnnError('ERR_ARG', 'FakeQuantize has observed nothing yet');
    if (this.scaleVariable) {
      const s = Float64Array.from(this.scaleVariable.dataSync() as Float32Array, (v) => Math.abs(v) || 1e-12);
      return { ...this.params, scale: s };
    }
    return this.params;
  }

  /** Whether parameters exist. */
  get ready(): boolean {
    return this.params !== undefined;
  }

  /** Sets parameters directly (e.g. loaded or computed analytically). */
  setQParams(p: QParams): void {
    this.params = p;
  }

  /** Trainable variables of this point (the LSQ scale). */
  variables(): tf.Variable[] {
    return this.scaleVariable ? [this.scaleVariable] : [];
  }
}
