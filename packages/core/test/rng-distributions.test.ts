import { describe, expect, test } from 'vitest';
import { QbnnError } from '../src/errors.js';
import { bernoulliThreshold } from '../src/rng/bernoulli.js';
import { erfc, normalCdf } from '../src/rng/erfc.js';
import { philoxFill } from '../src/rng/philox.js';
import {
  QNORMAL_SCALE,
  QNORMAL_THRESHOLDS,
  qnormalFill,
  qnormalFromWord,
  qnormalPmf,
} from '../src/rng/qnormal.js';
import { Rng } from '../src/rng/rng.js';

// round(2^32 * Phi((j - 127.5) * 3/127)), j = 0..254, computed with mpmath at 40 digits.
const MPMATH_THRESHOLDS = [
  5576891, 6026612, 6509223, 7026840, 7581694, 8176131, 8812620, 9493755, 10222262, 11001000, 11832968,
  12721310, 13669317, 14680430, 15758249, 16906535, 18129211, 19430372, 20814282, 22285383, 23848296,
  25507825, 27268960, 29136878, 31116949, 33214737, 35436000, 37786693, 40272971, 42901187, 45677894,
  48609846, 51703996, 54967494, 58407690, 62032127, 65848543, 69864864, 74089205, 78529860, 83195303,
  88094178, 93235296, 98627625, 104280285, 110202539, 116403784, 122893541, 129681444, 136777231, 144190727,
  151931838, 160010533, 168436831, 177220785, 186372468, 195901956, 205819310, 216134561, 226857688,
  237998599, 249567116, 261572951, 274025683, 286934745, 300309392, 314158687, 328491476, 343316363,
  358641691, 374475515, 390825581, 407699305, 425103742, 443045572, 461531069, 480566085, 500156020,
  520305806, 541019882, 562302171, 584156064, 606584395, 629589422, 653172813, 677335621, 702078272,
  727400549, 753301573, 779779793, 806832974, 834458180, 862651772, 891409395, 920725968, 950595685,
  981012006, 1011967657, 1043454627, 1075464170, 1107986807, 1141012331, 1174529809, 1208527594, 1242993334,
  1277913980, 1313275798, 1349064387, 1385264694, 1421861030, 1458837090, 1496175973, 1533860207, 1571871771,
  1610192121, 1648802214, 1687682543, 1726813157, 1766173701, 1805743439, 1845501294, 1885425877, 1925495523,
  1965688326, 2005982175, 2046354792, 2086783765, 2127246590, 2167720706, 2208183531, 2248612504, 2288985121,
  2329278970, 2369471773, 2409541419, 2449466002, 2489223857, 2528793595, 2568154139, 2607284753, 2646165082,
  2684775175, 2723095525, 2761107089, 2798791323, 2836130206, 2873106266, 2909702602, 2945902909, 2981691498,
  3017053316, 3051973962, 3086439702, 3120437487, 3153954965, 3186980489, 3219503126, 3251512669, 3282999639,
  3313955290, 3344371611, 3374241328, 3403557901, 3432315524, 3460509116, 3488134322, 3515187503, 3541665723,
  3567566747, 3592889024, 3617631675, 3641794483, 3665377874, 3688382901, 3710811232, 3732665125, 3753947414,
  3774661490, 3794811276, 3814401211, 3833436227, 3851921724, 3869863554, 3887267991, 3904141715, 3920491781,
  3936325605, 3951650933, 3966475820, 3980808609, 3994657904, 4008032551, 4020941613, 4033394345, 4045400180,
  4056968697, 4068109608, 4078832735, 4089147986, 4099065340, 4108594828, 4117746511, 4126530465, 4134956763,
  4143035458, 4150776569, 4158190065, 4165285852, 4172073755, 4178563512, 4184764757, 4190687011, 4196339671,
  4201732000, 4206873118, 4211771993, 4216437436, 4220878091, 4225102432, 4229118753, 4232935169, 4236559606,
  4239999802, 4243263300, 4246357450, 4249289402, 4252066109, 4254694325, 4257180603, 4259531296, 4261752559,
  4263850347, 4265830418, 4267698336, 4269459471, 4271119000, 4272681913, 4274153014, 4275536924, 4276838085,
  4278060761, 4279209047, 4280286866, 4281297979, 4282245986, 4283134328, 4283966296, 4284745034, 4285473541,
  4286154676, 4286791165, 4287385602, 4287940456, 4288458073, 4288940684,
];

