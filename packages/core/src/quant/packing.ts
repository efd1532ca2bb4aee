import { QbnnError } from '../errors.js';
import { MAX_BITS, MIN_BITS } from './params.js';

// Sub-byte storage of quantised integers (qbnn's packed layout, the one saved files use):
// value i occupies bits [i * bits, (i + 1) * bits) of a little-endian bit stream, i.e. the
// least significant bits of byte 0 first (ONNX INT4's "first element in the low nibble",
// generalised to every width); signed values as `bits`-bit two's complement; no padding
// between values; the unused high bits of the last byte are zero, so a list of values has
// exactly one packed form.

function fail(why: string): never {
  throw new QbnnError('ERR_ARG', why);
}

function checkBits(fn: string, bits: number): void {
  if (!Number.isInteger(bits) || bits < MIN_BITS || bits > MAX_BITS)
    fail(`${fn}: bits must be an integer in [${MIN_BITS}, ${MAX_BITS}], got ${bits}`);
}

function checkLength(fn: string, length: number): void {
  if (!Number.isSafeInteger(length) || length < 0)
    fail(`${fn}: length must be a non-negative safe integer, got ${length}`);
}

/** Bytes that `length` values of `bits` bits take packed: ceil(length * bits / 8). */
export function packedByteLength(length: number, bits: number): number {
  checkLength('packedByteLength', length);
  checkBits('packedByteLength', bits);
  return Math.ceil((length * bits) / 8);
}

/**
 * Packs integers of `bits` bits (2..8; signed: [-2^(bits-1), 2^(bits-1) - 1], unsigned:
 * [0, 2^bits - 1]) into {@link packedByteLength} bytes, in qbnn's packed layout.
 *
 * @throws QbnnError ERR_ARG for bad bits or a value outside the range (naming its index).
 */
export function packInts(values: ArrayLike<number>, bits: number, signed: boolean): Uint8Array {
  checkBits('packInts', bits);
  const n = values.length;
  const lo = signed ? -(2 ** (bits - 1)) : 0;
  const hi = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!(v >= lo && v <= hi) || !Number.isInteger(v))
      fail(
        `packInts: values[${i}] = ${v} is outside the ${bits}-bit ${signed ? 'signed' : 'unsigned'} range [${lo}, ${hi}]`,
      );
  }
  const out = new Uint8Array(packedByteLength(n, bits));
  const mask = (1 << bits) - 1;
  if (bits === 8) {
    for (let i = 0; i < n; i++) out[i] = values[i] & mask;
  } else if (bits === 4 || bits === 2) {
    // whole values a byte: value i is field i % per of byte i / per
    const lg = bits === 4 ? 1 : 2;
    const last = (1 << lg) - 1;
    for (let i = 0; i < n; i++) out[i >> lg] |= (values[i] & mask) << ((i & last) * bits);
  } else {
    // a bit accumulator: at most 7 + 8 bits are pending, so it stays below 2^15
    let acc = 0;
    let held = 0;
    let o = 0;
    for (let i = 0; i < n; i++) {
      acc |= (values[i] & mask) << held;
      held += bits;
      if (held >= 8) {
        out[o++] = acc & 255;
        acc >>>= 8;
        held -= 8;
      }
    }
    if (held > 0) out[o] = acc;
  }
  return out;
}

/**
 * Unpacks `length` integers of `bits` bits from `bytes` (qbnn's packed layout, exactly
 * {@link packedByteLength} bytes), into `out` when given (its length must be `length`).
 *
 * @throws QbnnError ERR_ARG for bad bits or length, a byte count other than packedByteLength,
 *   non-zero padding bits in the last byte, or an `out` of the wrong type or length.
 */
export function unpackInts(
  bytes: Uint8Array,
  length: number,
  bits: number,
  signed: true,
  out?: Int8Array,
): Int8Array;
export function unpackInts(
  bytes: Uint8Array,
  length: number,
  bits: number,
  signed: false,
  out?: Uint8Array,
): Uint8Array;
export function unpackInts(
  bytes: Uint8Array,
  length: number,
  bits: number,
  signed: boolean,
  out?: Int8Array | Uint8Array,
): Int8Array | Uint8Array;
export function unpackInts(
  bytes: Uint8Array,
  length: number,
  bits: number,
  signed: boolean,
  out?: Int8Array | Uint8Array,
): Int8Array | Uint8Array {
  checkBits('unpackInts', bits);
  checkLength('unpackInts', length);
  if (!(bytes instanceof Uint8Array)) fail('unpackInts: bytes must be a Uint8Array');
  const need = packedByteLength(length, bits);
  if (bytes.length !== need)
    fail(`unpackInts: ${length} values of ${bits} bits take ${need} bytes, got ${bytes.length}`);
  const tail = (length * bits) % 8;
  if (tail !== 0 && bytes[need - 1] >> tail !== 0)
    fail(`unpackInts: the ${8 - tail} padding bits of the last byte must be zero`);
  const Ctor = signed ? Int8Array : Uint8Array;
  if (out !== undefined && (!(out instanceof Ctor) || out.length !== length))
    fail(`unpackInts: out must be an ${Ctor.name} of ${length} values`);
  const dst = out ?? new Ctor(length);
  const mask = (1 << bits) - 1;
  // sign extension of a bits-bit field: shift its sign bit to bit 31 and back
  const shift = 32 - bits;
  if (bits === 8) {
    dst.set(signed ? new Int8Array(bytes.buffer, bytes.byteOffset, length) : bytes.subarray(0, length));
  } else if (bits === 4 || bits === 2) {
    const lg = bits === 4 ? 1 : 2;
    const last = (1 << lg) - 1;
    for (let i = 0; i < length; i++) {
      const u = (bytes[i >> lg] >> ((i & last) * bits)) & mask;
      dst[i] = signed ? (u << shift) >> shift : u;
    }
  } else {
    new PackedIntReader(bytes, bits, signed).read(dst, 0, length);
  }
  return dst;
}

/**
 * Reads packed integers in order, a run at a time: how a kernel decodes packed input as it
 * streams through it (a row of the fused sampler) without unpacking the whole tensor. The
 * caller checks the bytes first (unpackInts' checks); reading past them gives zeros.
 */
export class PackedIntReader {
  private acc = 0;
  private held = 0;
  private at = 0;
  private readonly mask: number;
  private readonly shift: number;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly bits: number,
    private readonly signed: boolean,
  ) {
    checkBits('PackedIntReader', bits);
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
  }

  /** Decodes the next `count` values into `out[start ..]`. */
  read(out: Int8Array | Uint8Array, start: number, count: number): void {
    const { bytes, bits, mask, shift, signed } = this;
    let { acc, held, at } = this;
    for (let i = start, end = start + count; i < end; i++) {
      // one byte always suffices: fewer than `bits` (<= 8) bits are held before it
      if (held < bits) {
        acc |= (bytes[at++] ?? 0) << held;
        held += 8;
      }
      const u = acc & mask;
      acc >>>= bits;
      held -= bits;
      out[i] = signed ? (u << shift) >> shift : u;
    }
    this.acc = acc;
    this.held = held;
    this.at = at;
  }
}
