// Test inputs of the kernel contract (src/kernels/types.ts) for the equality tests of every kernel
// provider against the JS reference (@qbnn/native-amx, @qbnn/wasm): a seeded generator independent
// of the code under test, random GEMM / convolution / Gaussian-sampler cases, and a fast byte
// comparison. No Node built-ins, so browser tests can use it too.
import {
  type GaussianSampleArgs,
  type GemmOutput,
  gaussianSampleMultipliers,
  type KernelProvider,
  MAX_GEMM_K,
  type PackedWeights,
  packInts,
  QbnnError,
  type QConv2dArgs,
  type QGemmArgs,
  QNORMAL_THRESHOLDS,
  qnormalFill,
  sampleGaussianWeights,
} from '../src/index.js';

/** xorshift32: deterministic test data in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** A uniform integer in [lo, hi]. */
export function int(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

type Typed = Int8Array | Uint8Array | Int32Array | Uint32Array | Float32Array;

/**
 * Asserts two typed arrays are identical byte for byte (fast, unlike a deep equality on large
 * arrays), naming the first differing element.
 */
export function sameBytes(actual: Typed, expected: Typed, what = ''): void {
  if (actual.constructor !== expected.constructor || actual.length !== expected.length) {
    throw new Error(
      `${what}: got ${actual.constructor.name}(${actual.length}), expected ${expected.constructor.name}(${expected.length})`,
    );
  }
  const a = new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      const e = Math.floor(i / actual.BYTES_PER_ELEMENT);
      throw new Error(`${what}: element ${e} is ${actual[e]}, expected ${expected[e]}`);
    }
  }
}

/** Code and message of the error a call throws ('ok' when none); an integer range's upper bound reads `max`. */
export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof QbnnError)
      return `${e.code}: ${e.message.replace(/ in \[(-?\d+), \d+\]/, ' in [$1, max]')}`;
    throw e;
  }
  return 'ok';
}

/** A random output stage: i32, f32, or u8 (scale up to `maxScale`) with or without ReLU. */
function randomOutput(r: () => number, maxScale: number): GemmOutput {
  const kind = int(r, 0, 3);
  if (kind === 0) return { kind: 'i32' };
  if (kind === 1) return { kind: 'f32' };
  return { kind: 'u8', scale: 0.5 + r() * maxScale, zeroPoint: int(r, 0, 255), relu: kind === 3 };
}

/** A random GEMM of the contract. */
export interface GemmCase {
  m: number;
  n: number;
  k: number;
  a: Uint8Array;
  w: Int8Array;
  za: number;
  zw: number | Int32Array;
  aScale: number;
  wScale: number | Float64Array;
  bias?: Int32Array;
  output: GemmOutput;
}

/**
 * A random GEMM: per-tensor or per-channel parameters, optional bias, every output kind.
 * `extreme`: activations all 255 and weights -128 / 127, the worst case of every int16-pair scheme.
 */
export function gemmCase(seed: number, m: number, n: number, k: number, extreme = false): GemmCase {
  const r = rng(seed);
  const a = new Uint8Array(m * k);
  const w = new Int8Array(n * k);
  if (extreme) {
    a.fill(255);
    w.fill(r() < 0.5 ? -128 : 127);
    for (let i = 0; i < w.length; i += 7) w[i] = -128;
  } else {
    for (let i = 0; i < a.length; i++) a[i] = int(r, 0, 255);
    for (let i = 0; i < w.length; i++) w[i] = int(r, -128, 127);
  }
  const perChannel = r() < 0.5;
  const zw = perChannel ? Int32Array.from({ length: n }, () => int(r, -20, 20)) : int(r, -5, 5);
  const wScale = perChannel ? Float64Array.from({ length: n }, () => 0.001 + r() * 0.05) : 0.01 + r() * 0.02;
  const bias = r() < 0.6 ? Int32Array.from({ length: n }, () => int(r, -200_000, 200_000)) : undefined;
  const output = randomOutput(r, 40);
  return {
    m,
    n,
    k,
    a,
    w,
    za: extreme ? 0 : int(r, 0, 255),
    zw,
    aScale: 0.01 + r() * 0.1,
    wScale,
    bias,
    output,
  };
}