// erfc(x) to 20 significant digits from mpmath (strings: more digits than a float64 holds).
const ERFC_KNOWN: [number, string][] = [
  [0, '1'],
  [0.1, '0.8875370839817151016'],
  [0.5, '0.47950012218695346232'],
  [0.999, '0.15771472979350305836'],
  [1, '0.15729920705028513066'],
  [1.001, '0.15688451452192372097'],
  [1.5, '0.033894853524689272933'],
  [2, '0.0046777349810472658379'],
  [2.5, '0.00040695201744495893956'],
  [3, '0.000022090496998585441373'],
  [4, '1.5417257900280018852e-8'],
  [5, '1.5374597944280348502e-12'],
  [6, '2.1519736712498913117e-17'],
  [8, '1.122429717298292708e-29'],
  [10, '2.088487583762544757e-45'],
  [26, '5.6631924088561428465e-296'],
  [-0.5, '1.5204998778130465377'],
  [-2, '1.9953222650189527342'],
];

describe('erfc and normalCdf', () => {
  test('match 20-digit reference values to a relative 1e-14', () => {
    for (const [x, digits] of ERFC_KNOWN) {
      const v = Number(digits);
      expect(Math.abs(erfc(x) - v) / v).toBeLessThan(1e-14);
    }
    expect(erfc(30)).toBe(0);
    expect(erfc(-30)).toBe(2);
    expect(Number.isNaN(erfc(Number.NaN))).toBe(true);
  });

  test('match Simpson integration of 2/sqrt(pi) exp(-t^2) over [x, 6.5]', () => {
    const f = (t: number) => (2 / Math.sqrt(Math.PI)) * Math.exp(-t * t);
    for (let x = -3; x <= 4; x += 0.37) {
      const n = 2 * Math.ceil((6.5 - x) * 600);
      const h = (6.5 - x) / n;
      let s = f(x) + f(6.5);
      for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(x + i * h);
      const integral = (s * h) / 3;
      // The integral stops at 6.5: it misses erfc(6.5) < 1e-19.
      expect(Math.abs(erfc(x) - integral)).toBeLessThan(1e-12);
    }
  });

  test('normalCdf is symmetric and hits known quantiles', () => {
    expect(normalCdf(0)).toBe(0.5);
    expect(Math.abs(normalCdf(1.959963984540054) - 0.975)).toBeLessThan(1e-15);
    for (let z = 0; z < 8; z += 0.25) expect(Math.abs(normalCdf(z) + normalCdf(-z) - 1)).toBeLessThan(1e-15);
  });
});

