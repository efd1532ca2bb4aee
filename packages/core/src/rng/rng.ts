import { QbnnError } from '../errors.js';
import { bernoulliFill, bernoulliThreshold } from './bernoulli.js';
import { NORMAL_FILL_MIN, normalFill, normalsFromWords } from './normal.js';
import { philox4x32, philoxFill } from './philox.js';
import { qnormalFill } from './qnormal.js';
import { UNIFORM_FILL_MIN, uniformFill } from './uniform.js';

const TWO_POW_32 = 0x100000000;
const INV_2_24 = 1 / 16777216;

/**
 * A splittable, counter-based random stream over Philox4x32-10.
 *
 * The stream is identified by a 64-bit key; its position counts 128-bit blocks. Every fill
 * consumes `ceil(n / 4)` blocks, element j coming from block `position + floor(j / 4)`, word
 * `j % 4`, so a native kernel given (key, position) reproduces the same values exactly.
 */
export class Rng {
  /** Low and high 32 bits of the key. */
  readonly key: readonly [number, number];
  private block = 0;

  /**
   * @param seed - a non-negative integer up to 2^53 - 1, or a bigint up to 2^64 - 1. Seed 0 is
   *   an ordinary seed.
   */
  constructor(seed: number | bigint = 0) {
    this.key = seedToKey(seed);
  }

  /** A stream with an explicit key (for native kernels and forks). */
  static fromKey(k0: number, k1: number, position = 0): Rng {
    checkBlocks('fromKey: position', position);
    const r = new Rng(0);
    (r as { key: readonly [number, number] }).key = [k0 >>> 0, k1 >>> 0];
    r.block = position;
    return r;
  }

  /** Blocks consumed so far (the counter of the next block). */
  get position(): number {
    return this.block;
  }

  /** Moves the stream forward by `blocks` blocks without producing them. */
  skip(blocks: number): this {
    this.take(checkBlocks('skip: blocks', blocks));
    return this;
  }

  /**
   * An independent child stream, a pure function of (this key, id): forking never advances
   * this stream, so `rng.fork(3)` is the same stream however many other forks were taken.
   */
  fork(id: number): Rng {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new QbnnError('ERR_ARG', `fork: id must be a non-negative safe integer, got ${id}`);
    }
    const out = new Uint32Array(4);
    // Counter words 2 and 3 are never non-zero in the sequence domain, so fork keys cannot
    // collide with stream output.
    philox4x32(
      this.key[0],
      this.key[1],
      id % TWO_POW_32,
      Math.floor(id / TWO_POW_32),
      0x5eed,
      0xf0f0f0f0,
      out,
    );
    return Rng.fromKey(out[0], out[1]);
  }

  /**
   * Reserves `blocks` blocks and returns the first one's index (for native fills).
   * @throws QbnnError ERR_ARG if the position would pass 2^53 - 1 blocks (2^55 words), beyond
   *   which a JS number cannot count it exactly: the stream is exhausted, fork a new one.
   */
  take(blocks: number): number {
    checkBlocks('take: blocks', blocks);
    const first = this.block;
    if (blocks > Number.MAX_SAFE_INTEGER - first) {
      throw new QbnnError(
        'ERR_ARG',
        `Rng: taking ${blocks} blocks at position ${first} would pass 2^53 - 1 blocks: the stream is exhausted (fork a new one)`,
      );
    }
    this.block = first + blocks;
    return first;
  }

  /** `n` uniform uint32 words. */
  uint32(n: number, out = new Uint32Array(checkCount(n))): Uint32Array {
    philoxFill(this.key[0], this.key[1], this.take(Math.ceil(out.length / 4)), out);
    return out;
  }

  /**
   * `n` float32 uniforms in [0, 1): the top 24 bits of each word times 2^-24. Large draws run in
   * the registered native fill (`setUniformFill`) when there is one: the same values.
   */
  uniform(n: number, out = new Float32Array(checkCount(n))): Float32Array {
    const fill = uniformFill();
    if (fill !== null && out.length >= UNIFORM_FILL_MIN) {
      fill(this.key[0], this.key[1], this.take(Math.ceil(out.length / 4)), out);
      return out;
    }
    const w = this.uint32(out.length);
    for (let i = 0; i < out.length; i++) out[i] = (w[i] >>> 8) * INV_2_24;
    return out;
  }

  /**
   * `n` float32 standard normals by Box-Muller on word pairs (2j, 2j+1):
   * u1 = (top24(w0) + 1) 2^-24 in (0, 1], u2 = top24(w1) 2^-24; consumes ceil(2 ceil(n / 2) / 4)
   * blocks. The same values on every engine and in native code (see `normalsFromWords`); large
   * draws run in the registered native fill (`setNormalFill`) when there is one.
   */
  normal(n: number, out = new Float32Array(checkCount(n))): Float32Array {
    const len = out.length;
    const words = len + (len & 1);
    const first = this.take(Math.ceil(words / 4));
    const fill = normalFill();
    if (fill !== null && len >= NORMAL_FILL_MIN) {
      fill(this.key[0], this.key[1], first, out);
      return out;
    }
    const w = new Uint32Array(words);
    philoxFill(this.key[0], this.key[1], first, w);
    normalsFromWords(w, out);
    return out;
  }

  /**
   * `n` samples of the exact quantised standard normal (int8, scale 3/127, zero point 0), one
   * uint32 word each (see `QNORMAL_THRESHOLDS`); consumes ceil(n / 4) blocks.
   */
  qnormal(n: number, out = new Int8Array(checkCount(n))): Int8Array {
    return qnormalFill(this.key, this.take(Math.ceil(out.length / 4)), out);
  }

  /**
   * A keep-mask of `n` bytes for drop probability `p`: element j is 1 (kept) iff its word
   * u >= round(p * 2^32) (see `bernoulliThreshold`); consumes ceil(n / 4) blocks.
   */
  bernoulli(n: number, p: number, out = new Uint8Array(checkCount(n))): Uint8Array {
    bernoulliThreshold(p);
    return bernoulliFill(this.key, this.take(Math.ceil(out.length / 4)), p, out);
  }
}

function checkBlocks(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new QbnnError('ERR_ARG', `${name} must be a non-negative safe integer, got ${v}`);
  }
  return v;
}

function checkCount(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new QbnnError('ERR_ARG', `n must be a non-negative safe integer, got ${n}`);
  }
  return n;
}

function seedToKey(seed: number | bigint): [number, number] {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed >= 1n << 64n) {
      throw new QbnnError('ERR_ARG', `seed must be in [0, 2^64), got ${seed}`);
    }
    return [Number(seed & 0xffffffffn), Number(seed >> 32n)];
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new QbnnError('ERR_ARG', `seed must be a non-negative safe integer or a bigint, got ${seed}`);
  }
  return [seed % TWO_POW_32, Math.floor(seed / TWO_POW_32)];
}
