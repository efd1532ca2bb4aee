import { QbnnError } from '../errors.js';
import type { meanSoftmax } from './softmax.js';
import type { GaussianSampleArgs, PackedWeights } from './types.js';

/**
 * Execution plans: a whole quantised model's Monte Carlo forward as one provider call
 * (`KernelProvider.createPlan`). @qbnn/qat compiles its IR into a {@link PlanDescription}
 * once; the provider keeps what it needs (packed weights, multipliers, arenas) and runs every
 * sample of a call in one go. A plan computes exactly what the same kernels called one by one
 * compute: its logits are bit-identical to the integer engine's.
 *
 * Activations live in numbered slots of `bytes per example`: `task` slots are per (sample,
 * batch tile) and reused along the plan, `shared` slots hold values every sample shares (the
 * quantised input, layers before the first random one), computed once per call.
 */

/** A slot: `shared` ones are computed once per call, the others once per (sample, batch tile). */
export interface PlanSlot {
  shared: boolean;
  index: number;
}

/** One step of a plan, run in order over a batch tile (shared steps once per call). */
export type PlanStep =
  /** The float input (per example `size` values) quantised: clamp(roundHalfEven(x / scale) + zeroPoint, 0, qmax). */
  | { op: 'quantize'; out: PlanSlot; scale: number; zeroPoint: number; qmax: number }
  /** Layer `layer` of {@link PlanDescription.layers} (weights mode and deterministic layers); `scratch` holds a masked input. */
  | { op: 'layer'; layer: number; in: PlanSlot; out: PlanSlot; scratch?: PlanSlot }
  /** The integer GEMMs of local reparameterisation: int32 accumulators of the mean and the variance. */
  | { op: 'localGemm'; layer: number; in: PlanSlot; mean: PlanSlot; variance: PlanSlot; scratch: PlanSlot }
  /** mean + sd eps per output of a local layer, requantised (or float logits). */
  | { op: 'localCombine'; layer: number; mean: PlanSlot; variance: PlanSlot; out: PlanSlot }
  /**
   * A transposed convolution's input spread by its stride (then run as a stride-1 convolution):
   * per example [C, H, W] -> [C, Hs, Ws] filled with `zeroPoint`, input pixel (y, x) at
   * (y stride[0] + before[0], x stride[1] + before[1]) where that is inside (negative `before`
   * crops). With `dropout` (the index of the MC Dropout layer it feeds), the input is first
   * masked by that layer's dropout into `scratch`, over its unspread values as the engine masks
   * them; the layer then takes its input as masked.
   */
  | {
      op: 'spread';
      in: PlanSlot;
      out: PlanSlot;
      shape: readonly [number, number, number];
      spread: readonly [number, number];
      stride: readonly [number, number];
      before: readonly [number, number];
      zeroPoint: number;
      dropout?: number;
      scratch?: PlanSlot;
    }
  /** u8 values below `zeroPoint` raised to it. */
  | { op: 'relu'; in: PlanSlot; out: PlanSlot; size: number; zeroPoint: number }
  /** u8 pooling of [channels, h, w] per example (the contract's qpool2d). */
  | {
      op: 'pool';
      in: PlanSlot;
      out: PlanSlot;
      kind: 'max' | 'avg';
      shape: readonly [number, number, number];
      kernel: readonly [number, number];
      stride: readonly [number, number];
      padding: readonly [number, number];
      zeroPoint: number;
    }
  /** Global average pooling of [channels, h * w] per example: clamp(roundHalfEven(sum(q - Z) / hw) + Z, 0, 255). */
  | { op: 'globalAvgPool'; in: PlanSlot; out: PlanSlot; channels: number; hw: number; zeroPoint: number }
  /**
   * The residual add of `size` u8 values per example:
   * clamp(roundHalfEven((a - za) ma + (b - zb) mb) + z, lo, hi), every step in float64.
   */
  | {
      op: 'add';
      a: PlanSlot;
      b: PlanSlot;
      out: PlanSlot;
      size: number;
      za: number;
      zb: number;
      ma: number;
      mb: number;
      z: number;
      lo: number;
      hi: number;
    };

/** One weight set of a layer: packed weights, multipliers of its output stage, int32 bias. */
export interface PlanWeightSet {
  packed: PackedWeights;
  /** u8 output: requantMultipliers; f32 output: accumulatorScales. */
  mult: Float64Array;
  bias?: Int32Array;
}

