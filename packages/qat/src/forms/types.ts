import type { GaussianSampleArgs, KernelProvider, PackedInts, PackedWeights, Rng } from '@qbnn/core';
import type { Posterior, QuantPoint } from '@qbnn/posteriors';
import type * as tf from '@tensorflow/tfjs-core';
import type { QParams, QuantParams } from '../spec.js';

/**
 * The integer weights of one layer as a form stores them. `kind` names the form (the key of the
 * form registry) that samples, simulates, sizes and serialises them; the other fields are the
 * form's own.
 */
export interface IntegerWeights {
  readonly kind: string;
}

/**
 * The random streams of one layer for one forward call (forked from the call's seed by the
 * layer's index in execution order): each form draws sample l's randomness from these at
 * positions derived from l, so sample l is the same whatever L is.
 */
export interface LayerStreams {
  /** Weight noise: quantised normals (`provider.qnormal` / core's `qnormalFill`). */
  readonly weight: readonly [number, number];
  /** Bias noise. */
  readonly bias: readonly [number, number];
  /** MC Dropout masks (`bernoulliFill`). */
  readonly mask: readonly [number, number];
  /** Scalar draws (the radial radius, a low-rank factor's z): see {@link scalarNormal}. */
  readonly scalar: Rng;
  /** Output noise of local reparameterisation. */
  readonly local: readonly [number, number];
}

/** What {@link IntegerForm.sample} is given: the layer's sizes, sample index, provider and streams. */
export interface SampleContext {
  /** Output channels N. */
  readonly n: number;
  /** Reduction length K. */
  readonly k: number;
  /** The Monte Carlo sample index l (0 for non-stochastic forms). */
  readonly l: number;
  readonly provider: KernelProvider;
  readonly streams: LayerStreams;
  /**
   * A value computed once per (model, key object, tag) and kept with the model (packed weights,
   * per-channel multipliers). The key is usually the weights object.
   */
  memo<T>(key: object, tag: string, make: () => T): T;
}

/** One Monte Carlo sample of a layer's weights in integers, ready for the provider's GEMM. */
export interface IntegerSample {
  /** Packed s8 weights [N, K] with their zero points. */
  packed: PackedWeights;
  /** Per-channel weight scales (length N). */
  wScale: Float64Array;
  /** The real bias of this sample (the engine quantises it to int32 at S_in * wScale[n]). */
  bias?: ArrayLike<number>;
  /** Whether `packed` belongs to this sample only (the engine disposes it after its GEMM). */
  owned: boolean;
}

/** What {@link IntegerForm.plan} is given: the layer's sizes, the provider and the model's memo. */
export interface PlanContext {
  readonly n: number;
  readonly k: number;
  readonly provider: KernelProvider;
  memo<T>(key: object, tag: string, make: () => T): T;
}

/**
 * How an execution plan draws a layer's weights (see {@link IntegerForm.plan}): stored weight
 * sets (one for every sample, or set l mod count for sample l), or the fused Gaussian sampler of
 * the kernel contract with the form's arguments. A plan must reproduce {@link IntegerForm.sample}
 * exactly: the engine tests that the plan's logits equal the kernel-by-kernel engine's.
 */
export type PlanSampler =
  | {
      kind: 'sets';
      /** Packed weights, scales and real bias of each set (not owned: kept by the model's memo). */
      sets: IntegerSample[];
      cycle: boolean;
    }
  | {
      kind: 'gaussian';
      /** The sampler's arguments but for the stream (the plan draws sample l at l * ceil(n k / 4)). */
      args: Omit<GaussianSampleArgs, 'key' | 'position' | 'out' | 'n' | 'k'>;
      /** Scales of the sampled weight (its zero points are `args.weightZeroPoint`). */
      wScale: Float64Array;
      /**
       * 'gaussian': the sampler as is, bias noise eps S_eps. 'radial': m1 scaled per sample by
       * r / (sqrt(sum eps^2) S_eps) over the layer's eps, bias noise eps r_b / sqrt(sum eps_b^2).
       */
      direction: 'gaussian' | 'radial';
      /** Bias posterior: b = mu + sigma * noise. */
      bias?: { mu: ArrayLike<number>; sigma: ArrayLike<number> };
      /** Per-sample scalars [r, r_b] of sample l (the radial radii), computed per call in JS. */
      scalars?: (streams: LayerStreams, l: number) => readonly [number, number];
    };