/** The qgemm arguments of a case, without the packed weights. */
export function gemmArgs(c: GemmCase): Omit<QGemmArgs, 'w'> {
  return {
    a: c.a,
    m: c.m,
    aScale: c.aScale,
    aZeroPoint: c.za,
    wScale: c.wScale,
    bias: c.bias,
    output: c.output,
  };
}

/** Runs a GEMM case on `provider` and on `reference`; throws unless the bytes agree. */
export function checkGemm(
  provider: KernelProvider,
  reference: KernelProvider,
  c: GemmCase,
  what: string,
): void {
  const pj = reference.packWeights(c.w, c.n, c.k, c.zw);
  const pp = provider.packWeights(c.w, c.n, c.k, c.zw);
  sameBytes(pp.rowSums, pj.rowSums, `${what} rowSums`);
  sameBytes(pp.zeroPoint, pj.zeroPoint, `${what} zeroPoint`);
  const args = gemmArgs(c);
  const want = reference.qgemm({ ...args, w: pj });
  const got = provider.qgemm({ ...args, w: pp });
  sameBytes(got, want, `${what} ${c.output.kind} m=${c.m} n=${c.n} k=${c.k}`);
  pp.dispose?.();
}

/**
 * A random convolution: groups, stride, padding, dilation, every output kind. `wide`: the channel
 * counts, kernels and batches of real layers (up to 40 input and 60 output channels, kernels up
 * to 5x5, batches up to 7), half of them with symmetric (zero) weight zero points.
 */
export function convCase(seed: number, wide = false) {
  const r = rng(seed);
  const groups = r() < (wide ? 0.15 : 0.3) ? int(r, 2, 3) : 1;
  const cg = wide ? int(r, 1, 40) : int(r, 1, 4);
  const og = wide ? int(r, 1, 60) : int(r, 1, 9);
  const c = cg * groups;
  const o = og * groups;
  const kh = int(r, 1, wide ? 5 : 3);
  const kw = int(r, 1, wide ? 5 : 3);
  const dil: [number, number] = [int(r, 1, 2), int(r, 1, 2)];
  const pad: [number, number] = [int(r, 0, 2), int(r, 0, 2)];
  const stride: [number, number] = [int(r, 1, 2), int(r, 1, 3)];
  const h = int(r, dil[0] * (kh - 1) + 1, wide ? 20 : 12);
  const wd = int(r, dil[1] * (kw - 1) + 1, wide ? 20 : 12);
  const batch = int(r, 1, wide ? 7 : 2);
  const x = Uint8Array.from({ length: batch * c * h * wd }, () => int(r, 0, 255));
  const kg = cg * kh * kw;
  const w = Int8Array.from({ length: o * kg }, () => int(r, -128, 127));
  const symmetric = wide && r() < 0.5;
  const zw = Int32Array.from({ length: o }, () => (symmetric ? 0 : int(r, -10, 10)));
  const wScale = Float64Array.from({ length: o }, () => 0.001 + r() * 0.03);
  const bias = r() < 0.5 ? Int32Array.from({ length: o }, () => int(r, -50_000, 50_000)) : undefined;
  const output = randomOutput(r, 20);
  const onePack = groups > 1 && r() < 0.5; // a single pack of all O rows instead of one per group
  return {
    x,
    xShape: [batch, c, h, wd] as [number, number, number, number],
    xScale: 0.02,
    xZeroPoint: int(r, 0, 255),
    wShape: [o, cg, kh, kw] as [number, number, number, number],
    w,
    zw,
    og,
    kg,
    groups,
    onePack,
    wScale,
    bias,
    stride,
    padding: pad,
    dilation: dil,
    output,
  };
}

