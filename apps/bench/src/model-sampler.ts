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

/** The model's sampled layers (Gaussian and Radial weights) with their sampler arguments. */
export function sampledLayers(qm: QuantizedModel) {
  const out: { path: string; args: Omit<GaussianSampleArgs, 'position' | 'out'> }[] = [];
  for (const layer of qm.layers) {
    const w = qm.layerWeights(layer);
    if (w.kind === 'gaussian' || w.kind === 'radial')
      out.push({ path: layer.path, args: layerSamplerArgs(w as GaussianWeights, layer.n, layer.k) });
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
  layers: { path: string; n: number; k: number; copies: number; rate: number }[];
}

/**
 * The fused sampler on each of the model's sampled layers with the layer's real mu, sigma, zero
 * points and multipliers, every draw written into one reused pack (as plans sample), timed by
 * `seconds` (CPU time of the calling thread); median of `runs` draws per layer. A small layer is
 * stacked along its rows until one call holds about 2^20 weights, so that the fixed cost of a
 * kernel call (argument checks, the N-API crossing) does not count as sampling; its per-row
 * costs do. Undefined when the model has no sampled layer.
 */
export function modelSamplerRate(
  qm: QuantizedModel,
  kernels: KernelProvider,
  seconds: () => number,
  runs = 7,
): ModelSamplerRate | undefined {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const layers: ModelSamplerRate['layers'] = [];
  let weights = 0;
  let total = 0;
  for (const { path, args } of sampledLayers(qm)) {
    const nk = args.n * args.k;
    const copies = Math.max(1, Math.floor(2 ** 20 / nk));
    const a = stackedSamplerArgs(args, copies);
    const pack = kernels.sampleGaussianPacked({ ...a, position: 0 });
    const t: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = seconds();
      kernels.sampleGaussianPacked({ ...a, position: (r + 1) * 1e6, out: pack });
      t.push(seconds() - t0);
    }
    pack.dispose?.();
    const perCopy = median(t) / copies;
    layers.push({ path, n: args.n, k: args.k, copies, rate: nk / perCopy });
    weights += nk;
    total += perCopy;
  }
  if (layers.length === 0) return undefined;
  return { weights, seconds: total, rate: weights / total, layers };
}
