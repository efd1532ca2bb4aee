import { QbnnError } from '@qbnn/core';
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  type SafeTensor,
  type SafetensorsFile,
  writeFileAtomic,
} from '@qbnn/nn';
import { QuantizedModel } from './engine/quantized-model.js';
import type { FixedWeights, LayerWeights, QLayerSpec, QOp } from './engine/types.js';
import type { QParams } from './spec.js';

/** Metadata key of the format tag, and of the JSON description of the ops. */
export const QMODEL_FORMAT_KEY = 'qbnn.qat.format';
export const QMODEL_FORMAT = 'qbnn-qat/1';
export const QMODEL_OPS_KEY = 'qbnn.qat.ops';
export const QMODEL_INPUT_KEY = 'qbnn.qat.input_shape';

interface QParamsJson {
  scale: number[];
  zeroPoint: number[];
  bits: number;
  signed: boolean;
  axis?: number;
}

const pj = (p: QParams): QParamsJson => ({
  scale: Array.from(p.scale),
  zeroPoint: Array.from(p.zeroPoint),
  bits: p.bits,
  signed: p.signed,
  ...(p.axis !== undefined ? { axis: p.axis } : {}),
});

const pp = (j: QParamsJson): QParams => ({
  scale: Float64Array.from(j.scale),
  zeroPoint: Int32Array.from(j.zeroPoint),
  bits: j.bits,
  signed: j.signed,
  axis: j.axis,
});

function t(dtype: SafeTensor['dtype'], shape: number[], data: SafeTensor['data']): SafeTensor {
  return { dtype, shape, data };
}

/**
 * A quantised model as safetensors bytes: integer tensors stored as I8 (weights, means) and U8
 * (standard deviations), float biases as F32, and every quantisation parameter (scales, zero
 * points, bit widths, the layer geometry and activation params) as JSON in the metadata.
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
      const fixedJson = (f: FixedWeights, prefix: string) => {
        tensors[`${prefix}.weight`] = t('I8', [l.n, l.k], f.w);
        if (f.bias) tensors[`${prefix}.bias`] = t('F32', [l.n], f.bias);
        return { kind: 'fixed', wq: pj(f.wq), bias: f.bias !== undefined };
      };
      const w = l.weights;
      let weights: unknown;
      if (w.kind === 'fixed') weights = fixedJson(w, key);
      else if (w.kind === 'ensemble')
        weights = { kind: 'ensemble', members: w.members.map((m, j) => fixedJson(m, `${key}.member${j}`)) };
      else {
        tensors[`${key}.mu`] = t('I8', [l.n, l.k], w.mu);
        tensors[`${key}.sigma`] = t('U8', [l.n, l.k], w.sigma);
        if (w.bias) {
          tensors[`${key}.bias_mu`] = t('F32', [l.n], w.bias.mu);
          tensors[`${key}.bias_sigma`] = t('F32', [l.n], w.bias.sigma);
        }
        weights = {
          kind: w.kind,
          muQ: pj(w.muQ),
          sigmaQ: pj(w.sigmaQ),
          noiseQ: pj(w.noiseQ),
          weightQ: pj(w.weightQ),
          bias: w.bias !== undefined,
        };
      }
      return { op: 'layer', key, layer: { ...l, weights } };
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
  const get = (name: string, dtype: SafeTensor['dtype']) => {
    const x = file.tensors[name];
    if (!x) throw new QbnnError('ERR_FORMAT', `quantised model: missing tensor '${name}'`);
    if (x.dtype !== dtype)
      throw new QbnnError('ERR_FORMAT', `quantised model: '${name}' is ${x.dtype}, expected ${dtype}`);
    return x.data;
  };
  type FixedJson = { kind: 'fixed'; wq: QParamsJson; bias: boolean };
  const fixed = (j: FixedJson, prefix: string): FixedWeights => ({
    kind: 'fixed',
    w: get(`${prefix}.weight`, 'I8') as Int8Array,
    wq: pp(j.wq),
    bias: j.bias ? (get(`${prefix}.bias`, 'F32') as Float32Array) : undefined,
  });
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
      let weights: LayerWeights;
      if (wj.kind === 'fixed') weights = fixed(wj as unknown as FixedJson, key);
      else if (wj.kind === 'ensemble') {
        weights = {
          kind: 'ensemble',
          members: (wj.members as FixedJson[]).map((m, j) => fixed(m, `${key}.member${j}`)),
        };
      } else if (wj.kind === 'gaussian' || wj.kind === 'radial') {
        weights = {
          kind: wj.kind,
          mu: get(`${key}.mu`, 'I8') as Int8Array,
          sigma: get(`${key}.sigma`, 'U8') as Uint8Array,
          muQ: pp(wj.muQ as QParamsJson),
          sigmaQ: pp(wj.sigmaQ as QParamsJson),
          noiseQ: pp(wj.noiseQ as QParamsJson),
          weightQ: pp(wj.weightQ as QParamsJson),
          bias: wj.bias
            ? {
                mu: get(`${key}.bias_mu`, 'F32') as Float32Array,
                sigma: get(`${key}.bias_sigma`, 'F32') as Float32Array,
              }
            : undefined,
        };
      } else throw new QbnnError('ERR_FORMAT', `quantised model: unknown weight kind '${String(wj.kind)}'`);
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
