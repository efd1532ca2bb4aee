import { bernoulliFill, QbnnError, QNORMAL_SCALE, qnormalFill, type Rng, roundHalfEven } from '@qbnn/core';
import type { QLayerSpec, QOp, QResidual, QuantizedOutput } from '../engine/ir.js';
import type { EngineInput, QuantizedForwardOptions, QuantizedModel } from '../engine/quantized-model.js';
import { checkLogits } from '../engine/validate-input.js';
import { type OpTable, walk } from '../engine/walker.js';
import { getIntegerForm } from '../forms/registry.js';
import { layerStreams } from '../forms/streams.js';
import type { DropoutSpec, IntegerForm, LayerStreams } from '../forms/types.js';
import { channelScales, channelZeroPoints } from '../spec.js';
import { fq64 } from './fake-quant.js';
import { conv2dF64, convTranspose2dF64, linearF64, poolF64 } from './float-ops.js';

/** Real activations between ops of the reference. */
export interface FloatState {
  data: Float64Array;
  /** Same activations for every MC sample. */
  shared: boolean;
  /** Per-sample shape [B, ...]. */
  shape: number[];
}

function size(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

function qmax(q: { bits: number }): number {
  return 2 ** q.bits - 1;
}

/** A real bias fake-quantised onto the int32 grid of scale aScale * wScale[n]. */
function biasOnGrid(b: ArrayLike<number>, aScale: number, wScale: Float64Array): Float64Array {
  const lim = 2147483647;
  return Float64Array.from({ length: b.length }, (_, i) => {
    const s = aScale * wScale[i];
    return Math.max(-lim, Math.min(lim, roundHalfEven(b[i] / s))) * s;
  });
}

function dropoutF64(
  a: Float64Array,
  d: DropoutSpec,
  key: readonly [number, number],
  l: number,
): Float64Array {
  const mask = bernoulliFill(key, l * Math.ceil(a.length / 4), d.p, new Uint8Array(a.length));
  const qm = qmax(d.masked);
  return a.map((v, i) => (mask[i] ? fq64(v / (1 - d.p), d.masked.scale, d.masked.zeroPoint, 0, qm) : 0));
}

function applyOp(
  layer: QLayerSpec,
  a: Float64Array,
  B: number,
  shape: number[],
  w: Float64Array,
  b: Float64Array | undefined,
): { out: Float64Array; shape: number[] } {
  if (layer.op === 'linear') return { out: linearF64(a, B, w, layer.n, layer.k, b), shape: [B, layer.n] };
  // a [B, C, L] input is a 1 x L image (Conv1d); the output keeps the input's rank
  const line = shape.length === 3;
  const image: [number, number, number, number] = line
    ? [B, shape[1], 1, shape[2]]
    : [B, shape[1], shape[2], shape[3]];
  const r =
    layer.op === 'convTranspose2d'
      ? convTranspose2dF64(
          a,
          image,
          w,
          layer.wShape!,
          layer.stride ?? [1, 1],
          layer.padding ?? [0, 0],
          layer.outputPadding ?? [0, 0],
          layer.dilation ?? [1, 1],
          layer.groups ?? 1,
          b,
        )
      : conv2dF64(
          a,
          image,
          w,
          layer.wShape!,
          layer.stride ?? [1, 1],
          layer.padding ?? [0, 0],
          layer.dilation ?? [1, 1],
          layer.groups ?? 1,
          b,
        );
  return { out: r.out, shape: line ? [B, r.shape[1], r.shape[3]] : r.shape };
}

/**
 * Local reparameterisation by its definition on the engine's grids: mean = x mu, variance =
 * fq(x^2) fq(sigma^2) (x^2 on the 8-bit grid of scale S_x^2 max(Z, qmax - Z)^2 / 255, sigma^2 on a
 * per-channel 8-bit grid of scale max sigma^2 / 127), biases on their int32 grids, then
 * mean + sqrt(variance) eps S_eps.
 */
function localF64(
  form: IntegerForm,
  layer: QLayerSpec,
  a: Float64Array,
  B: number,
  shape: number[],
  streams: LayerStreams,
  l: number,
): { out: Float64Array; shape: number[] } {
  const lf = form.local as Exclude<IntegerForm['local'], 'weights' | undefined>;
  const { n, k } = layer;
  const m = lf(layer.weights, layer);
  const ms = channelScales(m.muQ, n);
  const mz = channelZeroPoints(m.muQ, n);
  const muF = new Float64Array(n * k);
  const s2F = new Float64Array(n * k);
  const s2Scale = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    let mx = 0;
    for (let i = 0; i < k; i++) mx = Math.max(mx, m.sigma[c * k + i] ** 2);
    s2Scale[c] = mx > 0 ? mx / 127 : 1;
    for (let i = 0; i < k; i++) {
      muF[c * k + i] = ms[c] * (m.mu[c * k + i] - mz[c]);
      s2F[c * k + i] = fq64(m.sigma[c * k + i] ** 2, s2Scale[c], 0, -128, 127);
    }
  }
  const z = layer.input.zeroPoint;
  const dev = Math.max(z, qmax(layer.input) - z);
  const x2Scale = (layer.input.scale * layer.input.scale * Math.max(1, dev * dev)) / 255;
  const x2 = a.map((v) => fq64(v * v, x2Scale, 0, 0, 255));
  const bMu = m.bias ? biasOnGrid(m.bias.mu, layer.input.scale, ms) : undefined;
  const bVar = m.bias
    ? biasOnGrid(
        Array.from(m.bias.sigma, (v) => v * v),
        x2Scale,
        s2Scale,
      )
    : undefined;
  const mean = applyOp(layer, a, B, shape, muF, bMu);
  const vari = applyOp(layer, x2, B, shape, s2F, bVar);
  const total = mean.out.length;
  const eps = qnormalFill(streams.local, l * Math.ceil(total / 4), new Int8Array(total));
  const out = new Float64Array(total);
  for (let i = 0; i < total; i++)
    out[i] = mean.out[i] + Math.sqrt(Math.max(vari.out[i], 0)) * (eps[i] * QNORMAL_SCALE);
  return { out, shape: mean.shape };
}