describe('quantised standard normal', () => {
  test('thresholds equal the 40-digit mpmath table exactly', () => {
    expect(QNORMAL_THRESHOLDS.length).toBe(255);
    expect([...QNORMAL_THRESHOLDS]).toEqual(MPMATH_THRESHOLDS);
    for (let j = 1; j < 255; j++) {
      expect(QNORMAL_THRESHOLDS[j]).toBeGreaterThan(QNORMAL_THRESHOLDS[j - 1]);
      // Phi(-z) = 1 - Phi(z): thresholds j and 255 - j sit at -z and z.
      expect(QNORMAL_THRESHOLDS[j] + QNORMAL_THRESHOLDS[255 - j]).toBe(2 ** 32);
    }
  });

  test('the pmf is Phi((k+1/2)S) - Phi((k-1/2)S) to within 2^-32, tails folded', () => {
    const p = qnormalPmf();
    const S = QNORMAL_SCALE;
    let total = 0;
    for (let k = -128; k <= 127; k++) {
      const hi = k === 127 ? 1 : normalCdf((k + 0.5) * S);
      const lo = k === -128 ? 0 : normalCdf((k - 0.5) * S);
      expect(Math.abs(p[k + 128] - (hi - lo))).toBeLessThanOrEqual(2 ** -32);
      total += p[k + 128];
    }
    expect(total).toBe(1);
  });

  test('word-to-value map counts thresholds, exactly at every boundary', () => {
    expect(qnormalFromWord(0)).toBe(-128);
    expect(qnormalFromWord(0xffffffff)).toBe(127);
    for (let j = 0; j < 255; j++) {
      expect(qnormalFromWord(QNORMAL_THRESHOLDS[j])).toBe(-127 + j);
      expect(qnormalFromWord(QNORMAL_THRESHOLDS[j] - 1)).toBe(-128 + j);
    }
    const words = new Uint32Array(5000);
    philoxFill(11, 12, 0, words);
    const out = qnormalFill([11, 12], 0, new Int8Array(5000));
    for (let i = 0; i < words.length; i++) {
      let c = 0;
      for (let j = 0; j < 255; j++) if (words[i] >= MPMATH_THRESHOLDS[j]) c++;
      expect(out[i]).toBe(c - 128);
    }
  });

  test('chi-square goodness of fit against the exact pmf', () => {
    const n = 400_000;
    const x = new Rng(2024).qnormal(n);
    const counts = new Float64Array(256);
    for (let i = 0; i < n; i++) counts[x[i] + 128]++;
    const p = qnormalPmf();
    // Pool cells so every expected count is at least 20.
    let chi = 0;
    let df = -1;
    let o = 0;
    let e = 0;
    for (let j = 0; j < 256; j++) {
      o += counts[j];
      e += p[j] * n;
      if (e >= 20) {
        chi += ((o - e) * (o - e)) / e;
        df++;
        o = 0;
        e = 0;
      }
    }
    chi += e > 0 ? ((o - e) * (o - e)) / e : 0;
    // Mean df, sd sqrt(2 df); 5 sd is p < 1e-5 for df ~ 150.
    expect(df).toBeGreaterThan(100);
    expect(chi).toBeLessThan(df + 5 * Math.sqrt(2 * df));
    // Moments: variance of the discretised normal is 1 + S^2/12 minus a negligible tail clip.
    let m1 = 0;
    let m2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[i] * QNORMAL_SCALE;
      m1 += v;
      m2 += v * v;
    }
    expect(Math.abs(m1 / n)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(m2 / n - 1)).toBeLessThan(0.015);
  });

  test('a broken sampler fails the same chi-square test', () => {
    // Sanity of the test itself: shifting every threshold by 1% of a cell is detected.
    const n = 400_000;
    const words = new Rng(2024).uint32(n);
    const p = qnormalPmf();
    const counts = new Float64Array(256);
    for (let i = 0; i < n; i++)
      counts[Math.min(255, qnormalFromWord(words[i]) + 128 + (words[i] % 50 === 0 ? 1 : 0))]++;
    let chi = 0;
    for (let j = 0; j < 256; j++) if (p[j] * n >= 20) chi += (counts[j] - p[j] * n) ** 2 / (p[j] * n);
    expect(chi).toBeGreaterThan(200);
  });
});

function ksStatistic(sorted: Float64Array, cdf: (x: number) => number): number {
  const n = sorted.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(sorted[i]);
    d = Math.max(d, f - i / n, (i + 1) / n - f);
  }
  return d;
}

describe('continuous distributions (Kolmogorov-Smirnov)', () => {
  const n = 20_000;
  // sqrt(n) D > 1.95 has probability 0.001 under the null.
  const crit = 1.95 / Math.sqrt(n);

  test('uniform is U[0, 1)', () => {
    const u = Float64Array.from(new Rng(5).uniform(n)).sort();
    expect(u[0]).toBeGreaterThanOrEqual(0);
    expect(u[n - 1]).toBeLessThan(1);
    expect(ksStatistic(u, (x) => x)).toBeLessThan(crit);
  });

  test('normal is N(0, 1), and a scaled normal is rejected', () => {
    const z = Float64Array.from(new Rng(6).normal(n)).sort();
    expect(ksStatistic(z, normalCdf)).toBeLessThan(crit);
    const wide = z.map((v) => v * 1.05);
    expect(ksStatistic(wide, normalCdf)).toBeGreaterThan(crit);
  });
});