export type ConvCase = ReturnType<typeof convCase>;

/** The weight packs of a convolution case as `provider` packs them (one, or one per group). */
export function convPacks(provider: KernelProvider, cs: ConvCase): PackedWeights | PackedWeights[] {
  if (cs.groups === 1 || cs.onePack) return provider.packWeights(cs.w, cs.wShape[0], cs.kg, cs.zw);
  const list: PackedWeights[] = [];
  for (let g = 0; g < cs.groups; g++) {
    list.push(
      provider.packWeights(
        cs.w.subarray(g * cs.og * cs.kg, (g + 1) * cs.og * cs.kg),
        cs.og,
        cs.kg,
        cs.zw.subarray(g * cs.og, (g + 1) * cs.og),
      ),
    );
  }
  return list;
}

/** Arguments of the fused Gaussian sampler at `bits`, random scales (per tensor or channel) and zero points. */
export function sampleCase(seed: number, n: number, k: number, bits: number): GaussianSampleArgs {
  const r = rng(seed);
  const qmax = 2 ** (bits - 1) - 1;
  const qmin = -(2 ** (bits - 1));
  const mu = Int8Array.from({ length: n * k }, () => int(r, qmin, qmax));
  const sigma = Uint8Array.from({ length: n * k }, () => int(r, 0, 255));
  const perChannel = r() < 0.5;
  const ch = (f: () => number) => (perChannel ? Float64Array.from({ length: n }, f) : f());
  const { m1, m2, m3 } = gaussianSampleMultipliers({
    n,
    muScale: ch(() => 0.001 + r() * 0.01),
    sigmaScale: ch(() => 0.0001 + r() * 0.001),
    noiseScale: ch(() => 0.0005 + r() * 0.01),
    weightScale: ch(() => 0.001 + r() * 0.02),
  });
  const zp = (lo: number, hi: number) => Int32Array.from({ length: n }, () => int(r, lo, hi));
  return {
    mu,
    muZeroPoint: zp(-3, 3),
    sigma,
    sigmaZeroPoint: zp(0, 20),
    noiseZeroPoint: zp(Math.max(qmin, -4), Math.min(qmax, 4)),
    weightZeroPoint: zp(Math.max(qmin, -4), Math.min(qmax, 4)),
    m1,
    m2,
    m3,
    n,
    k,
    bits,
    key: [int(r, 0, 2 ** 32 - 1), int(r, 0, 2 ** 32 - 1)],
    position: int(r, 0, 2 ** 40),
  };
}

/**
 * Uniform words at every quantised-normal threshold boundary (t - 1, t, t + 1 and the edges of
 * its 2^20 guide bucket), the extremes, far-tail runs and `random` pseudo-random words.
 */
export function thresholdWords(random = 200_000): Uint32Array {
  const words: number[] = [0, 1, 0xffffffff, 0xfffffffe, 0x80000000];
  for (const t of QNORMAL_THRESHOLDS) {
    words.push(t - 1, t, t + 1, (t & 0xfff00000) >>> 0, (t | 0xfffff) >>> 0);
  }
  for (let i = 0; i < 64; i++) words.push(i * 997, 0xffffffff - i * 1009);
  let s = 12345;
  for (let i = 0; i < random; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    words.push(s);
  }
  return Uint32Array.from(words);
}

// ---------------------------------------------------------------- suites shared by providers

/**
 * GEMM equality on random shapes: the edges first (M = 1, N = 1, K = 1, K not a multiple of 4,
 * N not of a panel, several panels and row blocks, K cut into slices), then `small` random small
 * shapes, then random larger ones until `budget` multiply-adds (the JS oracle is slow).
 */
