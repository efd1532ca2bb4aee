import { type KernelProvider, type PackedWeights, QbnnError, type Rng, roundHalfEven } from '@qbnn/core';
import { getIntegerForm } from '../forms/registry.js';
import { layerStreams } from '../forms/streams.js';
import type { IntegerForm, LayerStreams, SampleContext } from '../forms/types.js';
import { dropoutTable, dropoutU8 } from './dropout.js';
import { convImage, convOutput, type EngineMode, type QLayerSpec, type QResidual, sizeOf } from './ir.js';
import { type LocalConstants, localConstants, localF32, localMoments, localU8 } from './local.js';
import { lstmStepU8 } from './lstm-cell.js';
import { qmaxOf, quantizeBias, quantizeInput } from './requant.js';
import { globalAvgPoolU8, poolU8, transposedConvInputU8 } from './u8-ops.js';
import type { OpTable } from './walker.js';

/** Activations between ops of the integer engine: u8 (float32 logits after the last layer). */
export interface IntState {
  data: Uint8Array | Float32Array;
  /** Same activations for every MC sample (nothing stochastic ran yet). */
  shared: boolean;
  /** Per-sample shape [B, ...]. */
  shape: number[];
}

/** One forward call of the integer engine. */
export interface IntRun {
  x: ArrayLike<number>;
  /** Per-example input shape. */
  inputShape: readonly number[];
  B: number;
  L: number;
  mode: EngineMode;
  provider: KernelProvider;
  root: Rng;
}

/** Values kept with a model across calls, keyed by an object and a tag (see SampleContext.memo). */
export type Memo = <T>(key: object, tag: string, make: () => T) => T;

type GemmOutput =
  | { kind: 'u8'; scale: number; zeroPoint: number; relu?: boolean }
  | { kind: 'f32' }
  | { kind: 'i32' };

/** Integer residual add: both branches dequantised exactly, summed and requantised (ReLU as the clamp). */
function addU8(a: IntState, b: IntState, op: QResidual, L: number): IntState {
  const per = a.shared ? a.data.length : a.data.length / L;
  const shared = a.shared && b.shared;
  const count = shared ? 1 : L;
  const out = new Uint8Array(count * per);
  const { bodyQ: qa, shortcutQ: qb, q } = op;
  const ma = qa.scale / q.scale;
  const mb = qb.scale / q.scale;
  const lo = op.relu ? q.zeroPoint : 0;
  const hi = qmaxOf(q);
  for (let l = 0; l < count; l++) {
    const oa = a.shared ? 0 : l * per;
    const ob = b.shared ? 0 : l * per;
    for (let i = 0; i < per; i++) {
      const v = (a.data[oa + i] - qa.zeroPoint) * ma + (b.data[ob + i] - qb.zeroPoint) * mb;
      out[l * per + i] = Math.min(hi, Math.max(lo, roundHalfEven(v) + q.zeroPoint));
    }
  }
  return { data: out, shared, shape: a.shape };
}

/** Logits of a layer run once for every sample (shared input, fixed weights), repeated L times. */
function replicate(d: Float32Array, shared: boolean, L: number): Float32Array {
  if (!shared || L === 1) return d;
  const out = new Float32Array(L * d.length);
  for (let l = 0; l < L; l++) out.set(d, l * d.length);
  return out;
}

/**
 * The integer engine's op table: u8 activations, every linear and conv through the kernel
 * provider, weights sampled by the layer's registered integer form.
 */
