import { MAX_BITS, MIN_BITS, packInts, QbnnError, unpackInts } from '@qbnn/core';
import type { IntegerForm, IntegerWeights, StoredTensor, TensorSource } from './types.js';

// A layer's weights as they are kept at rest (in a QuantizedModel and in a saved file): the
// form's JSON and its tensors, the integer tensors of fewer than 8 bits packed (core's
// packInts layout). `restoreWeights` unpacks through `unpackTensor`, the one place packed
// weights become one value a byte again; a form whose kernels read packed input may take a
// tensor as kept (`TensorSource.packed`) and unpack it only when asked.

/** An integer tensor kept packed: `bits`-bit values (I8 signed, U8 unsigned when unpacked). */
export interface PackedTensor {
  readonly packed: true;
  readonly dtype: 'I8' | 'U8';
  /** Shape of the unpacked tensor (row-major). */
  readonly shape: number[];
  readonly bits: number;
  /** packInts(values, bits, dtype === 'I8'): ceil(elements * bits / 8) bytes. */
  readonly bytes: Uint8Array;
}

/** What a tensor name holds at rest: a plain tensor or a packed one. */
export type RestingTensor = StoredTensor | PackedTensor;

/** A layer's weights at rest: the form's JSON and its tensors by name. */
export interface StoredWeights {
  /** The integer form (its registry name). */
  kind: string;
  json: Record<string, unknown>;
  tensors: Map<string, RestingTensor>;
  /** Whether any tensor is packed (else the weights are kept as the form made them). */
  packed: boolean;
}

function elements(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/**
 * The form's save of `weights`, with every I8 / U8 tensor the form declared at fewer than 8
 * bits (`StoredTensor.bits`) packed.
 */
export function storeWeights(
  form: IntegerForm,
  weights: IntegerWeights,
  shape: { n: number; k: number },
): StoredWeights {
  const tensors = new Map<string, RestingTensor>();
  let packed = false;
  const json = form.save(
    weights,
    (name, t) => {
      if (tensors.has(name)) {
        throw new QbnnError('ERR_ARG', `integer form '${form.kind}' wrote tensor '${name}' twice`);
      }
      const bad = (why: string): never => {
        throw new QbnnError('ERR_ARG', `integer form '${form.kind}': tensor '${name}' ${why}`);
      };
      if (t.dtype === 'F32' || t.bits === undefined || t.bits === 8) {
        tensors.set(name, t);
        return;
      }
      if (!Number.isInteger(t.bits) || t.bits < MIN_BITS || t.bits > MAX_BITS)
        bad(`declares bits ${t.bits}; bits must be an integer in [${MIN_BITS}, ${MAX_BITS}]`);
      if (t.data.length !== elements(t.shape)) bad(`has ${t.data.length} values for shape [${t.shape}]`);
      let bytes: Uint8Array;
      try {
        bytes = packInts(t.data, t.bits, t.dtype === 'I8');
      } catch (e) {
        // a value outside the declared bits: the message names its index
        if (e instanceof QbnnError) bad(`at ${t.bits} bits: ${e.message}`);
        throw e;
      }
      tensors.set(name, { packed: true, dtype: t.dtype, shape: [...t.shape], bits: t.bits, bytes });
      packed = true;
    },
    shape,
  );
  return { kind: form.kind, json, tensors, packed };
}

/** The values of a packed tensor, one a byte (Int8Array for I8, Uint8Array for U8). */
export function unpackTensor(t: PackedTensor): Int8Array | Uint8Array {
  return unpackInts(t.bytes, elements(t.shape), t.bits, t.dtype === 'I8');
}

/**
 * A form's TensorSource over tensors at rest: `lookup(name)` finds one; a missing tensor, the
 * wrong dtype or element count, or bad packed bytes is `error(message)` naming the tensor as
 * `nameOf(name)` (counts are checked before a packed tensor is unpacked).
 */
export function tensorSource(
  lookup: (name: string) => RestingTensor | undefined,
  error: (message: string) => never,
  nameOf: (name: string) => string = (name) => name,
): TensorSource {
  const source = ((local: string, dtype: StoredTensor['dtype'], length: number) => {
    const t = lookup(local);
    const name = nameOf(local);
    if (!t) return error(`missing tensor '${name}'`);
    if (t.dtype !== dtype) return error(`'${name}' is ${t.dtype}, expected ${dtype}`);
    if ('packed' in t) {
      const count = elements(t.shape);
      if (count !== length) return error(`'${name}' holds ${count} packed values, expected ${length}`);
      try {
        return unpackTensor(t);
      } catch (e) {
        if (e instanceof QbnnError) return error(`'${name}': ${e.message}`);
        throw e;
      }
    }
    if (t.data.length !== length) return error(`'${name}' holds ${t.data.length} values, expected ${length}`);
    return t.data;
  }) as TensorSource;
  source.packed = (local: string) => {
    const t = lookup(local);
    return t && 'packed' in t ? { bytes: t.bytes, bits: t.bits } : undefined;
  };
  return source;
}

/** The weights of {@link storeWeights}, unpacked (the form's own load). */
export function restoreWeights(
  form: IntegerForm,
  stored: StoredWeights,
  shape: { n: number; k: number },
  path: string,
): IntegerWeights {
  const source = tensorSource(
    (name) => stored.tensors.get(name),
    (why) => {
      throw new QbnnError('ERR_ARG', `QuantizedModel: ${path}: ${why}`);
    },
  );
  return form.load(stored.json, source, shape);
}