interface RefRun {
  x: ArrayLike<number>;
  inputShape: readonly number[];
  B: number;
  L: number;
  mode: 'weights' | 'local';
  root: Rng;
}

/** The float64 reference's op table: real values, fake quantisation where the engine quantises. */
function referenceOps(run: RefRun): OpTable<FloatState> {
  const { B, L } = run;
  return {
    quantize(op) {
      const q = op.q;
      const d = Float64Array.from({ length: run.x.length }, (_, i) =>
        fq64(run.x[i], q.scale, q.zeroPoint, 0, qmax(q)),
      );
      return { data: d, shared: true, shape: [B, ...run.inputShape] };
    },
    layer(layer, s, index) {
      const form = getIntegerForm(layer.weights.kind);
      const streams = layerStreams(run.root, index);
      const stochasticWeights = form.stochastic(layer.weights);
      const stochastic = stochasticWeights || layer.dropout !== undefined;
      let local = false;
      if (run.mode === 'local' && stochasticWeights && form.local !== 'weights') {
        if (!form.local) {
          throw new QbnnError(
            'ERR_UNSUPPORTED',
            `layer '${layer.path}': form '${form.kind}' has no local reparameterisation`,
          );
        }
        local = true;
      }
      if (!local && !form.reference) {
        throw new QbnnError(
          'ERR_UNSUPPORTED',
          `reference: integer form '${form.kind}' has no float64 reference`,
        );
      }
      const inPer = size(s.shape);
      const count = stochastic ? L : s.shared ? 1 : L;
      const pieces: Float64Array[] = [];
      let outShape: number[] = [];
      for (let l = 0; l < count; l++) {
        let a = s.shared ? s.data : s.data.subarray(l * inPer, (l + 1) * inPer);
        let aScale = layer.input.scale;
        if (layer.dropout) {
          a = dropoutF64(a, layer.dropout, streams.mask, l);
          aScale = layer.dropout.masked.scale;
        }
        let y: { out: Float64Array; shape: number[] };
        if (local) y = localF64(form, layer, a, B, s.shape, streams, l);
        else {
          const fw = form.reference!(layer.weights, {
            n: layer.n,
            k: layer.k,
            l: stochasticWeights ? l : 0,
            streams,
          });
          y = applyOp(layer, a, B, s.shape, fw.w, fw.b ? biasOnGrid(fw.b, aScale, fw.wScale) : undefined);
        }
        const o = layer.output;
        pieces.push(
          o ? y.out.map((v) => fq64(layer.relu && v < 0 ? 0 : v, o.scale, o.zeroPoint, 0, qmax(o))) : y.out,
        );
        outShape = y.shape;
      }
      const per = pieces[0].length;
      const reps = layer.output === null ? L : count;
      const data = new Float64Array(reps * per);
      for (let l = 0; l < reps; l++) data.set(pieces[l % pieces.length], l * per);
      return { data, shared: !stochastic && s.shared && layer.output !== null, shape: outShape };
    },
    lstm(op, s, index) {
      const [, T, I] = s.shape;
      const H = op.hidden;
      const maps = [op.ih, op.hh].map((layer, i) => ({
        layer,
        form: getIntegerForm(layer.weights.kind),
        streams: layerStreams(run.root, index + i),
      }));
      const stochastic = maps.some((m) => m.form.stochastic(m.layer.weights));
      // real pre-activations [B, 4H] of one map: the form's float64 sample l T + t, biases on their grids
      const gates = (m: (typeof maps)[number], a: Float64Array, sample: number): Float64Array => {
        const { layer, form, streams } = m;
        if (!form.reference)
          throw new QbnnError(
            'ERR_UNSUPPORTED',
            `reference: integer form '${form.kind}' has no float64 reference`,
          );
        const l = form.stochastic(layer.weights) ? sample : 0;
        const fw = form.reference(layer.weights, { n: layer.n, k: layer.k, l, streams });
        const b = fw.b ? biasOnGrid(fw.b, layer.input.scale, fw.wScale) : undefined;
        return linearF64(a, B, fw.w, layer.n, layer.k, b);
      };
      const sig = (v: number) => 1 / (1 + Math.exp(-v));
      const count = stochastic || !s.shared ? L : 1;
      const per = op.output === 'last' ? H : T * H;
      const out = new Float64Array(count * B * per);
      for (let l = 0; l < count; l++) {
        const x = s.shared ? s.data : s.data.subarray(l * B * T * I, (l + 1) * B * T * I);
        const c = new Float64Array(B * H);
        const h = new Float64Array(B * H);
        for (let t = 0; t < T; t++) {
          const xt = Float64Array.from(
            { length: B * I },
            (_, i) => x[(Math.floor(i / I) * T + t) * I + (i % I)],
          );
          const gi = gates(maps[0], xt, l * T + t);
          const gh = gates(maps[1], h, l * T + t);
          for (let b = 0; b < B; b++) {
            for (let j = 0; j < H; j++) {
              const z = (gate: number) => gi[(b * 4 + gate) * H + j] + gh[(b * 4 + gate) * H + j];
              c[b * H + j] = sig(z(1)) * c[b * H + j] + sig(z(0)) * Math.tanh(z(2));
              h[b * H + j] = fq64(
                sig(z(3)) * Math.tanh(c[b * H + j]),
                op.q.scale,
                op.q.zeroPoint,
                0,
                qmax(op.q),
              );
              if (op.output === 'sequence') out[((l * B + b) * T + t) * H + j] = h[b * H + j];
            }
          }
        }
        if (op.output === 'last') out.set(h, l * B * H);
      }
      return { data: out, shared: count === 1, shape: op.output === 'last' ? [B, H] : [B, T, H] };
    },
    residual(op: QResidual, a, b) {
      const per = a.shared ? a.data.length : a.data.length / L;
      const shared = a.shared && b.shared;
      const out = new Float64Array((shared ? 1 : L) * per);
      for (let i = 0; i < out.length; i++) {
        const l = Math.floor(i / per);
        let v = a.data[(a.shared ? 0 : l * per) + (i % per)] + b.data[(b.shared ? 0 : l * per) + (i % per)];
        if (op.relu && v < 0) v = 0;
        out[i] = fq64(v, op.q.scale, op.q.zeroPoint, 0, qmax(op.q));
      }
      return { data: out, shared, shape: a.shape };
    },
    relu: (_op, s) => ({ ...s, data: s.data.map((v) => Math.max(v, 0)) }),
    pool(op, s) {
      const count = s.shared ? 1 : L;
      const [b, c, h, w] = s.shape;
      const kind = op.op === 'maxpool2d' ? 'max' : 'avg';
      const r = poolF64(s.data, [count * b, c, h, w], kind, op.kernel, op.stride, op.padding);
      // average pooling re-rounds to the same grid
      const data = kind === 'avg' ? r.out.map((v) => fq64(v, op.q.scale, op.q.zeroPoint, 0, 255)) : r.out;
      return { data, shared: s.shared, shape: [b, ...r.shape.slice(1)] };
    },
    globalAvgPool(op, s) {
      const count = s.shared ? 1 : L;
      const [b, c, h, w] = s.shape;
      const hw = h * w;
      const d = new Float64Array(count * b * c);
      for (let i = 0; i < d.length; i++) {
        let acc = 0;
        for (let j = 0; j < hw; j++) acc += s.data[i * hw + j];
        d[i] = fq64(acc / hw, op.q.scale, op.q.zeroPoint, 0, 255);
      }
      return { data: d, shared: s.shared, shape: [b, c] };
    },
    flatten: (s) => ({ ...s, shape: [s.shape[0], size(s.shape.slice(1))] }),
  };
}

