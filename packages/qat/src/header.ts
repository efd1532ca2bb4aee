import { MAX_BITS, MIN_BITS, QbnnError } from '@qbnn/core';
import { crc32, type SafeTensor } from '@qbnn/nn';

// The metadata ("header") of a saved quantised model: how it is read (typed errors for JSON that
// is missing, malformed, of the wrong type or nested too deep; nothing recursive runs before the
// depth is known) and the checksum that covers it. nn's `qbnn.crc32` covers the data section's
// bytes only; the quantisation parameters, geometry and op kinds live in this metadata, so a
// changed scale or zero point loaded silently (issue 17, D10) until this checksum.

/** Metadata key of the format tag, and of the JSON description of the ops and input shape. */
export const QMODEL_FORMAT_KEY = 'qbnn.qat.format';
/**
 * Format tag of a file whose tensors are all one value a byte (what every version writes for a
 * model without sub-8-bit weights, and what files written before packing exist hold).
 */
export const QMODEL_FORMAT = 'qbnn-qat/1';
/** Format tag of a file with packed tensors (listed under {@link QMODEL_PACKED_KEY}). */
export const QMODEL_FORMAT_PACKED = 'qbnn-qat/2';
/**
 * Metadata key (format 2) of the packed tensors: a JSON object mapping a tensor's name to
 * `{ dtype: 'I8' | 'U8', shape, bits }`, the unpacked tensor; the file stores it as U8 [bytes],
 * core's packInts layout of its row-major values.
 */
export const QMODEL_PACKED_KEY = 'qbnn.qat.packed';
export const QMODEL_OPS_KEY = 'qbnn.qat.ops';
export const QMODEL_INPUT_KEY = 'qbnn.qat.input_shape';
/**
 * Metadata key of the header checksum: CRC-32 (hex) of the format tag, the ops JSON, the input
 * shape JSON and every tensor's name, dtype, shape and bytes. Files written before it existed
 * have no such key and still load (validated, but a changed parameter is not detected).
 */
export const QMODEL_HEADER_CRC_KEY = 'qbnn.qat.header_crc32';
/** Deepest JSON nesting of the ops a file may have (a residual block adds 3 levels). */
export const MAX_HEADER_DEPTH = 64;

function bad(why: string): never {
  throw new QbnnError('ERR_FORMAT', `quantised model: ${why}`);
}

/** Throws unless `v` (parsed JSON) nests at most `max` arrays/objects deep; iterative. */
function checkDepth(key: string, v: unknown, max: number): void {
  const stack: [unknown, number][] = [[v, 1]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (d > max) bad(`metadata ${key} nests deeper than ${max} levels`);
    for (const c of Array.isArray(x) ? x : Object.values(x)) {
      if (c !== null && typeof c === 'object') stack.push([c, d + 1]);
    }
  }
}

function parseJson(meta: Record<string, string>, key: string): unknown {
  const text = meta[key];
  if (typeof text !== 'string') bad(`metadata ${key} is missing`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    bad(`metadata ${key} is not valid JSON (${(e as Error).message})`);
  }
  checkDepth(key, v, MAX_HEADER_DEPTH);
  return v;
}

/** The header checksum (see {@link QMODEL_HEADER_CRC_KEY}) of a model's metadata and tensors. */
export function headerChecksum(meta: Record<string, string>, tensors: Record<string, SafeTensor>): string {
  const table = Object.keys(tensors)
    .sort()
    .map((name) => {
      const t = tensors[name];
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      return [name, t.dtype, t.shape, crc32(bytes)];
    });
  const text = JSON.stringify([
    meta[QMODEL_FORMAT_KEY] ?? null,
    meta[QMODEL_OPS_KEY] ?? null,
    meta[QMODEL_INPUT_KEY] ?? null,
    table,
    // format 1 files have no packed table: their checksum is computed as before it existed
    ...(meta[QMODEL_PACKED_KEY] !== undefined ? [meta[QMODEL_PACKED_KEY]] : []),
  ]);
  return crc32(new TextEncoder().encode(text)).toString(16).padStart(8, '0');
}

/**
 * Reads a saved model's header: the format tag, the header checksum when the file has one, and
 * the ops (an array) and input shape (an array) as parsed JSON, nested at most
 * {@link MAX_HEADER_DEPTH} deep. Any problem is a QbnnError `ERR_FORMAT` naming the key.
 */