export function randomGemms(
  provider: KernelProvider,
  reference: KernelProvider,
  what: string,
  small: number,
  budget: number,
): void {
  const r = rng(what.length * 7919 + 1);
  let macs = 0;
  let seed = 1;
  const fixed: [number, number, number][] = [
    [1, 1, 1],
    [1, 1, 5],
    [1, 17, 3],
    [7, 1, 64],
    [33, 33, 65],
    [6, 64, 129],
    [13, 50, 255],
    [31, 47, 1023],
    [13, 130, 2500],
    [6, 64, 1025],
    [200, 9, 1025],
  ];
  for (const [m, n, k] of fixed) {
    checkGemm(provider, reference, gemmCase(seed++, m, n, k), what);
    macs += m * n * k;
  }
  for (let i = 0; i < small; i++) {
    checkGemm(provider, reference, gemmCase(seed++, int(r, 1, 24), int(r, 1, 70), int(r, 1, 150)), what);
  }
  while (macs < budget) {
    const m = int(r, 1, 40);
    const n = int(r, 1, 80);
    const k = int(r, 1, r() < 0.2 ? 4096 : 300);
    checkGemm(provider, reference, gemmCase(seed++, m, n, k), what);
    macs += m * n * k;
  }
}

/** GEMM equality on the worst-case values 255 x -128 / 127, K up to MAX_GEMM_K. */
export function extremeGemms(provider: KernelProvider, reference: KernelProvider, what: string): void {
  for (const [m, n, k] of [
    [3, 20, 4096],
    [8, 33, 4093],
    [1, 16, 2048],
    [2, 3, MAX_GEMM_K],
    [7, 9, MAX_GEMM_K - 1],
  ] as [number, number, number][]) {
    for (let s = 0; s < 2; s++) checkGemm(provider, reference, gemmCase(100 + s, m, n, k, true), what);
  }
}

/** Convolution equality on `count` random geometries (`wide`: of real layer widths, see convCase). */
export function randomConvs(
  provider: KernelProvider,
  reference: KernelProvider,
  what: string,
  count: number,
  wide = false,
): void {
  for (let s = 1; s <= count; s++) {
    const cs = convCase(wide ? s * 977 + what.length : s * 31 + what.length, wide);
    const want = reference.qconv2d({ ...cs, w: convPacks(reference, cs) });
    const got = provider.qconv2d({ ...cs, w: convPacks(provider, cs) });
    const shapes = `${JSON.stringify(cs.xShape)} ${JSON.stringify(cs.wShape)} groups ${cs.groups}`;
    sameBytes(got, want, `${what} ${wide ? 'wide ' : ''}case ${s} ${shapes}`);
  }
}

/**
 * Convolution equality on the zoo's layers (LeNet-5 conv1/conv2, ResNet-18 3x3, strided, 1x1
 * shortcut, RGB stem), with and without symmetric weights.
 */
export function zooConvs(provider: KernelProvider, reference: KernelProvider, what: string): void {
  // [name, C, O, H, k, stride, pad, batch]
  const layers: [string, number, number, number, number, number, number, number][] = [
    ['lenet5.conv1', 1, 20, 28, 5, 1, 2, 2],
    ['lenet5.conv2', 20, 50, 14, 5, 1, 2, 6],
    ['resnet.3x3.w24', 24, 24, 16, 3, 1, 1, 2],
    ['resnet.3x3.w96', 96, 96, 8, 3, 1, 1, 3],
    ['resnet.3x3.w192', 192, 192, 4, 3, 1, 1, 5],
    ['resnet.3x3s2', 24, 48, 16, 3, 2, 1, 2],
    ['resnet.1x1s2', 48, 96, 8, 1, 2, 0, 3],
    ['resnet.stem', 3, 24, 16, 3, 1, 1, 2],
  ];
  const r = rng(99 + what.length);
  for (const [name, c, o, h, k, st, pd, batch] of layers) {
    const kg = c * k * k;
    for (const zeroW of [false, true]) {
      const w = Int8Array.from({ length: o * kg }, () => int(r, -128, 127));
      const zw = Int32Array.from({ length: o }, () => (zeroW ? 0 : int(r, -5, 5)));
      const args = {
        x: Uint8Array.from({ length: batch * c * h * h }, () => int(r, 0, 255)),
        xShape: [batch, c, h, h] as [number, number, number, number],
        xScale: 0.02,
        xZeroPoint: int(r, 0, 255),
        wShape: [o, c, k, k] as [number, number, number, number],
        wScale: Float64Array.from({ length: o }, () => 0.001 + r() * 0.01),
        bias: Int32Array.from({ length: o }, () => int(r, -20_000, 20_000)),
        stride: [st, st] as [number, number],
        padding: [pd, pd] as [number, number],
        output: { kind: 'u8', scale: 20 + r() * 200, zeroPoint: int(r, 0, 40), relu: true } as GemmOutput,
      };
      const want = reference.qconv2d({ ...args, w: reference.packWeights(w, o, kg, zw) });
      const got = provider.qconv2d({ ...args, w: provider.packWeights(w, o, kg, zw) });
      sameBytes(got, want, `${what} ${name} zeroW ${zeroW}`);
    }
  }
}