/**
 * The float64 reference of a quantised model (a test oracle): the same network in float64 with
 * fake quantisation at every point the integer engine quantises, the same random draws (seed for
 * seed), each form's own float64 `reference` sample, and brute-force linear algebra. It shares
 * the IR walker and the random streams with the engine, no arithmetic. Predictions agree with
 * `forward` within one quantisation step per layer. Also returns the real activations after
 * every top-level op.
 */
export function simulateTrace(
  model: QuantizedModel,
  input: EngineInput,
  opts: QuantizedForwardOptions = {},
): { states: FloatState[]; output: QuantizedOutput } {
  const call = model.prepareCall(input, opts);
  const r = walk(model.ops, referenceOps({ ...call, inputShape: model.inputShape }), true);
  const last = model.ops[model.ops.length - 1] as Extract<QOp, { op: 'layer' }>;
  return {
    states: r.states,
    output: {
      logits: checkLogits(Float32Array.from(r.output.data)),
      samples: call.L,
      batch: call.B,
      classes: last.layer.n,
    },
  };
}

/** The reference's logits only (see {@link simulateTrace}). */
export function simulate(
  model: QuantizedModel,
  input: EngineInput,
  opts: QuantizedForwardOptions = {},
): QuantizedOutput {
  return simulateTrace(model, input, opts).output;
}