describe('streams', () => {
  test('same seed, same bytes; different seeds differ', () => {
    expect([...new Rng(9).qnormal(100)]).toEqual([...new Rng(9).qnormal(100)]);
    expect([...new Rng(9).qnormal(100)]).not.toEqual([...new Rng(10).qnormal(100)]);
    expect([...new Rng(9).bernoulli(100, 0.3)]).toEqual([...new Rng(9).bernoulli(100, 0.3)]);
  });

  test('split invariance: two block-aligned fills equal one fill, and positions agree', () => {
    const r = new Rng(77);
    const a = r.qnormal(12);
    const b = r.qnormal(29);
    expect(r.position).toBe(3 + 8);
    const whole = new Rng(77).qnormal(41);
    expect([...a, ...b]).toEqual([...whole]);
    const tail = qnormalFill(new Rng(77).key, 3, new Int8Array(29));
    expect([...tail]).toEqual([...b]);
    // A fill longer than the internal chunk equals its pieces too.
    const big = qnormalFill([1, 2], 5, new Int8Array(40_000));
    const p1 = qnormalFill([1, 2], 5, new Int8Array(16_388));
    const p2 = qnormalFill([1, 2], 5 + 16_388 / 4, new Int8Array(40_000 - 16_388));
    let mismatches = 0;
    for (let i = 0; i < big.length; i++)
      if (big[i] !== (i < p1.length ? p1[i] : p2[i - p1.length])) mismatches++;
    expect(mismatches).toBe(0);
  });

  test('forked streams are uncorrelated with each other and with the parent', () => {
    const n = 50_000;
    const root = new Rng(123);
    const streams = [root.fork(0), root.fork(1), root.fork(2 ** 40), new Rng(123)].map((r) => r.normal(n));
    for (let i = 0; i < streams.length; i++) {
      for (let j = i + 1; j < streams.length; j++) {
        let sxy = 0;
        let sxx = 0;
        let syy = 0;
        for (let t = 0; t < n; t++) {
          sxy += streams[i][t] * streams[j][t];
          sxx += streams[i][t] ** 2;
          syy += streams[j][t] ** 2;
        }
        expect(Math.abs(sxy / Math.sqrt(sxx * syy))).toBeLessThan(5 / Math.sqrt(n));
      }
    }
  });
});

describe('bernoulli masks', () => {
  test('keep iff u >= round(p 2^32), from the same words as uint32', () => {
    const p = 0.3;
    const t = bernoulliThreshold(p);
    expect(t).toBe(Math.round(0.3 * 2 ** 32));
    const words = new Rng(8).uint32(1001);
    const mask = new Rng(8).bernoulli(1001, p);
    for (let i = 0; i < words.length; i++) expect(mask[i]).toBe(words[i] >= t ? 1 : 0);
  });

  test('frequencies match 1 - p; p = 0 keeps all and p = 1 drops all', () => {
    const n = 100_000;
    for (const p of [0.1, 0.5, 0.9]) {
      const m = new Rng(31).bernoulli(n, p);
      let kept = 0;
      for (let i = 0; i < n; i++) kept += m[i];
      expect(Math.abs(kept / n - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    }
    expect(new Rng(1).bernoulli(1000, 0).every((v) => v === 1)).toBe(true);
    expect(new Rng(1).bernoulli(1000, 1).every((v) => v === 0)).toBe(true);
  });

  test('bad p is an error and does not advance the stream', () => {
    const r = new Rng(1);
    for (const p of [-0.1, 1.1, Number.NaN]) {
      try {
        r.bernoulli(10, p);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(QbnnError);
        expect((e as QbnnError).code).toBe('ERR_ARG');
      }
    }
    expect(r.position).toBe(0);
  });
});