/** What {@link IntegerForm.reference} is given (the float64 reference of @qbnn/qat/testing). */
export interface ReferenceContext {
  readonly n: number;
  readonly k: number;
  readonly l: number;
  readonly streams: LayerStreams;
}

/** One sample's weights in float64, fake-quantised where the integer form quantises. */
export interface ReferenceSample {
  /** Real weights [N, K]. */
  w: Float64Array;
  /** Real bias [N]. */
  b?: Float64Array;
  /** Per-channel scales of the sampled weight (the int32 bias grid is S_in * wScale[n]). */
  wScale: Float64Array;
}

/**
 * What local reparameterisation needs of a form whose weights are independent Gaussians: the
 * stored mean (integers and their params) and every weight's real standard deviation. The
 * engine forms the 8-bit sigma^2 and x^2 grids from these.
 */
export interface LocalMoments {
  mu: Int8Array;
  muQ: QParams;
  /** Real standard deviation of each weight [N, K] (dequantised sigma_q). */
  sigma: Float64Array;
  /** Bias posterior (real): b ~ N(mu, sigma^2). */
  bias?: { mu: ArrayLike<number>; sigma: ArrayLike<number> };
}

/** MC Dropout on a layer's input: drop probability and the params of the masked, rescaled input. */
export interface DropoutSpec {
  p: number;
  masked: QuantParams;
}

/**
 * What {@link IntegerForm.fromFloat} is given: the prepared layer (a posterior, or a
 * deterministic weight), its sizes, and the quantisation parameters its points observed.
 */
export interface FromFloatContext {
  /** Module path. */
  readonly path: string;
  /** Output channels N. */
  readonly n: number;
  /** Reduction length K. */
  readonly k: number;
  /** The layer's posterior; undefined for a deterministic Linear / Conv2d. */
  readonly posterior?: Posterior;
  /** The deterministic layer's weight [N, ...] and bias (undefined for Bayesian layers). */
  readonly deterministic?: { weight: tf.Tensor; bias?: tf.Tensor };
  /**
   * The params of quantisation point `name` (of ensemble member `member`, default 0) as observed
   * by calibration or QAT. When the point was never observed, `values` are observed now (a
   * stored tensor such as mu); without values that is an error naming the point.
   */
  point(name: QuantPoint, opts?: { member?: number; values?: tf.Tensor }): QParams;
  /** Quantises a row-major [N, K] tensor on `p` (per-row or per-tensor): Int8Array if signed. */
  quantize(values: ArrayLike<number> | tf.Tensor, p: QParams): Int8Array | Uint8Array;
  /**
   * The layer's real bias as the integer model stores it: `bias` (or zeros) plus the bias a folded
   * BatchNorm left; undefined when there is neither.
   */
  bias(bias?: tf.Tensor | ArrayLike<number>): Float32Array | undefined;
  /** The bias a folded BatchNorm left on a layer that had none of its own, or undefined. */
  readonly foldedBias?: Float32Array;
  /** Params of the masked input (MC Dropout) when QAT or calibration observed one. */
  readonly maskedInput?: QuantParams;
  /** Stored draws requested by `convert({ storedDraws })` (the explicit opt-in for forms that store samples). */
  readonly storedDraws?: number;
}

/**
 * A BatchNorm folded into the layer before it (eval statistics): every output channel c becomes
 * `f[c] y + shift[c]`. The helpers rewrite a posterior's variables in place.
 */
export interface ChannelFold {
  readonly scale: Float64Array;
  readonly shift: Float64Array;
  /** `v[c, ...] *= f[c]`: a weight, a mean, a low-rank factor (any rank, channel axis 0). */
  scaleRows(v: tf.Variable): void;
  /** `b[c] = b[c] f[c] + shift[c]`: a bias or a bias mean. */
  foldBias(v: tf.Variable): void;
  /** `rho` rewritten so that softplus(rho) scales by |f[c]|: a standard deviation's rho. */
  scaleSoftplus(rho: tf.Variable): void;
}

/** What {@link IntegerForm.fromFloat} returns. */
export interface ConvertedLayer<W extends IntegerWeights = IntegerWeights> {
  weights: W;
  /** MC Dropout on the layer's input. */
  dropout?: DropoutSpec;
}

/**
 * A tensor of a saved quantised model. `bits` (2..8) declares how many bits the integers of an
 * I8 / U8 tensor use (their params' bits): below 8 the tensor is kept packed in the model and in
 * its file (core's `packInts` layout), and the form's `load` gets it back unpacked. Undefined:
 * one value a byte.
 */
