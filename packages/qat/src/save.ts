import './forms/builtins.js';
import { QbnnError } from '@qbnn/core';
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  type SafeTensor,
  type SafetensorsFile,
  writeFileAtomic,
} from '@qbnn/nn';
import type { QLayerSpec, QOp } from './engine/ir.js';
import { QuantizedModel } from './engine/quantized-model.js';
import { getIntegerForm } from './forms/registry.js';
import type { StoredTensor, TensorSource } from './forms/types.js';

/** Metadata key of the format tag, and of the JSON description of the ops. */
export const QMODEL_FORMAT_KEY = 'qbnn.qat.format';
export const QMODEL_FORMAT = 'qbnn-qat/1';
export const QMODEL_OPS_KEY = 'qbnn.qat.ops';
export const QMODEL_INPUT_KEY = 'qbnn.qat.input_shape';

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
  return encodeSafetensors(tensors, {
    [QMODEL_FORMAT_KEY]: QMODEL_FORMAT,
    [QMODEL_OPS_KEY]: JSON.stringify(ops),
    [QMODEL_INPUT_KEY]: JSON.stringify(qm.inputShape),
  });
}

/** Rebuilds a {@link QuantizedModel} from {@link serializeQuantized} bytes (or a decoded file). */
export function deserializeQuantized(src: Uint8Array | SafetensorsFile): QuantizedModel {
  const file = src instanceof Uint8Array ? decodeSafetensors(src) : src;
  const meta = file.metadata;
  if (meta[QMODEL_FORMAT_KEY] !== QMODEL_FORMAT) {
    throw new QbnnError(
      'ERR_FORMAT',
      `not a quantised qbnn model (metadata ${QMODEL_FORMAT_KEY} = ${meta[QMODEL_FORMAT_KEY]})`,
    );
  }
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
  const raw = JSON.parse(meta[QMODEL_OPS_KEY] ?? '[]') as RawOp[];
  const mapOps = (list: RawOp[]): QOp[] =>
    list.map((op): QOp => {
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
      const form = getIntegerForm(String(wj.kind));
      const weights = form.load(wj, tensorsOf(key), { n: layer.n, k: layer.k });
      return { op: 'layer', layer: { ...layer, weights } };
    });
  const ops = mapOps(raw);
  return new QuantizedModel(ops, JSON.parse(meta[QMODEL_INPUT_KEY] ?? '[]') as number[]);
}

/** Saves a quantised model to a safetensors file (atomically). */
export async function saveQuantized(qm: QuantizedModel, path: string): Promise<void> {
  await writeFileAtomic(path, serializeQuantized(qm));
}

/** Loads a quantised model saved by {@link saveQuantized}. */
export async function loadQuantized(path: string): Promise<QuantizedModel> {
  return deserializeQuantized(await loadSafetensors(path));
}
