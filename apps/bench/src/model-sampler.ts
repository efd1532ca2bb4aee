// The fused Gaussian sampler's rate on a quantised model's own Bayesian layers: what the limit of
// a Monte Carlo cell charges for its weight sampling (peers suite) and what the rng suite reports
// beside its synthetic cases. Synthetic round scales put many weights on float64 rounding ties
// and synthetic shapes miss the small layers' per-row costs; a model's layers have neither bias.
import { type GaussianSampleArgs, gaussianSampleMultipliers, type KernelProvider } from '@qbnn/core';
import { channelScales, channelZeroPoints, type GaussianWeights, type QuantizedModel } from '@qbnn/qat';

/** One Gaussian (or Radial) layer's sampler arguments, but for the stream position. */
export function layerSamplerArgs(
  w: GaussianWeights,
  n: number,
  k: number,
): Omit<GaussianSampleArgs, 'position' | 'out'> {
  return {
    mu: w.mu,
    muZeroPoint: channelZeroPoints(w.muQ, n),
    sigma: w.sigma,
    sigmaZeroPoint: channelZeroPoints(w.sigmaQ, n),
    noiseZeroPoint: channelZeroPoints(w.noiseQ, n),
    weightZeroPoint: channelZeroPoints(w.weightQ, n),
    ...gaussianSampleMultipliers({
      n,
      muScale: channelScales(w.muQ, n),
      sigmaScale: channelScales(w.sigmaQ, n),
      noiseScale: channelScales(w.noiseQ, n),
      weightScale: channelScales(w.weightQ, n),
    }),
    n,
    k,
    bits: w.weightQ.bits,
    key: [1, 2],
  };
}

/**
 * The model's sampled layers (Gaussian and Radial weights) with their sampler arguments; `dotted`:
 * a Gaussian linear layer, which an execution plan samples at batch 1 with each row dotted with
 * the input as it is drawn (no pack written).
 */
export function sampledLayers(qm: QuantizedModel) {
  const out: { path: string; dotted: boolean; args: Omit<GaussianSampleArgs, 'position' | 'out'> }[] = [];
  for (const layer of qm.layers) {
    const w = qm.layerWeights(layer);
    if (w.kind === 'gaussian' || w.kind === 'radial')
      out.push({
        path: layer.path,
        dotted: layer.op === 'linear' && w.kind === 'gaussian',
        args: layerSamplerArgs(w as GaussianWeights, layer.n, layer.k),
      });
  }
  return out;
}

/** `args` with its rows repeated `copies` times (the same layer, stacked along N). */
export function stackedSamplerArgs(args: Omit<GaussianSampleArgs, 'position' | 'out'>, copies: number) {
  if (copies === 1) return args;
  const tile = <T extends Int8Array | Uint8Array | Int32Array | Float64Array>(a: T): T => {
    const t = new (a.constructor as new (n: number) => T)(a.length * copies);
    for (let c = 0; c < copies; c++) t.set(a, c * a.length);
    return t;
  };
  return {
    ...args,
    mu: tile(args.mu as Int8Array),
    sigma: tile(args.sigma as Uint8Array),
    muZeroPoint: tile(args.muZeroPoint),
    sigmaZeroPoint: tile(args.sigmaZeroPoint),
    noiseZeroPoint: tile(args.noiseZeroPoint),
    weightZeroPoint: tile(args.weightZeroPoint),
    m1: tile(args.m1),
    m2: tile(args.m2),
    m3: tile(args.m3),
    n: args.n * copies,
  };
}

export interface ModelSamplerRate {
  /** Weights of one Monte Carlo sample of the model. */
  weights: number;
  /** Seconds of sampling for one Monte Carlo sample (sum over the layers). */
  seconds: number;
  /** weights / seconds. */
  rate: number;
  /** `dotRate`: the layer's batch-1 sample + dot (weights/s), when measured. */
  layers: { path: string; n: number; k: number; copies: number; rate: number; dotRate?: number }[];
  /**
   * Batch 1 as plans run it, when `sampleDot` was given: seconds of one sample with the dotted
   * layers at their sample + dot rate (the others as in `seconds`), and the multiply-adds an
   * image those draws include (n k of each dotted layer).
   */
  batchOne?: { seconds: number; dottedMacs: number };
}

/** Batch 1's fused sample + dot (native-amx's sampleGaussianDot): false when the CPU lacks it. */
export type SampleDot = (args: GaussianSampleArgs, x: Uint8Array, dots: Int32Array) => boolean;

/**
 * The fused sampler on each of the model's sampled layers with the layer's real mu, sigma, zero
 * points and multipliers, every draw written into one reused pack (as plans sample), timed by
 * `seconds` (CPU time of the calling thread); median of `runs` draws per layer. A small layer is
 * stacked along its rows until one call holds about 2^20 weights, so that the fixed cost of a
 * kernel call (argument checks, the N-API crossing) does not count as sampling; its per-row
 * costs do. With `sampleDot`, each layer a plan dots at batch 1 is also timed that way (the
 * same stacking, an input of random bytes): `batchOne`. Undefined when the model has no sampled
 * layer.
 */
export function modelSamplerRate(
  qm: QuantizedModel,
  kernels: KernelProvider,
  seconds: () => number,
  runs = 7,
  sampleDot?: SampleDot,
): ModelSamplerRate | undefined {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const layers: ModelSamplerRate['layers'] = [];
  let weights = 0;
  let total = 0;
  let batchOne: ModelSamplerRate['batchOne'] = sampleDot ? { seconds: 0, dottedMacs: 0 } : undefined;
  for (const { path, dotted, args } of sampledLayers(qm)) {
    const nk = args.n * args.k;
    const copies = Math.max(1, Math.floor(2 ** 20 / nk));
    const a = stackedSamplerArgs(args, copies);
    const pack = kernels.sampleGaussianPacked({ ...a, position: 0 });
    const time = (draw: (position: number) => unknown) => {
      const t: number[] = [];
      for (let r = 0; r < runs; r++) {
        const t0 = seconds();
        draw((r + 1) * 1e6);
        t.push(seconds() - t0);
      }
      return median(t) / copies;
    };
    const perCopy = time((position) => kernels.sampleGaussianPacked({ ...a, position, out: pack }));
    let dotPerCopy: number | undefined;
    if (batchOne && sampleDot && dotted) {
      const x = Uint8Array.from({ length: a.k }, (_, i) => (i * 73 + 11) & 255);
      const dots = new Int32Array(a.n);
      if (sampleDot({ ...a, position: 0, out: pack }, x, dots))
        dotPerCopy = time((position) => sampleDot({ ...a, position, out: pack }, x, dots));
      else batchOne = undefined;
    }
    pack.dispose?.();
    layers.push({
      path,
      n: args.n,
      k: args.k,
      copies,
      rate: nk / perCopy,
      ...(dotPerCopy === undefined ? {} : { dotRate: nk / dotPerCopy }),
    });
    weights += nk;
    total += perCopy;
    if (batchOne) {
      batchOne.seconds += dotPerCopy ?? perCopy;
      if (dotPerCopy !== undefined) batchOne.dottedMacs += nk;
    }
  }
  if (layers.length === 0) return undefined;
  return { weights, seconds: total, rate: weights / total, layers, ...(batchOne ? { batchOne } : {}) };
}