/** Where a layer's weights come from. */
export type PlanWeights =
  /** Stored sets: set 0 for every sample, or (`cycle`) set l mod count for sample l. */
  | { kind: 'sets'; sets: PlanWeightSet[]; cycle: boolean }
  /**
   * The fused Gaussian sampler of the contract, sample l from the weight stream at position
   * l * ceil(n k / 4), its output stage `mult`. `direction` 'radial' scales m1 per sample by
   * r / (sqrt(sum eps^2) S_eps) (`scalars[2 l]` = r) as the radial form does. The real bias
   * b = mu + sigma (eps S) (Gaussian; radial: eps r_b / sqrt(sum eps^2), r_b = scalars[2 l + 1])
   * from the bias stream at l * ceil(n / 4), on the int32 grid
   * clamp(roundHalfEven(b / biasScale[c]), -(2^31 - 1), 2^31 - 1).
   */
  | {
      kind: 'gaussian';
      args: Omit<GaussianSampleArgs, 'key' | 'position' | 'out' | 'n' | 'k'>;
      direction: 'gaussian' | 'radial';
      /** Scale of the quantised normal (QNORMAL_SCALE). */
      epsScale: number;
      mult: Float64Array;
      bias?: { mu: Float64Array; sigma: Float64Array; scale: Float64Array };
    }
  /**
   * Local reparameterisation: mean GEMM on (`mean`, bias `meanBias`), variance GEMM of the
   * squared input `square[q]` (zero point 0) on (`variance`, `varianceBias`), then per output the
   * float32 combine of @qbnn/qat's engine/local.ts (every step one float32 operation):
   * y = f32(acc_mu) meanMult[c] + sqrt(max(f32(acc_var) varMult[c], 0)) (eps epsScale), eps from
   * the local stream at l * ceil(outputs / 4) (outputs of the whole batch); u8 outputs
   * clamp(roundHalfEven(clamp(y / outScale, -1024, 1024)) + Z, lo, qmax), or y as the logits.
   * meanMult, varMult, outScale and epsScale are float32 values.
   */
  | {
      kind: 'local';
      mean: PackedWeights;
      meanBias?: Int32Array;
      variance: PackedWeights;
      varianceBias?: Int32Array;
      meanMult: Float64Array;
      varMult: Float64Array;
      square: Uint8Array;
      /** Scale of the u8 output grid (unused for float logits). */
      outScale: number;
      /** Scale of the quantised normal (QNORMAL_SCALE). */
      epsScale: number;
    };

/** A linear or convolution layer of a plan. */
export interface PlanLayer {
  op: 'linear' | 'conv2d';
  n: number;
  k: number;
  /**
   * Conv: the per-example input [C, H, W], weights [O, C / groups, kh, kw] (one pack of all O
   * rows, drawn as one tensor; group g convolves input channels [g C / groups, (g + 1) C / groups)
   * into output channels [g O / groups, (g + 1) O / groups)), stride, padding, dilation.
   */
  conv?: {
    input: readonly [number, number, number];
    wShape: readonly [number, number, number, number];
    stride: readonly [number, number];
    padding: readonly [number, number];
    dilation: readonly [number, number];
    groups?: number;
  };
  /** Values per example of the input and output. */
  inSize: number;
  outSize: number;
  inZeroPoint: number;
  /** MC Dropout: keep iff word >= threshold; table[mask << 8 | q] the masked value (zero point maskedZeroPoint). */
  dropout?: { threshold: number; table: Uint8Array; maskedZeroPoint: number };
  /** u8 output (zero point, ReLU, largest value of the grid) or float logits. */
  output: { kind: 'u8'; zeroPoint: number; relu: boolean; qmax: number } | { kind: 'f32' };
  weights: PlanWeights;
}

/** A compiled model: what {@link KernelProvider.createPlan} takes. */
export interface PlanDescription {
  /** Float values per example of the input. */
  inputSize: number;
  /** Logits per example. */
  classes: number;
  /** Bytes per example of each slot. */
  taskSlots: number[];
  sharedSlots: number[];
  steps: PlanStep[];
  /** Whether each step runs once per call (on shared slots only). */
  sharedSteps: boolean[];
  layers: PlanLayer[];
  /** The task slot holding the logits after the last step. */
  output: PlanSlot;
}

/**
 * One call of a plan: the float input [batch, ...], the samples, and per layer its Philox
 * keys (8 words: weight, bias, mask, local stream keys) and per sample two scalars (radial radii).
 */
export interface PlanRunArgs {
  /** float32 values are widened to float64 exactly, so either gives the same result. */
  x: Float64Array | Float32Array;
  batch: number;
  samples: number;
  /** [layer][8] */
  keys: Uint32Array;
  /** [layer][sample][2] */
  scalars: Float64Array;
  /**
   * `meanSoftmax`: return the Monte Carlo predictive [batch, classes] instead of the logits,
   * bit for bit {@link meanSoftmax} of them (kernels/softmax.ts).
   */
  reduce?: 'meanSoftmax';
}