/**
 * Fused Gaussian sampler equality at 8, 4 and 2 bits on edge and random shapes; `unpack` turns
 * the provider's pack back into row-major s8.
 */
export function sampledPacks(
  provider: KernelProvider,
  reference: KernelProvider,
  unpack: (w: PackedWeights) => Int8Array,
): void {
  let s = 1;
  for (const [n, k] of [
    [1, 1],
    [1, 7],
    [3, 5],
    [8, 64],
    [16, 64],
    [17, 33],
    [40, 129],
    [70, 301],
    [5, 4096],
  ] as [number, number][]) {
    for (const bits of [8, 4, 2]) {
      const a = sampleCase(s++, n, k, bits);
      const p = provider.sampleGaussianPacked(a);
      sameBytes(unpack(p), sampleGaussianWeights(a), `n=${n} k=${k} bits=${bits}`);
      const pj = reference.sampleGaussianPacked(a);
      sameBytes(p.rowSums, pj.rowSums, 'rowSums');
      sameBytes(p.zeroPoint, pj.zeroPoint, 'zeroPoint');
    }
  }
}

/**
 * The fused sampler and packWeights on packed input (PackedInts): for every weight width
 * 2..8 and mu / sigma width 2..8, odd row lengths, values at the signed extremes, the provider's
 * pack from packed input equals the reference's sample of the unpacked values.
 */
export function packedInputPacks(provider: KernelProvider, unpack: (w: PackedWeights) => Int8Array): void {
  let s = 100;
  for (const [n, k] of [
    [1, 1],
    [3, 5],
    [17, 33],
    [21, 131],
    [40, 67],
  ] as [number, number][]) {
    for (let bits = 2; bits <= 8; bits++) {
      const a = sampleCase(s++, n, k, bits);
      const r = rng(s);
      const lo = -(2 ** (bits - 1));
      // extremes first, then random values of the width
      const mu = Int8Array.from({ length: n * k }, (_, i) =>
        i < 2 ? (i ? lo : -lo - 1) : int(r, lo, -lo - 1),
      );
      const sigmaBits = ((bits + 2) % 7) + 2;
      const sigma = Uint8Array.from({ length: n * k }, (_, i) =>
        i === 2 ? 2 ** sigmaBits - 1 : int(r, 0, 2 ** sigmaBits - 1),
      );
      const plain = { ...a, mu, sigma };
      const packed = {
        ...a,
        mu: { bytes: packInts(mu, bits, true), bits },
        sigma: { bytes: packInts(sigma, sigmaBits, false), bits: sigmaBits },
      };
      const what = `n=${n} k=${k} bits=${bits} sigmaBits=${sigmaBits}`;
      const p = provider.sampleGaussianPacked(packed);
      sameBytes(unpack(p), sampleGaussianWeights(plain), `sampler ${what}`);
      sameBytes(p.rowSums, rowSumsOf(sampleGaussianWeights(plain), n, k), `rowSums ${what}`);
      p.dispose?.();
      const w = provider.packWeights({ bytes: packInts(mu, bits, true), bits }, n, k, a.weightZeroPoint);
      sameBytes(unpack(w), mu, `packWeights ${what}`);
      sameBytes(w.rowSums, rowSumsOf(mu, n, k), `packWeights rowSums ${what}`);
      w.dispose?.();
    }
  }
}

