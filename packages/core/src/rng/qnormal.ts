import { QbnnError } from '../errors.js';
import { roundHalfEven } from '../quant/round.js';
import { normalCdf } from './erfc.js';
import { philoxFill } from './philox.js';

/** Scale of the quantised standard normal: 3 standard deviations map to 127 (zero point 0). */
export const QNORMAL_SCALE = 3 / 127;

const TWO_POW_32 = 0x100000000;

function buildThresholds(): Uint32Array {
  const t = new Uint32Array(255);
  for (let j = 0; j < 255; j++) t[j] = roundHalfEven(TWO_POW_32 * normalCdf((j - 127.5) * QNORMAL_SCALE));
  return t;
}

/**
 * The 255 integer thresholds of the exact quantised standard normal:
 * `t[j] = round(2^32 * Phi((j - 127.5) * 3/127))`, j = 0..254, strictly increasing.
 *
 * A uniform uint32 word u maps to `k = -128 + #{ j : u >= t[j] }`, so
 * `P(k) = (t[k+128] - t[k+127]) / 2^32 = Phi((k + 1/2) S) - Phi((k - 1/2) S)` to within 2^-32,
 * the tails folded into -128 and 127. Only integer comparisons touch the random word, so every
 * implementation holding this table produces identical bytes. Native code should embed these
 * exact values (no threshold lies within 1e-3 of a rounding tie, far above erfc's error).
 */
export const QNORMAL_THRESHOLDS: Uint32Array = buildThresholds();

// Guide table over the top 12 bits of u: GUIDE[b] = #{ j : t[j] <= b * 2^20 }, a lower bound
// on the count for any u in bucket b. Thresholds are >= 40 million apart near the centre and
// buckets are 2^20 wide, so the scan after the lookup is one or two comparisons.
const GUIDE_SHIFT = 20;
const GUIDE: Uint8Array = (() => {
  const g = new Uint8Array(1 << (32 - GUIDE_SHIFT));
  let c = 0;
  for (let b = 0; b < g.length; b++) {
    const lo = b * 2 ** GUIDE_SHIFT;
    while (c < 255 && QNORMAL_THRESHOLDS[c] <= lo) c++;
    g[b] = c;
  }
  return g;
})();

/** The quantised normal value of one uniform uint32 word. */
export function qnormalFromWord(u: number): number {
  u >>>= 0;
  let c = GUIDE[u >>> GUIDE_SHIFT];
  while (c < 255 && u >= QNORMAL_THRESHOLDS[c]) c++;
  return c - 128;
}

const CHUNK_WORDS = 16384; // a multiple of 4, so chunks start on block boundaries

/**
 * Fills `out` with quantised standard normals from the Philox stream (key, position): element j
 * comes from word j % 4 of block position + floor(j / 4), as in `philoxFill`. Consumes
 * ceil(out.length / 4) blocks.
 */
export function qnormalFill(key: readonly [number, number], position: number, out: Int8Array): Int8Array {
  if (!(out instanceof Int8Array)) throw new QbnnError('ERR_ARG', 'qnormalFill: out must be an Int8Array');
  if (!Number.isSafeInteger(position) || position < 0) {
    throw new QbnnError(
      'ERR_ARG',
      `qnormalFill: position must be a non-negative safe integer, got ${position}`,
    );
  }
  const n = out.length;
  const words = new Uint32Array(Math.min(n, CHUNK_WORDS));
  for (let start = 0; start < n; start += CHUNK_WORDS) {
    const len = Math.min(CHUNK_WORDS, n - start);
    const w = len === words.length ? words : words.subarray(0, len);
    philoxFill(key[0], key[1], position, w, start / 4);
    for (let i = 0; i < len; i++) {
      const u = w[i];
      let c = GUIDE[u >>> GUIDE_SHIFT];
      while (c < 255 && u >= QNORMAL_THRESHOLDS[c]) c++;
      out[start + i] = c - 128;
    }
  }
  return out;
}

/**
 * The exact probability of each quantised value k = -128..127 (index k + 128) under the
 * thresholds, `(t[k+128] - t[k+127]) / 2^32` with t[-1] = 0 and t[255] = 2^32.
 */
export function qnormalPmf(): Float64Array {
  const p = new Float64Array(256);
  let prev = 0;
  for (let j = 0; j < 256; j++) {
    const t = j < 255 ? QNORMAL_THRESHOLDS[j] : TWO_POW_32;
    p[j] = (t - prev) / TWO_POW_32;
    prev = t;
  }
  return p;
}
