import './forms/builtins.js';
import { QbnnError } from '@qbnn/core';
import { decodeSafetensors, encodeSafetensors, type SafeTensor, type SafetensorsFile } from '@qbnn/nn';
import type { QLayerSpec, QLstm, QOp } from './engine/ir.js';
import { QuantizedModel } from './engine/quantized-model.js';
import { getIntegerForm, listIntegerForms } from './forms/registry.js';
import { type RestingTensor, tensorSource } from './forms/stored.js';
import type { StoredTensor, TensorSource } from './forms/types.js';
import {
  asFormatError,
  headerChecksum,
  type PackedEntry,
  QMODEL_FORMAT,
  QMODEL_FORMAT_KEY,
  QMODEL_FORMAT_PACKED,
  QMODEL_HEADER_CRC_KEY,
  QMODEL_INPUT_KEY,
  QMODEL_OPS_KEY,
  QMODEL_PACKED_KEY,
  readHeader,
} from './header.js';

export {
  MAX_HEADER_DEPTH,
  QMODEL_FORMAT,
  QMODEL_FORMAT_KEY,
  QMODEL_FORMAT_PACKED,
  QMODEL_HEADER_CRC_KEY,
  QMODEL_INPUT_KEY,
  QMODEL_OPS_KEY,
  QMODEL_PACKED_KEY,
} from './header.js';

/**
 * A quantised model as safetensors bytes: each layer's integer form writes its tensors (I8
 * weights and means, U8 standard deviations, F32 biases) under `<index>:<path>.`, and the ops
 * with every quantisation parameter and the forms' own JSON go to the metadata. Integer tensors
 * of fewer than 8 bits are stored packed (U8 [bytes], listed under `qbnn.qat.packed`, format
 * `qbnn-qat/2`); a model without them is written in format `qbnn-qat/1`, as before packing.
 */
export function serializeQuantized(qm: QuantizedModel): Uint8Array {
  if (!(qm instanceof QuantizedModel))
    throw new QbnnError(
      'ERR_ARG',
      `serializeQuantized: qm must be a QuantizedModel, got ${qm === null ? 'null' : typeof qm}`,
    );
  const tensors: Record<string, SafeTensor> = {};
  const packed: Record<string, PackedEntry> = {};
  let counter = 0;
  // a layer's tensors under `<index>:<path>.`, its spec's fields in their order with `weights`
  // as the form's JSON (a packed layer's getter is not read: nothing is unpacked to save it)
  const storeLayer = (l: QLayerSpec, i: number) => {
    const key = `${i}:${l.path}`;
    const stored = qm.storedWeights(l);
    for (const [name, t] of stored.tensors) {
      const full = `${key}.${name}`;
      if ('packed' in t) {
        tensors[full] = { dtype: 'U8', shape: [t.bytes.length], data: t.bytes };
        packed[full] = { dtype: t.dtype, shape: t.shape, bits: t.bits };
      } else tensors[full] = { dtype: t.dtype, shape: t.shape, data: t.data } as SafeTensor;
    }
    const layer: Record<string, unknown> = {};
    for (const f of Object.keys(l)) {
      layer[f] = f === 'weights' ? { ...stored.json, kind: stored.kind } : l[f as keyof QLayerSpec];
    }
    return { key, layer };
  };
  const mapOps = (list: QOp[]): unknown[] =>
    list.map((op) => {
      if (op.op === 'residual') return { ...op, body: mapOps(op.body), shortcut: mapOps(op.shortcut) };
      const i = counter++;
      if (op.op === 'lstm') return { ...op, ih: storeLayer(op.ih, i), hh: storeLayer(op.hh, counter++) };
      if (op.op !== 'layer') return op;
      return { op: 'layer', ...storeLayer(op.layer, i) };
    });
  const ops = mapOps(qm.ops);
  const anyPacked = Object.keys(packed).length > 0;
  const meta: Record<string, string> = {
    [QMODEL_FORMAT_KEY]: anyPacked ? QMODEL_FORMAT_PACKED : QMODEL_FORMAT,
    [QMODEL_OPS_KEY]: JSON.stringify(ops),
    [QMODEL_INPUT_KEY]: JSON.stringify(qm.inputShape),
    ...(anyPacked ? { [QMODEL_PACKED_KEY]: JSON.stringify(packed) } : {}),
  };
  return encodeSafetensors(tensors, { ...meta, [QMODEL_HEADER_CRC_KEY]: headerChecksum(meta, tensors) });
}