/** Row sums by a plain loop (an independent check of a pack's rowSums). */
function rowSumsOf(w: Int8Array, n: number, k: number): Int32Array {
  return Int32Array.from({ length: n }, (_, r) => w.subarray(r * k, r * k + k).reduce((x, y) => x + y, 0));
}

/**
 * Sampler multipliers chosen to stress a provider's fast arithmetic: exact .5 ties of the
 * float64 contract (m = 1/2, 3/2, 5/6 with 1/3), values a few float64 ulps from ties
 * (1/2 +- 2^-30, 1/3), multipliers so large that most values clamp, tiny (below float32's
 * normal range), at float32's smallest normal, and a mix per channel.
 */
export function adversarialSampleCases(): GaussianSampleArgs[] {
  const sets: [number, number, number][] = [
    [0.5, 0.5, 1.5],
    [0.25, 5 / 6, 1 / 3],
    [0.5 + 2 ** -30, 1 / 3, 0.5 - 2 ** -30],
    [1 / 3, 0.5 + 2 ** -40, 1 / 6],
    [1000, 300, 7],
    [0.02, 2000, 0.01],
    [1e-35, 0.7, 1e-40],
    [1e-300, 1e-39, 0.9],
    [2 ** -20, 0.8, 2 ** -126],
    [3 / 127, 1, 1],
  ];
  const out: GaussianSampleArgs[] = [];
  let seed = 900;
  for (const bits of [8, 5, 3]) {
    for (const [m1, m2, m3] of sets) {
      const a = sampleCase(seed++, 19, 77, bits);
      out.push({
        ...a,
        m1: new Float64Array(19).fill(m1),
        m2: new Float64Array(19).fill(m2),
        m3: new Float64Array(19).fill(m3),
      });
    }
    // every set in one tensor, a channel each
    const a = sampleCase(seed++, sets.length * 2, 50, bits);
    const pick = (j: number) =>
      Float64Array.from({ length: sets.length * 2 }, (_, r) => sets[r % sets.length][j]);
    out.push({ ...a, m1: pick(0), m2: pick(1), m3: pick(2) });
  }
  return out;
}

/**
 * Samples whose second rounding step lands within float32 error of a half-integer, with the
 * first step far from one: a float32 fast path whose step-2 error bound is too small rounds
 * some of these to the wrong side. Each row has one mu, sigma - Zsig = 1 and m1 = 2^20, so the
 * noise clamps to nHi (eps > 0), nLo (eps < 0) or 0; m3 puts ~1000.3 on the nHi lanes and a
 * negative mu times m2 cancels it to T + 1/2 + delta, so the bound must cover |a| + |b| ~ 2000, not the small result.
 */
export function nearHalfSampleCases(): GaussianSampleArgs[] {
  const deltas = [0, 2 ** -30, 1e-6, 4e-6, 1e-5, 3e-5, 6e-5, 1e-4, 3e-4];
  const out: GaussianSampleArgs[] = [];
  let seed = 1300;
  for (const bits of [8, 4, 2]) {
    const qmax = 2 ** (bits - 1) - 1;
    const qmin = -qmax - 1;
    const rows: [number, number][] = []; // [T, delta]
    for (const t of [qmin, -1, 0, qmax - 1]) for (const d of deltas) rows.push([t, d], [t, -d]);
    const n = rows.length;
    const k = 67;
    const a = sampleCase(seed++, n, k, bits);
    const muOf = (r: number) => -1 - (r % 2); // negative, so m2 > 0 cancels b = nHi m3 > 0
    const big = 1000.3 + (seed % 7) / 9;
    out.push({
      ...a,
      mu: Int8Array.from({ length: n * k }, (_, i) => muOf(Math.floor(i / k))),
      sigma: Uint8Array.from({ length: n * k }, (_, i) => a.sigmaZeroPoint[Math.floor(i / k)] + 1),
      noiseZeroPoint: new Int32Array(n),
      weightZeroPoint: new Int32Array(n),
      muZeroPoint: new Int32Array(n),
      m1: new Float64Array(n).fill(2 ** 20),
      m2: Float64Array.from(rows, ([t, d], r) => (t + 0.5 + d - big) / muOf(r)),
      m3: new Float64Array(n).fill(big / qmax),
    });
  }
  return out;
}

