// The limit of Monte Carlo inference on this machine: the integer work at the vpdpbusd peak plus
// the weight sampling at the fused sampler's rate, both measured in the same run as the cells.

/** LeNet-5 as the Ferianc study defines it (also peers/torch_bnn.py), 1x28x28 input. */
export const LENET5_LAYERS = [
  // conv 5x5 pad 2 on 28x28, then 2x2 max pool
  { kind: 'conv', out: 20, in: 1, k: 5, size: 28 },
  // conv 5x5 pad 2 on 14x14, then 2x2 max pool
  { kind: 'conv', out: 50, in: 20, k: 5, size: 14 },
  { kind: 'linear', out: 500, in: 50 * 7 * 7 },
  { kind: 'linear', out: 10, in: 500 },
] as const;

/** Multiply-adds of one image and weights of one Monte Carlo sample. */
export function lenet5Work(): { macsPerImage: number; weightsPerSample: number } {
  let macs = 0;
  let weights = 0;
  for (const l of LENET5_LAYERS) {
    const w = l.kind === 'conv' ? l.out * l.in * l.k * l.k : l.out * l.in;
    weights += w;
    macs += l.kind === 'conv' ? w * l.size * l.size : w;
  }
  return { macsPerImage: macs, weightsPerSample: weights };
}

/**
 * ResNet-18 as the Ferianc study defines it (also peers/torch_bnn.py), 3x32x32 input: every
 * Bayesian layer with its output size (stem, per basic block conv a, conv b and the 1x1
 * shortcut where the shape changes, fc).
 */
export function resnet18Layers(widths = [24, 48, 96, 192], blocks = 2) {
  const layers: { kind: 'conv' | 'linear'; out: number; in: number; k: number; size: number }[] = [
    { kind: 'conv', out: widths[0], in: 3, k: 3, size: 32 },
  ];
  let c = widths[0];
  let size = 32;
  widths.forEach((w, s) => {
    for (let i = 0; i < blocks; i++) {
      const stride = i === 0 && s > 0 ? 2 : 1;
      const out = size / stride;
      layers.push({ kind: 'conv', out: w, in: c, k: 3, size: out });
      layers.push({ kind: 'conv', out: w, in: w, k: 3, size: out });
      if (stride !== 1 || c !== w) layers.push({ kind: 'conv', out: w, in: c, k: 1, size: out });
      c = w;
      size = out;
    }
  });
  layers.push({ kind: 'linear', out: 10, in: c, k: 1, size: 1 });
  return layers;
}

/** Multiply-adds of one image and weights of one Monte Carlo sample of ResNet-18. */
export function resnet18Work(): { macsPerImage: number; weightsPerSample: number } {
  let macs = 0;
  let weights = 0;
  for (const l of resnet18Layers()) {
    const w = l.out * l.in * l.k * l.k;
    weights += w;
    macs += w * l.size * l.size;
  }
  return { macsPerImage: macs, weightsPerSample: weights };
}

/**
 * Images/s at the limit, weights mode: L samples of the weights (each shared by the batch) and
 * L x batch forward passes of 2 x macs integer operations. With `batchOne` and a batch of 1, the
 * sampling of one sample takes `batchOne.seconds` (layers sampled with their dot products, as
 * plans run them there) and the `dottedMacs` an image those draws include leave the integer term.
 */
export function limitImagesPerSecond(
  batch: number,
  samples: number,
  work: { macsPerImage: number; weightsPerSample: number },
  peakOpsPerSecond: number,
  samplerWeightsPerSecond: number,
  batchOne?: { seconds: number; dottedMacs: number },
): number {
  const one = batch === 1 ? batchOne : undefined;
  const macs = work.macsPerImage - (one?.dottedMacs ?? 0);
  const sampling = one ? one.seconds : work.weightsPerSample / samplerWeightsPerSecond;
  const seconds = (samples * batch * 2 * macs) / peakOpsPerSecond + samples * sampling;
  return batch / seconds;
}
