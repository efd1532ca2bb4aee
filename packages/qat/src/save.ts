import './forms/builtins.js';
import { QbnnError } from '@qbnn/core';
import { decodeSafetensors, encodeSafetensors, type SafeTensor, type SafetensorsFile } from '@qbnn/nn';
import type { QLayerSpec, QOp } from './engine/ir.js';
import { QuantizedModel } from './engine/quantized-model.js';
import { getIntegerForm, listIntegerForms } from './forms/registry.js';
import type { StoredTensor, TensorSource } from './forms/types.js';
import {
  asFormatError,
  headerChecksum,
  QMODEL_FORMAT,
  QMODEL_FORMAT_KEY,
  QMODEL_HEADER_CRC_KEY,
  QMODEL_INPUT_KEY,
  QMODEL_OPS_KEY,
  readHeader,
} from './header.js';

export {
  MAX_HEADER_DEPTH,
  QMODEL_FORMAT,
  QMODEL_FORMAT_KEY,
  QMODEL_HEADER_CRC_KEY,
  QMODEL_INPUT_KEY,
  QMODEL_OPS_KEY,
} from './header.js';

/**
 * A quantised model as safetensors bytes: each layer's integer form writes its tensors (I8
 * weights and means, U8 standard deviations, F32 biases) under `<index>:<path>.`, and the ops
 * with every quantisation parameter and the forms' own JSON go to the metadata.
 */
export function serializeQuantized(qm: QuantizedModel): Uint8Array {
  const tensors: Record<string, SafeTensor> = {};
  let counter = 0;
  const mapOps = (list: QOp[]): unknown[] =>
    list.map((op) => {
      if (op.op === 'residual') return { ...op, body: mapOps(op.body), shortcut: mapOps(op.shortcut) };
      const i = counter++;
      if (op.op !== 'layer') return op;
      const l = op.layer;
      const key = `${i}:${l.path}`;
      const form = getIntegerForm(l.weights.kind);
      const json = form.save(
        l.weights,
        (name: string, t: StoredTensor) => {
          tensors[`${key}.${name}`] = t as SafeTensor;
        },
        { n: l.n, k: l.k },
      );
      return { op: 'layer', key, layer: { ...l, weights: { ...json, kind: form.kind } } };
    });
  const ops = mapOps(qm.ops);
  const meta = {
    [QMODEL_FORMAT_KEY]: QMODEL_FORMAT,
    [QMODEL_OPS_KEY]: JSON.stringify(ops),
    [QMODEL_INPUT_KEY]: JSON.stringify(qm.inputShape),
  };
  return encodeSafetensors(tensors, { ...meta, [QMODEL_HEADER_CRC_KEY]: headerChecksum(meta, tensors) });
}

/** Rebuilds a {@link QuantizedModel} from {@link serializeQuantized} bytes (or a decoded file). */
export function deserializeQuantized(src: Uint8Array | SafetensorsFile): QuantizedModel {
  const file = src instanceof Uint8Array ? decodeSafetensors(src) : src;
  // the header checked first: checksum, JSON, nesting depth (nothing below recurses deeper)
  const header = readHeader(file.metadata, file.tensors);
  const tensorsOf = (prefix: string): TensorSource =>
    ((name: string, dtype: StoredTensor['dtype'], length: number) => {
      const full = `${prefix}.${name}`;
      const x = file.tensors[full];
      if (!x) throw new QbnnError('ERR_FORMAT', `quantised model: missing tensor '${full}'`);
      if (x.dtype !== dtype)
        throw new QbnnError('ERR_FORMAT', `quantised model: '${full}' is ${x.dtype}, expected ${dtype}`);
      if (x.data.length !== length) {
        throw new QbnnError(
          'ERR_FORMAT',
          `quantised model: '${full}' holds ${x.data.length} values, expected ${length}`,
        );
      }
      return x.data;
    }) as TensorSource;
  type RawOp = { op: string; key?: string; layer?: unknown; body?: RawOp[]; shortcut?: RawOp[] };
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
      if (op.op !== 'layer') return op as unknown as QOp;
      const { key, layer } = op as { key: string; layer: QLayerSpec & { weights: Record<string, unknown> } };
      const wj = layer.weights as Record<string, unknown>;
      const kind = String(wj.kind);
      if (!listIntegerForms().includes(kind)) {
        throw new QbnnError(
          'ERR_FORMAT',
          `quantised model: layer '${layer.path}' is stored in integer form '${kind}', which is not registered (registered: ${listIntegerForms().join(', ')}); import the package that registers it first (qbnn: --plugin)`,
        );
      }
      const form = getIntegerForm(kind);
      const weights = form.load(wj, tensorsOf(key), { n: layer.n, k: layer.k });
      return { op: 'layer', layer: { ...layer, weights } };
    });
  // what the ops and every form's JSON hold is validated by the QuantizedModel constructor
  return asFormatError(() => new QuantizedModel(mapOps(raw), header.inputShape as number[]));
}