/** qnormal equality with qnormalFill for many streams, offsets and lengths. */
export function qnormalStreams(provider: KernelProvider): void {
  const lens = [0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 127, 1000, 4099, 70_001];
  let pos = 0;
  for (const len of lens) {
    for (const key of [
      [0, 0],
      [123, 456],
      [0xffffffff, 1],
    ] as [number, number][]) {
      const a = qnormalFill(key, pos, new Int8Array(len));
      const b = provider.qnormal({ key, position: pos, out: new Int8Array(len) });
      sameBytes(b, a, `len ${len} key ${key} position ${pos}`);
      pos = (pos * 3 + 1 + len) % 2 ** 40;
    }
  }
}

// Bad calls: every provider validates with src/kernels/validate.ts, so each must fail with the
// reference's code and message (only the bounds a provider tightens differ).
const gemmCall = (p: KernelProvider, over: Partial<QGemmArgs>) =>
  p.qgemm({
    a: new Uint8Array(12),
    m: 3,
    aScale: 0.1,
    aZeroPoint: 0,
    w: p.packWeights(new Int8Array(8), 2, 4, 0),
    wScale: 0.1,
    output: { kind: 'i32' },
    ...over,
  });
/** An Int8Array whose buffer was transferred away (it reads as empty). */
export function detachedInt8(length: number): Int8Array {
  const v = new Int8Array(length);
  structuredClone(v.buffer, { transfer: [v.buffer] });
  return v;
}
const badGemms: Partial<QGemmArgs>[] = [
  { a: new Uint8Array(11) },
  { a: new Int8Array(12) as never },
  { m: 1.5 },
  { m: -1 },
  { aScale: Number.NaN },
  { aScale: 0 },
  { aZeroPoint: 256 },
  { wScale: [1, 2, 3] },
  { wScale: [Number.NaN] },
  { wScale: [1, 0] },
  { bias: new Int32Array(3) },
  { bias: new Float32Array(2) as never },
  { out: new Float32Array(6) },
  { out: new Int32Array(5) },
  { output: { kind: 'u8', scale: 1, zeroPoint: 256 } },
  { output: { kind: 'u8', scale: 1, zeroPoint: 0, relu: 1 as never } },
  { output: { kind: 'f16' } as never },
  { output: undefined as never },
  { m: 2 ** 28 },
];
const convCall = (p: KernelProvider, over: Partial<QConv2dArgs>) =>
  p.qconv2d({
    x: new Uint8Array(4 * 25),
    xShape: [1, 4, 5, 5],
    xScale: 1,
    xZeroPoint: 0,
    w: p.packWeights(new Int8Array(2 * 36), 2, 36, 0),
    wShape: [2, 4, 3, 3],
    wScale: 1,
    output: { kind: 'i32' },
    ...over,
  });