export function integerOps(run: IntRun, memo: Memo): OpTable<IntState> {
  const { B, L, provider } = run;

  const sampleContext = (layer: QLayerSpec, l: number, streams: LayerStreams): SampleContext => ({
    n: layer.n,
    k: layer.k,
    l,
    provider,
    streams,
    memo,
  });

  /** Packed weights, scales and int32 bias of sample l. */
  const weightsForSample = (
    form: IntegerForm,
    layer: QLayerSpec,
    l: number,
    streams: LayerStreams,
    aScale: number,
  ): { packed: PackedWeights; wScale: Float64Array; bias?: Int32Array; owned: boolean } => {
    const s = form.sample(layer.weights, sampleContext(layer, l, streams));
    return {
      packed: s.packed,
      wScale: s.wScale,
      bias: s.bias ? quantizeBias(s.bias, aScale, s.wScale) : undefined,
      owned: s.owned,
    };
  };

  const kernel = (
    layer: QLayerSpec,
    a: Uint8Array,
    aScale: number,
    aZero: number,
    rows: number,
    shape: number[],
    packed: PackedWeights,
    wScale: Float64Array,
    bias: Int32Array | undefined,
    output: GemmOutput,
  ): { data: Uint8Array | Float32Array | Int32Array; shape: number[] } => {
    if (layer.op === 'linear') {
      const data = provider.qgemm({ a, m: rows, aScale, aZeroPoint: aZero, w: packed, wScale, bias, output });
      return { data, shape: [shape[0], layer.n] };
    }
    const [c, h, w] = convImage(shape.slice(1))!;
    let x = a;
    let image: [number, number, number, number] = [rows, c, h, w];
    let stride = layer.stride;
    let padding = layer.padding;
    if (layer.op === 'convTranspose2d') {
      const [, , kh, kw] = layer.wShape!;
      const t = transposedConvInputU8(
        a,
        image,
        [kh, kw],
        layer.stride ?? [1, 1],
        layer.padding ?? [0, 0],
        layer.outputPadding ?? [0, 0],
        layer.dilation ?? [1, 1],
        aZero,
      );
      x = t.out;
      image = t.shape;
      stride = [1, 1];
      padding = [0, 0];
    }
    const data = provider.qconv2d({
      x,
      xShape: image,
      xScale: aScale,
      xZeroPoint: aZero,
      w: packed,
      wShape: layer.wShape!,
      wScale,
      bias,
      stride,
      padding,
      dilation: layer.dilation,
      groups: layer.groups ?? 1,
      output,
    });
    return { data, shape: [shape[0], ...convOutput(layer, shape.slice(1))] };
  };

  /** MC Dropout of sample l on u8 activations, through the layer's 512-entry requantisation table. */
  const dropout = (
    layer: QLayerSpec,
    a: Uint8Array,
    key: readonly [number, number],
    l: number,
    out: Uint8Array,
  ) => {
    const d = layer.dropout!;
    const lut = memo(layer, 'dropout-table', () => dropoutTable(layer.input, d));
    return dropoutU8(a, lut, d.p, key, l, out);
  };

  /** The L masked inputs of a dropout layer, stacked [L * B, ...] (sample l's mask from its stream position). */
  const maskAll = (layer: QLayerSpec, s: IntState, streams: LayerStreams): Uint8Array => {
    const input = s.data as Uint8Array;
    const inPer = sizeOf(s.shape);
    const masked = new Uint8Array(L * inPer);
    for (let l = 0; l < L; l++) {
      const a = s.shared ? input : input.subarray(l * inPer, (l + 1) * inPer);
      dropout(layer, a, streams.mask, l, masked.subarray(l * inPer, (l + 1) * inPer));
    }
    return masked;
  };

  /**
   * Local reparameterisation in integers: acc_mu = GEMM(x_q, mu_q), acc_var = GEMM(x2_q, s2_q)
   * with x^2 and sigma^2 quantised to 8 bits (see {@link localConstants}), then
   * y = S_x S_mu acc_mu + sqrt(S_x2 S_s2 acc_var) eps (eps the quantised normal, one per output),
   * ReLU, and requantisation to the output params (float logits for the last layer).
   *
   * `a` holds `count` stacked inputs of B rows each (count = L, or 1 when every sample has the
   * same input): both GEMMs run once over count * B rows, and the L samples differ only by
   * their eps (sample l's from position l * ceil(outputs / 4) of the layer's local stream).
   */
  const runLocal = (
    layer: QLayerSpec,
    lc: LocalConstants,
    a: Uint8Array,
    count: number,
    shape: number[],
    streams: LayerStreams,
    output: GemmOutput,
  ): { data: Uint8Array | Float32Array; shape: number[] } => {
    const n = layer.n;
    const muPacked = memo(layer, `local-mu:${provider.name}`, () =>
      provider.packWeights(lc.mu, n, layer.k, lc.muZ),
    );
    const s2Packed = memo(layer, `local-s2:${provider.name}`, () =>
      provider.packWeights(lc.s2, n, layer.k, 0),
    );
    const x2 = new Uint8Array(a.length);
    const sq = lc.square;
    for (let i = 0; i < a.length; i++) x2[i] = sq[a[i]];
    const rows = count * B;
    const accMu = kernel(
      layer,
      a,
      layer.input.scale,
      layer.input.zeroPoint,
      rows,
      shape,
      muPacked,
      lc.muScale,
      lc.bMu,
      {
        kind: 'i32',
      },
    );
    const accVar = kernel(layer, x2, lc.x2Scale, 0, rows, shape, s2Packed, lc.s2Scale, lc.bVar, {
      kind: 'i32',
    });
    const mu = accMu.data as Int32Array;
    const va = accVar.data as Int32Array;
    const per = mu.length / count;
    const inner = per / (B * n);
    const eps = new Int8Array(per);
    const mean = new Float32Array(per);
    const sd = new Float32Array(per);
    const res = output.kind === 'f32' ? new Float32Array(L * per) : new Uint8Array(L * per);
    for (let l = 0; l < L; l++) {
      // with one shared input (count 1) the mean and standard deviation are those of every sample
      if (l < count) localMoments(mu, va, l * per, B, n, inner, lc.meanMult, lc.varMult, mean, sd);
      provider.qnormal({ key: streams.local, position: l * Math.ceil(per / 4), out: eps });
      if (output.kind === 'f32') localF32(mean, sd, eps, res as Float32Array, l * per);
      else if (output.kind === 'u8') {
        localU8(
          mean,
          sd,
          eps,
          res as Uint8Array,
          l * per,
          Math.fround(output.scale),
          output.zeroPoint,
          layer.relu,
          qmaxOf(layer.output!),
        );
      }
    }
    return { data: res, shape: accMu.shape };
  };

  /** Which way a layer runs: stochastic weights, local reparameterisation. */
  const plan = (form: IntegerForm, layer: QLayerSpec) => {
    const stochasticWeights = form.stochastic(layer.weights);
    let local = false;
    if (run.mode === 'local' && stochasticWeights && form.local !== 'weights') {
      if (!form.local) {
        throw new QbnnError(
          'ERR_UNSUPPORTED',
          `layer '${layer.path}': integer form '${form.kind}' has no local reparameterisation (run mode 'weights')`,
        );
      }
      local = true;
    }
    return { stochasticWeights, local };
  };

  return {
    quantize: (op) => ({ data: quantizeInput(run.x, op.q), shared: true, shape: [B, ...run.inputShape] }),

    layer(layer, s, index) {
      const form = getIntegerForm(layer.weights.kind);
      const streams = layerStreams(run.root, index);
      const inPer = sizeOf(s.shape);
      const isLast = layer.output === null;
      const outQ = layer.output;
      const output: GemmOutput = isLast
        ? { kind: 'f32' }
        : { kind: 'u8', scale: outQ!.scale, zeroPoint: outQ!.zeroPoint, relu: layer.relu };
      const finish = (
        data: Uint8Array | Float32Array | Int32Array,
        shared: boolean,
        shape: number[],
      ): IntState => {
        if (isLast) return { data: data as Float32Array, shared, shape };
        const d = data as Uint8Array;
        if (outQ!.bits !== 8) {
          const qm = qmaxOf(outQ!);
          for (let i = 0; i < d.length; i++) if (d[i] > qm) d[i] = qm;
        }
        return { data: d, shared, shape };
      };
      const input = s.data as Uint8Array;
      const { stochasticWeights, local } = plan(form, layer);
      if (!stochasticWeights && layer.dropout) {
        // MC Dropout: one weight for every sample, so the L masked inputs run as one GEMM of L*B rows
        const d = layer.dropout;
        const masked = maskAll(layer, s, streams);
        const { packed, wScale, bias } = weightsForSample(form, layer, 0, streams, d.masked.scale);
        const r = kernel(
          layer,
          masked,
          d.masked.scale,
          d.masked.zeroPoint,
          L * B,
          s.shape,
          packed,
          wScale,
          bias,
          output,
        );
        return finish(r.data, false, r.shape);
      }
      if (!stochasticWeights) {
        const count = s.shared ? 1 : L;
        const { packed, wScale, bias } = weightsForSample(form, layer, 0, streams, layer.input.scale);
        const r = kernel(
          layer,
          input,
          layer.input.scale,
          layer.input.zeroPoint,
          count * B,
          s.shape,
          packed,
          wScale,
          bias,
          output,
        );
        if (isLast) return finish(replicate(r.data as Float32Array, s.shared, L), false, r.shape);
        return finish(r.data, s.shared, r.shape);
      }
      if (local) {
        // every sample shares the mean and variance weights: one GEMM pair over the stacked L*B
        // rows (or over B rows once, when the input is still the same for every sample)
        const lf = form.local as Exclude<IntegerForm['local'], 'weights' | undefined>;
        const lc = memo(layer, 'local', () => localConstants(layer, lf(layer.weights, layer)));
        let a: Uint8Array = input;
        let count = s.shared ? 1 : L;
        if (layer.dropout) {
          a = maskAll(layer, s, streams);
          count = L;
        }
        const r = runLocal(layer, lc, a, count, s.shape, streams, output);
        return finish(r.data, false, r.shape);
      }
      let outData: Uint8Array | Float32Array | undefined;
      let outShape: number[] = [];
      for (let l = 0; l < L; l++) {
        let a = s.shared ? input : input.subarray(l * inPer, (l + 1) * inPer);
        let aScale = layer.input.scale;
        let aZero = layer.input.zeroPoint;
        if (layer.dropout) {
          a = dropout(layer, a, streams.mask, l, new Uint8Array(a.length));
          aScale = layer.dropout.masked.scale;
          aZero = layer.dropout.masked.zeroPoint;
        }
        const { packed, wScale, bias, owned } = weightsForSample(form, layer, l, streams, aScale);
        let r: { data: Uint8Array | Float32Array | Int32Array; shape: number[] };
        try {
          r = kernel(layer, a, aScale, aZero, B, s.shape, packed, wScale, bias, output);
        } finally {
          // a sampled weight is used by this one GEMM: free its (native) memory now, not at GC
          if (owned) packed.dispose?.();
        }
        if (!outData) {
          outData = isLast ? new Float32Array(L * r.data.length) : new Uint8Array(L * r.data.length);
          outShape = r.shape;
        }
        outData.set(r.data as ArrayLike<number>, l * r.data.length);
      }
      return finish(outData!, false, outShape);
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
      // f32 pre-activations [B, 4H] of one map at one step (its weights sample l T + t)
      const gates = (m: (typeof maps)[number], a: Uint8Array, sample: number): Float32Array => {
        const { layer, form, streams } = m;
        const l = form.stochastic(layer.weights) ? sample : 0;
        const { packed, wScale, bias, owned } = weightsForSample(form, layer, l, streams, layer.input.scale);
        try {
          const { input } = layer;
          const out = { kind: 'f32' } as const;
          return kernel(layer, a, input.scale, input.zeroPoint, B, [B, layer.k], packed, wScale, bias, out)
            .data as Float32Array;
        } finally {
          if (owned) packed.dispose?.();
        }
      };
      const count = stochastic || !s.shared ? L : 1;
      const per = op.output === 'last' ? H : T * H;
      const out = new Uint8Array(count * B * per);
      const input = s.data as Uint8Array;
      const xt = new Uint8Array(B * I);
      for (let l = 0; l < count; l++) {
        const x = s.shared ? input : input.subarray(l * B * T * I, (l + 1) * B * T * I);
        const c = new Float64Array(B * H);
        const h = new Uint8Array(B * H).fill(op.q.zeroPoint);
        for (let t = 0; t < T; t++) {
          for (let b = 0; b < B; b++) xt.set(x.subarray((b * T + t) * I, (b * T + t + 1) * I), b * I);
          const gi = gates(maps[0], xt, l * T + t);
          const gh = gates(maps[1], h, l * T + t);
          lstmStepU8(gi, gh, c, h, B, H, op.q);
          if (op.output === 'sequence') {
            for (let b = 0; b < B; b++) out.set(h.subarray(b * H, (b + 1) * H), ((l * B + b) * T + t) * H);
          }
        }
        if (op.output === 'last') out.set(h, l * B * H);
      }
      return { data: out, shared: count === 1, shape: op.output === 'last' ? [B, H] : [B, T, H] };
    },

    residual: (op, a, b) => addU8(a, b, op, L),

    relu(op, s) {
      const z = op.q.zeroPoint;
      const d = (s.data as Uint8Array).slice();
      for (let i = 0; i < d.length; i++) if (d[i] < z) d[i] = z;
      return { ...s, data: d };
    },

    pool(op, s) {
      const count = s.shared ? 1 : L;
      const [b, c, h, w] = s.shape;
      const r = poolU8(
        s.data as Uint8Array,
        [count * b, c, h, w],
        op.op === 'maxpool2d' ? 'max' : 'avg',
        op.kernel,
        op.stride,
        op.padding,
        op.q.zeroPoint,
      );
      return { data: r.out, shared: s.shared, shape: [b, ...r.shape.slice(1)] };
    },

    globalAvgPool(op, s) {
      const count = s.shared ? 1 : L;
      const [b, c, h, w] = s.shape;
      return {
        data: globalAvgPoolU8(s.data as Uint8Array, [count * b, c, h, w], op.q.zeroPoint),
        shared: s.shared,
        shape: [b, c],
      };
    },

    flatten: (s) => ({ ...s, shape: [s.shape[0], sizeOf(s.shape.slice(1))] }),
  };
}