export function readHeader(
  meta: Record<string, string>,
  tensors: Record<string, SafeTensor>,
): { ops: unknown[]; inputShape: unknown[]; packed: Map<string, PackedEntry> } {
  const format = meta[QMODEL_FORMAT_KEY];
  if (format !== QMODEL_FORMAT && format !== QMODEL_FORMAT_PACKED) {
    throw new QbnnError(
      'ERR_FORMAT',
      `not a quantised qbnn model (metadata ${QMODEL_FORMAT_KEY} = ${format}; this version reads ${QMODEL_FORMAT} and ${QMODEL_FORMAT_PACKED})`,
    );
  }
  if (format === QMODEL_FORMAT && meta[QMODEL_PACKED_KEY] !== undefined)
    bad(`metadata ${QMODEL_PACKED_KEY} is not part of format ${QMODEL_FORMAT}`);
  const want = meta[QMODEL_HEADER_CRC_KEY];
  if (want !== undefined) {
    const got = headerChecksum(meta, tensors);
    if (got !== want.toLowerCase())
      bad(
        `header checksum mismatch (stored ${want}, computed ${got}): the ops, parameters or tensor table were changed`,
      );
  }
  const ops = parseJson(meta, QMODEL_OPS_KEY);
  if (!Array.isArray(ops))
    bad(`metadata ${QMODEL_OPS_KEY} must be a JSON array of ops, got ${ops === null ? 'null' : typeof ops}`);
  const inputShape = parseJson(meta, QMODEL_INPUT_KEY);
  if (!Array.isArray(inputShape))
    bad(
      `metadata ${QMODEL_INPUT_KEY} must be a JSON array, got ${inputShape === null ? 'null' : typeof inputShape}`,
    );
  const packed = format === QMODEL_FORMAT_PACKED ? readPackedTable(meta, tensors) : new Map();
  return { ops, inputShape, packed };
}

/** One entry of the packed table: the unpacked tensor's dtype, shape and bits. */
export interface PackedEntry {
  dtype: 'I8' | 'U8';
  shape: number[];
  bits: number;
}

/**
 * The packed table of a format 2 file, every entry checked against the tensor it names before
 * anything is unpacked: dtype I8 or U8, bits an integer in [MIN_BITS, MAX_BITS], a shape of
 * non-negative integers whose values take exactly as many bytes as the stored U8 [bytes] tensor.
 */
function readPackedTable(
  meta: Record<string, string>,
  tensors: Record<string, SafeTensor>,
): Map<string, PackedEntry> {
  const table = parseJson(meta, QMODEL_PACKED_KEY);
  if (table === null || typeof table !== 'object' || Array.isArray(table))
    bad(`metadata ${QMODEL_PACKED_KEY} must be a JSON object of packed tensors`);
  const out = new Map<string, PackedEntry>();
  for (const [name, raw] of Object.entries(table as Record<string, unknown>)) {
    const at = `packed tensor '${name}'`;
    const e = (raw ?? {}) as Record<string, unknown>;
    if (e.dtype !== 'I8' && e.dtype !== 'U8')
      bad(`${at}: dtype must be 'I8' or 'U8', got ${JSON.stringify(e.dtype)}`);
    const bits = e.bits;
    if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < MIN_BITS || bits > MAX_BITS)
      bad(`${at}: bits must be an integer in [${MIN_BITS}, ${MAX_BITS}], got ${JSON.stringify(bits)}`);
    const shape = e.shape;
    if (
      !Array.isArray(shape) ||
      shape.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
    )
      bad(`${at}: shape must be an array of non-negative integers`);
    const t = tensors[name];
    if (!t) bad(`${at} is listed in ${QMODEL_PACKED_KEY} but not stored`);
    if (t.dtype !== 'U8' || t.shape.length !== 1)
      bad(`${at} must be stored as U8 [bytes], got ${t.dtype} [${t.shape}]`);
    let count = 1;
    for (const d of shape as number[]) count *= d;
    // exact below 2^53; a larger product cannot match a file's byte count either
    const need = Math.ceil((count * bits) / 8);
    if (!Number.isSafeInteger(count) || need !== t.data.length)
      bad(`${at}: [${shape}] at ${bits} bits takes ${need} bytes, but the file stores ${t.data.length}`);
    out.set(name, { dtype: e.dtype, shape: [...(shape as number[])], bits });
  }
  return out;
}

/**
 * Runs `load` (which builds a model from a header), reporting what it throws as a file error:
 * a QbnnError keeps its message under code ERR_FORMAT, and a TypeError or RangeError of a
 * malformed entry becomes one too (nothing untyped leaves the loader).
 */
export function asFormatError<T>(load: () => T): T {
  try {
    return load();
  } catch (e) {
    if (e instanceof QbnnError) {
      if (e.code === 'ERR_FORMAT') throw e;
      const msg = e.message.replace(/^(QuantizedModel|quantised model): /, '');
      throw new QbnnError('ERR_FORMAT', `quantised model: ${msg}`);
    }
    if (e instanceof TypeError || e instanceof RangeError) bad(`malformed header (${e.message})`);
    throw e;
  }
}