const badConvs: Partial<QConv2dArgs>[] = [
  { x: new Uint8Array(99) },
  { wShape: [2, 3, 3, 3] },
  { groups: 3 },
  { groups: 2, wShape: [2, 2, 3, 3] },
  { stride: [0, 1] },
  { padding: [-1, 0] },
  { dilation: [3, 3] },
  { xZeroPoint: 300 },
  { bias: new Int32Array(3) },
  { xShape: [1, 4, 5] as never },
  { out: new Uint8Array(18) },
  { padding: [2 ** 20, 2 ** 20] },
];
const sampleArgs: GaussianSampleArgs = {
  mu: new Int8Array(6),
  muZeroPoint: new Int32Array(2),
  sigma: new Uint8Array(6),
  sigmaZeroPoint: new Int32Array(2),
  noiseZeroPoint: new Int32Array(2),
  weightZeroPoint: new Int32Array(2),
  m1: Float64Array.of(1, 1),
  m2: Float64Array.of(1, 1),
  m3: Float64Array.of(1, 1),
  n: 2,
  k: 3,
  bits: 8,
  key: [1, 2],
  position: 0,
};
const badSamples: Partial<GaussianSampleArgs>[] = [
  { mu: new Int8Array(5) },
  { sigma: new Int8Array(6) as never },
  { weightZeroPoint: Int32Array.of(0, 128) },
  { noiseZeroPoint: Int32Array.of(0) },
  { m1: Float64Array.of(1, Number.NaN) },
  { m3: Float64Array.of(1, 0) },
  { bits: 9 },
  { key: [1, -1] },
];
const otherCalls: [string, (p: KernelProvider) => unknown][] = [
  ['qnormal position', (p) => p.qnormal({ key: [1, 2], position: -1, out: new Int8Array(3) })],
  ['qnormal out', (p) => p.qnormal({ key: [1, 2], position: 0, out: new Uint8Array(3) as never })],
  ['qnormal key', (p) => p.qnormal({ key: [1, 2 ** 32], position: 0, out: new Int8Array(3) })],
  ['qnormal detached out', (p) => p.qnormal({ key: [1, 2], position: 0, out: detachedInt8(8) })],
  ['qgemm null args', (p) => p.qgemm(null as never)],
  ['pack length', (p) => p.packWeights(new Int8Array(5), 2, 3, 0)],
  ['pack zero points', (p) => p.packWeights(new Int8Array(6), 2, 3, [0, 0, 0])],
  ['pack zero point range', (p) => p.packWeights(new Int8Array(6), 2, 3, 128)],
];

/**
 * The bad calls where `provider` does not fail exactly like `reference` (code and message), or
 * does not fail at all, or where a good call fails: empty when the validation agrees.
 */
export function rejectionMismatches(provider: KernelProvider, reference: KernelProvider): string[] {
  const calls: [string, (p: KernelProvider) => unknown, boolean][] = [
    ['good qgemm', (p) => gemmCall(p, {}), true],
    ['good qconv2d', (p) => convCall(p, {}), true],
    ['good sample', (p) => p.sampleGaussianPacked(sampleArgs), true],
    ...badGemms.map((o): [string, (p: KernelProvider) => unknown, boolean] => [
      `qgemm ${JSON.stringify(o)}`,
      (p) => gemmCall(p, o),
      false,
    ]),
    ...badConvs.map((o): [string, (p: KernelProvider) => unknown, boolean] => [
      `qconv2d ${JSON.stringify(o)}`,
      (p) => convCall(p, o),
      false,
    ]),
    ...badSamples.map((o): [string, (p: KernelProvider) => unknown, boolean] => [
      `sample ${JSON.stringify(o)}`,
      (p) => p.sampleGaussianPacked({ ...sampleArgs, ...o }),
      false,
    ]),
    ...otherCalls.map(([name, f]): [string, (p: KernelProvider) => unknown, boolean] => [name, f, false]),
  ];
  const out: string[] = [];
  for (const [name, call, good] of calls) {
    const want = errorOf(() => call(reference));
    const got = errorOf(() => call(provider));
    if (got !== want) out.push(`${name}: ${got}, reference ${want}`);
    else if ((got === 'ok') !== good) out.push(`${name}: ${got}`);
  }
  return out;
}