/** A plan held by a provider. */
export interface ExecutionPlan {
  /**
   * Logits of every sample, [samples, batch, classes] (or with `reduce`, the mean softmax
   * [batch, classes]). A value of `x` that is not finite is a QbnnError `ERR_NAN` naming `x[i]`
   * (nothing runs), a logit that is not finite one naming `logits[i]`.
   */
  run(args: PlanRunArgs): Float32Array;
  /** Frees the plan's native memory now (arenas, sampled weights). */
  dispose(): void;
}

/** The error of a logit that is not finite (valid but extreme quantisation scales overflow float32). */
export function nonFiniteLogit(index: number, value: number): QbnnError {
  return new QbnnError(
    'ERR_NAN',
    `logits[${index}] is ${value}: the model's quantisation scales overflow float32 (check the saved parameters)`,
  );
}

/** Largest batch and sample count of one plan call (what the native plans take). */
export const MAX_PLAN_COUNT = 2 ** 24;

/**
 * Memory budget of one forward call, in activation elements: samples x batch x the model's
 * largest per-example activation may not exceed it (a quantised model's forward and a plan's
 * run both check it, so a plan call is bounded before anything is allocated). The integer
 * engine holds such an activation as u8 (256 MiB at the limit), the float twin as float64
 * (2 GiB at the limit).
 */
export const MAX_FORWARD_ELEMENTS = 2 ** 28;

/**
 * The largest per-example activation of a plan: its input, logits and every layer's output, each
 * an activation of the model (a layer's input may be larger, a transposed convolution's spread
 * one, which the model's own budget does not count: a plan refuses no call its model's forward takes).
 */
function largestActivation(desc: Pick<PlanDescription, 'inputSize' | 'classes' | 'layers'>): number {
  let m = Math.max(desc.inputSize, desc.classes);
  for (const l of desc.layers) m = Math.max(m, l.outSize);
  return m;
}

/**
 * Checks one call of a plan compiled from `desc` (what every provider's `run` does first): `x` a
 * Float64Array or Float32Array of batch x inputSize values, batch and samples integers in
 * [1, {@link MAX_PLAN_COUNT}] whose product with the plan's largest per-example activation is
 * within {@link MAX_FORWARD_ELEMENTS} (a forward's budget), `keys` a Uint32Array of 8 words a
 * layer, `scalars` a Float64Array of 2 a layer and sample, `reduce` absent or 'meanSoftmax'. A
 * QbnnError ERR_ARG names what does not fit (the values' finiteness is the provider's, with the
 * same ERR_NAN as the engine).
 */
export function checkPlanRunArgs(
  args: unknown,
  desc: Pick<PlanDescription, 'inputSize' | 'classes' | 'layers'>,
): PlanRunArgs {
  const fail = (what: string): never => {
    throw new QbnnError('ERR_ARG', `plan.run: ${what}`);
  };
  if (args === null || typeof args !== 'object')
    fail('args must be an object { x, batch, samples, keys, scalars }');
  const a = args as Record<string, unknown>;
  for (const name of ['batch', 'samples'] as const) {
    const v = a[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_PLAN_COUNT)
      fail(`${name} must be an integer in [1, ${MAX_PLAN_COUNT}], got ${String(v)}`);
  }
  const batch = a.batch as number;
  const samples = a.samples as number;
  const largest = largestActivation(desc);
  const need = samples * batch * largest;
  if (need > MAX_FORWARD_ELEMENTS)
    fail(
      `samples ${samples} x batch ${batch} x the largest activation (${largest} values an example) = ${need} exceeds the budget of one call, ${MAX_FORWARD_ELEMENTS} elements: use fewer samples or a smaller batch`,
    );
  const layers = desc.layers.length;
  if (!(a.x instanceof Float64Array || a.x instanceof Float32Array))
    fail('x must be a Float64Array or a Float32Array');
  if ((a.x as Float64Array).length !== batch * desc.inputSize)
    fail(
      `x must hold batch * inputSize = ${batch} * ${desc.inputSize} values, got ${(a.x as Float64Array).length}`,
    );
  if (!(a.keys instanceof Uint32Array) || a.keys.length !== layers * 8)
    fail(`keys must be a Uint32Array of 8 words a layer (${layers * 8})`);
  if (!(a.scalars instanceof Float64Array) || a.scalars.length !== layers * samples * 2)
    fail(`scalars must be a Float64Array of 2 a layer and sample (${layers * samples * 2})`);
  if (a.reduce !== undefined && a.reduce !== 'meanSoftmax')
    fail(`reduce must be 'meanSoftmax' or absent, got ${String(a.reduce)}`);
  return args as PlanRunArgs;
}