/**
 * Rebuilds a {@link QuantizedModel} from {@link serializeQuantized} bytes (or a decoded file),
 * of either format. Every problem is a QbnnError ERR_FORMAT naming what is wrong; sizes read
 * from the file are checked before anything is allocated from them.
 */
export function deserializeQuantized(src: Uint8Array | SafetensorsFile): QuantizedModel {
  const file = src instanceof Uint8Array ? decodeSafetensors(src) : src;
  // the header checked first: checksum, JSON, nesting depth (nothing below recurses deeper),
  // and every packed tensor's entry against its stored bytes
  const header = readHeader(file.metadata, file.tensors);
  const atRest = (full: string): RestingTensor | undefined => {
    const x = file.tensors[full];
    if (!x) return undefined;
    const p = header.packed.get(full);
    if (p) return { packed: true, dtype: p.dtype, shape: p.shape, bits: p.bits, bytes: x.data as Uint8Array };
    // any other dtype is refused by the source's dtype check before its data is read
    return x as StoredTensor;
  };
  const tensorsOf = (prefix: string): TensorSource =>
    tensorSource(
      (name) => atRest(`${prefix}.${name}`),
      (why) => {
        throw new QbnnError('ERR_FORMAT', `quantised model: ${why}`);
      },
      (name) => `${prefix}.${name}`,
    );
  type RawOp = { op: string; key?: string; layer?: unknown; body?: RawOp[]; shortcut?: RawOp[] };
  type StoredLayer = { key: string; layer: QLayerSpec & { weights: Record<string, unknown> } };
  const loadLayer = ({ key, layer }: StoredLayer): QLayerSpec => {
    if (
      layer === null ||
      typeof layer !== 'object' ||
      layer.weights === null ||
      typeof layer.weights !== 'object'
    )
      throw new QbnnError(
        'ERR_FORMAT',
        `quantised model: a layer entry under '${String(key)}' has no weights`,
      );
    const wj = layer.weights as Record<string, unknown>;
    const kind = String(wj.kind);
    if (!listIntegerForms().includes(kind)) {
      throw new QbnnError(
        'ERR_FORMAT',
        `quantised model: layer '${layer.path}' is stored in integer form '${kind}', which is not registered (registered: ${listIntegerForms().join(', ')}); import the package that registers it first (qbnn: --plugin)`,
      );
    }
    const weights = getIntegerForm(kind).load(wj, tensorsOf(key), { n: layer.n, k: layer.k });
    return { ...layer, weights };
  };
  const raw = header.ops as RawOp[];
  const mapOps = (list: RawOp[]): QOp[] =>
    list.map((op): QOp => {
      if (op === null || typeof op !== 'object')
        throw new QbnnError(
          'ERR_FORMAT',
          `quantised model: an op is ${op === null ? 'null' : typeof op}, not an object`,
        );
      if (op.op === 'residual') {
        return {
          ...(op as unknown as Extract<QOp, { op: 'residual' }>),
          body: mapOps(op.body ?? []),
          shortcut: mapOps(op.shortcut ?? []),
        };
      }
      if (op.op === 'lstm') {
        const l = op as unknown as { ih: StoredLayer; hh: StoredLayer };
        return { ...(op as unknown as QLstm), ih: loadLayer(l.ih), hh: loadLayer(l.hh) };
      }
      if (op.op !== 'layer') return op as unknown as QOp;
      return { op: 'layer', layer: loadLayer(op as unknown as StoredLayer) };
    });
  // what the ops and every form's JSON hold is validated by the QuantizedModel constructor
  return asFormatError(() => new QuantizedModel(mapOps(raw), header.inputShape as number[]));
}