export type StoredTensor =
  | { dtype: 'I8'; shape: number[]; data: Int8Array; bits?: number }
  | { dtype: 'U8'; shape: number[]; data: Uint8Array; bits?: number }
  | { dtype: 'F32'; shape: number[]; data: Float32Array };

/** Where {@link IntegerForm.save} writes tensors: `put(name, tensor)`, names unique per layer. */
export type TensorSink = (name: string, tensor: StoredTensor) => void;
/**
 * Where {@link IntegerForm.load} reads them: the tensor, checked against dtype and element count
 * (unpacked, one value a byte). `packed(name)`, when present, gives a tensor kept packed as it is
 * (core's PackedInts, for forms whose kernels read packed input), or undefined.
 */
export type TensorSource = {
  <D extends StoredTensor['dtype']>(
    name: string,
    dtype: D,
    length: number,
  ): Extract<StoredTensor, { dtype: D }>['data'];
  packed?(name: string): PackedInts | undefined;
};

/**
 * How one kind of layer weights becomes integers and runs in the integer engine: the analogue
 * of a quantised module's `from_float` in torch.ao, registered by name with
 * {@link registerIntegerForm}. A posterior (built-in or third-party) converts through the form
 * listing its registry name in {@link IntegerForm.posteriors}.
 */
export interface IntegerForm<W extends IntegerWeights = IntegerWeights> {
  /** The form's name: `weights.kind` of the layers it stores. */
  readonly kind: string;
  /** Registry names of the posteriors (`Posterior.kind`) this form converts. */
  readonly posteriors?: readonly string[];
  /**
   * The quantisation points the form reads at convert, with their signedness: QAT creates a
   * fake-quant of that signedness when the posterior reports the point (default: signed, except
   * `sigma`).
   */
  readonly points?: readonly { name: QuantPoint; signed: boolean }[];
  /** Stores a prepared layer's weights as integers (convert). */
  fromFloat?(ctx: FromFloatContext): ConvertedLayer<W>;
  /**
   * Folds a BatchNorm that follows the layer into its posterior's variables (prepare's BN
   * folding); returns whether the posterior has a bias that absorbed the shift (else the flow
   * adds one). Absent: a BatchNorm after such a layer is ERR_UNSUPPORTED unless `foldBn: false`.
   */
  foldBatchNorm?(posterior: Posterior, fold: ChannelFold): boolean;
  /** Whether each Monte Carlo sample draws new weights (false: one weight serves every sample). */
  stochastic(w: W): boolean;
  /** Sample `ctx.l` of the weights in integers (through the kernel provider's entry points). */
  sample(w: W, ctx: SampleContext): IntegerSample;
  /**
   * How an execution plan (one native call per forward) draws these weights, equal to
   * {@link sample} for every l. Optional: a model with a layer whose form has none runs kernel
   * by kernel (same results, slower).
   */
  plan?(w: W, ctx: PlanContext): PlanSampler;
  /**
   * Local reparameterisation: the Gaussian moments of the weights, or `'weights'` when local mode
   * runs this form by weight sampling (an ensemble). Absent: local mode is ERR_UNSUPPORTED.
   */
  local?: ((w: W, shape: { n: number; k: number }) => LocalMoments) | 'weights';
  /**
   * Sample `ctx.l` in float64 with fake quantisation where {@link sample} quantises, written
   * independently of it (the test oracle of @qbnn/qat/testing; absent: the reference refuses).
   */
  reference?(w: W, ctx: ReferenceContext): ReferenceSample;
  /**
   * Checks stored weights (a hand-built or loaded model) before anything runs: types, lengths,
   * params and integer ranges; throws ERR_ARG naming `path` (see the check helpers of
   * `@qbnn/qat`: checkParams, checkInts, checkFloats). Optional.
   */
  validate?(w: W, shape: { n: number; k: number }, path: string): void;
  /** Bytes of the stored weights (integer tensors, float biases, 12 bytes a (scale, zero point)). */
  sizeBytes(w: W): number;
  /** Bits of the stored weights. */
  weightBits(w: W): number;
  /** Writes the tensors through `put`; returns the JSON-able rest (params, flags). */
  save(w: W, put: TensorSink, shape: { n: number; k: number }): Record<string, unknown>;
  /** Rebuilds the weights from {@link save}'s JSON and tensors; throws ERR_FORMAT on bad input. */
  load(json: Record<string, unknown>, get: TensorSource, shape: { n: number; k: number }): W;
}
