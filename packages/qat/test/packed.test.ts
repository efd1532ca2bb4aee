/**
 * Packed sub-8-bit weights (issue 19, item 4): a model whose weights have fewer than 8 bits keeps
 * them packed in memory and in its file (format qbnn-qat/2), and computes exactly what the same
 * model computes from one value a byte; files of format qbnn-qat/1 (what main wrote before)
 * still load; bad packed data is a typed ERR_FORMAT naming the tensor.
 *
 * The unpacked model is the same ops run through "-bytes" copies of the built-in forms (test
 * plugins that declare no bits, so nothing is packed), holding the very arrays the packed model
 * was built from.
 */
import { packedByteLength } from '@qbnn/core';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '@qbnn/nn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QLayerSpec, QOp } from '../src/engine/ir.js';
import { QuantizedModel } from '../src/engine/quantized-model.js';
import { getIntegerForm, registerIntegerForm, unregisterIntegerForm } from '../src/forms/registry.js';
import type { IntegerForm, IntegerWeights, StoredTensor } from '../src/forms/types.js';
import { headerChecksum } from '../src/header.js';
import {
  deserializeQuantized,
  QMODEL_FORMAT,
  QMODEL_FORMAT_KEY,
  QMODEL_FORMAT_PACKED,
  QMODEL_HEADER_CRC_KEY,
  QMODEL_INPUT_KEY,
  QMODEL_OPS_KEY,
  QMODEL_PACKED_KEY,
  serializeQuantized,
} from '../src/save.js';
import { act, errorOf, gauss, lcg, randomFixedWeights, randomGaussianWeights } from './helpers.js';

type Kind = 'fixed' | 'gaussian' | 'radial' | 'mcdropout' | 'ensemble';
const KINDS: Kind[] = ['fixed', 'gaussian', 'radial', 'mcdropout', 'ensemble'];

/** A built-in form that stores one value a byte (declares no bits): the unpacked model's form. */
function bytewise(form: IntegerForm): IntegerForm {
  const kind = `${form.kind}-bytes`;
  return {
    ...form,
    kind,
    posteriors: undefined,
    save: (w, put, shape) =>
      form.save(
        w,
        (name, t) => put(name, t.dtype === 'F32' ? t : ({ ...t, bits: undefined } as StoredTensor)),
        shape,
      ),
    load: (j, get, shape) => ({ ...form.load(j, get, shape), kind }),
  };
}

beforeAll(() => {
  for (const k of KINDS) registerIntegerForm(bytewise(getIntegerForm(k)));
});
afterAll(() => {
  for (const k of KINDS) unregisterIntegerForm(`${k}-bytes`);
});

function weightsOf(kind: Kind, rnd: () => number, n: number, k: number, bits: number): IntegerWeights {
  if (kind === 'gaussian' || kind === 'radial') return randomGaussianWeights(rnd, n, k, bits, kind);
  if (kind === 'ensemble')
    return { kind: 'ensemble', members: [0, 1, 2].map(() => randomFixedWeights(rnd, n, k, bits)) };
  return { ...randomFixedWeights(rnd, n, k, bits), kind };
}

/**
 * quantize -> conv(1 -> 5, 3x3) + ReLU -> residual(conv(5 -> 5, 3x3, pad 1)) -> flatten ->
 * linear(80 -> 7) + ReLU -> linear(7 -> 3): odd reductions (9, 45, 80 x 3 bits, 7), so packed
 * rows straddle bytes and the last byte has padding. `bytes`: the same weights under the
 * "-bytes" forms.
 */
function netOps(kind: Kind, bits: number, bytes: boolean, seed = 1): QOp[] {
  const rnd = lcg(seed);
  const a0 = act(0, 1);
  const a1 = act(0, 1.5);
  const a2 = act(-1, 1.5);
  const a3 = act(0, 2.5);
  const a4 = act(0, 2);
  const dropout = kind === 'mcdropout' ? { p: 0.25, masked: act(0, 3.2) } : undefined;
  const w = (n: number, k: number) => {
    const x = weightsOf(kind, rnd, n, k, bits);
    return bytes ? { ...x, kind: `${x.kind}-bytes` } : x;
  };
  const conv = (
    path: string,
    c: number,
    pad: number,
    input: typeof a0,
    output: typeof a0,
    relu: boolean,
  ) => ({
    op: 'layer' as const,
    layer: {
      op: 'conv2d' as const,
      path,
      n: 5,
      k: c * 9,
      wShape: [5, c, 3, 3] as [number, number, number, number],
      stride: [1, 1] as [number, number],
      padding: [pad, pad] as [number, number],
      dilation: [1, 1] as [number, number],
      groups: 1,
      input,
      output,
      relu,
      weights: w(5, c * 9),
    },
  });
  return [
    { op: 'quantize', q: a0 },
    conv('conv1', 1, 0, a0, a1, true),
    {
      op: 'residual',
      body: [conv('block.conv', 5, 1, a1, a2, false)],
      shortcut: [],
      bodyQ: a2,
      shortcutQ: a1,
      q: a3,
      relu: true,
    },
    { op: 'flatten' },
    {
      op: 'layer',
      layer: {
        op: 'linear',
        path: 'fc1',
        n: 7,
        k: 80,
        input: a3,
        output: a4,
        relu: true,
        weights: w(7, 80),
        dropout,
      },
    },
    {
      op: 'layer',
      layer: {
        op: 'linear',
        path: 'fc2',
        n: 3,
        k: 7,
        input: a4,
        output: null,
        relu: false,
        weights: w(3, 7),
        dropout,
      },
    },
  ];
}

const INPUT = [1, 6, 6];

function input(seed: number, b: number): Float32Array {
  const rnd = lcg(seed);
  return Float32Array.from({ length: b * 36 }, () => Math.min(1, Math.abs(gauss(rnd)) * 0.5));
}

/** The layers of a list of ops, residual branches included (execution order). */
function layersIn(ops: QOp[]): QLayerSpec[] {
  return ops.flatMap((o) =>
    o.op === 'layer' ? [o.layer] : o.op === 'residual' ? [...layersIn(o.body), ...layersIn(o.shortcut)] : [],
  );
}

/** The integer arrays of a form's weights (ensemble members included), by field path. */
function intArrays(w: IntegerWeights): [string, Int8Array | Uint8Array][] {
  const out: [string, Int8Array | Uint8Array][] = [];
  const visit = (v: unknown, path: string) => {
    if (v instanceof Int8Array || v instanceof Uint8Array) out.push([path, v]);
    else if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) visit(x, `${path}[${i}]`);
    } else if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v)) {
      for (const [k, x] of Object.entries(v)) visit(x, `${path}.${k}`);
    }
  };
  visit(w, 'w');
  return out;
}

function logits(m: QuantizedModel, mode: 'weights' | 'local' = 'weights'): number[] {
  return Array.from(m.forward(input(3, 4), { samples: 3, seed: 11, mode }).logits);
}

describe('packed sub-8-bit weights: in memory and in the file', () => {
  for (const kind of KINDS) {
    for (const bits of [2, 3, 4]) {
      it(`${kind} W${bits}: packed in memory and on file, logits bit-identical to the unpacked model`, () => {
        const ops = netOps(kind, bits, false);
        const packed = new QuantizedModel(ops, INPUT);
        const plain = new QuantizedModel(netOps(kind, bits, true), INPUT);
        const given = layersIn(ops);
        const layers = layersIn(packed.ops);
        expect(layers.length).toBe(4);
        layers.forEach((l, i) => {
          const stored = packed.storedWeights(l);
          expect(stored.packed).toBe(true);
          expect(plain.storedWeights(layersIn(plain.ops)[i]).packed).toBe(false);
          // every integer tensor packed at `bits`: ceil(N K bits / 8) bytes
          const ints = [...stored.tensors.values()].filter((t) => t.dtype !== 'F32');
          expect(ints.length).toBe(intArrays(given[i].weights).length);
          for (const t of ints) {
            expect('packed' in t && t.bits === bits && t.bytes.length).toBe(
              Math.ceil((l.n * l.k * bits) / 8),
            );
          }
          // what the engine runs on is what the model was given, value for value
          const a = intArrays(packed.layerWeights(l));
          const b = intArrays(given[i].weights);
          expect(a.map(([p, v]) => [p, v.constructor.name, Array.from(v)])).toEqual(
            b.map(([p, v]) => [p, v.constructor.name, Array.from(v)]),
          );
        });
        const atRest = layers.map((l) => [...packed.storedWeights(l).tensors.values()]);
        const want = logits(plain);
        expect(logits(packed)).toEqual(want);
        // once in use the packed copy gives way to the unpacked weights (packed again, the same
        // bytes), except Gaussian / Radial mu and sigma, kept packed for the sampler
        layers.forEach((l, i) => {
          expect([...packed.storedWeights(l).tensors.values()]).toEqual(atRest[i]);
          const kept = kind === 'gaussian' || kind === 'radial';
          const first = packed.storedWeights(l);
          expect(packed.storedWeights(l) === first).toBe(kept);
        });
        const modes = kind === 'gaussian' || kind === 'mcdropout' ? (['local'] as const) : [];
        for (const mode of modes) expect(logits(packed, mode)).toEqual(logits(plain, mode));

        const bytes = serializeQuantized(packed);
        const file = decodeSafetensors(bytes);
        expect(file.metadata[QMODEL_FORMAT_KEY]).toBe(QMODEL_FORMAT_PACKED);
        const table = JSON.parse(file.metadata[QMODEL_PACKED_KEY]);
        for (const [name, e] of Object.entries(table) as [string, { shape: number[]; bits: number }][]) {
          expect(e.bits).toBe(bits);
          expect(file.tensors[name].dtype).toBe('U8');
          expect(file.tensors[name].data.length).toBe(Math.ceil((e.shape[0] * e.shape[1] * bits) / 8));
        }
        const plainBytes = serializeQuantized(plain);
        expect(decodeSafetensors(plainBytes).metadata[QMODEL_FORMAT_KEY]).toBe(QMODEL_FORMAT);
        expect(bytes.length).toBeLessThan(plainBytes.length);
        const back = deserializeQuantized(bytes);
        expect(layersIn(back.ops).every((l) => back.storedWeights(l).packed)).toBe(true);
        expect(logits(back)).toEqual(want);
        for (const mode of modes) expect(logits(back, mode)).toEqual(logits(plain, mode));
        // saved again, byte for byte the same file
        expect(Buffer.from(serializeQuantized(back)).equals(Buffer.from(bytes))).toBe(true);
        // describe() counts packed bytes: W8 minus what packing saves on each integer tensor
        const w8 = new QuantizedModel(netOps(kind, 8, false), INPUT);
        const saved = given.reduce(
          (a, l) =>
            a + intArrays(l.weights).reduce((b, [, v]) => b + v.length - packedByteLength(v.length, bits), 0),
          0,
        );
        expect(packed.sizeBytes()).toBe(w8.sizeBytes() - saved);
      });
    }
  }

  it('W8 is stored one value a byte, in format qbnn-qat/1; a layer spread into new ops carries unpacked weights', () => {
    const m = new QuantizedModel(netOps('gaussian', 8, false), INPUT);
    expect(layersIn(m.ops).some((l) => m.storedWeights(l).packed)).toBe(false);
    const file = decodeSafetensors(serializeQuantized(m));
    expect(file.metadata[QMODEL_FORMAT_KEY]).toBe(QMODEL_FORMAT);
    expect(file.metadata[QMODEL_PACKED_KEY]).toBeUndefined();
    expect(file.tensors['1:conv1.mu'].dtype).toBe('I8');
    // ops copied field by field (as a test or a pass editing a model does) run the same
    const w4 = new QuantizedModel(netOps('gaussian', 4, false), INPUT);
    const copy = new QuantizedModel(
      w4.ops.map((o) => (o.op === 'layer' ? { ...o, layer: { ...o.layer } } : o)),
      INPUT,
    );
    expect(logits(copy)).toEqual(logits(w4));
  });
});

describe('a form declaring bits', () => {
  const wrapped = (kind: string, change: (t: StoredTensor) => StoredTensor): IntegerForm => {
    const fixed = getIntegerForm('fixed');
    return {
      ...fixed,
      kind,
      save: (w, put, shape) => fixed.save(w, (name, t) => put(name, change(t)), shape),
      load: (j, get, shape) => ({ ...fixed.load(j, get, shape), kind }),
    };
  };
  const model = (kind: string) => {
    const ops = netOps('fixed', 3, false).map((o) =>
      o.op === 'layer' && o.layer.path === 'fc2'
        ? { ...o, layer: { ...o.layer, weights: { ...o.layer.weights, kind } } }
        : o,
    );
    return () => new QuantizedModel(ops, INPUT);
  };

  it('outside 2..8, or narrower than its values, is a typed error naming the form and tensor', () => {
    const cases: [string, (t: StoredTensor) => StoredTensor, RegExp][] = [
      [
        'bits-1',
        (t) => ({ ...t, bits: 1 }) as StoredTensor,
        /'bits-1': tensor 'weight' declares bits 1; bits must be an integer in \[2, 8\]/,
      ],
      ['bits-9', (t) => ({ ...t, bits: 9 }) as StoredTensor, /'bits-9': tensor 'weight' declares bits 9/],
      [
        'bits-half',
        (t) => ({ ...t, bits: 2.5 }) as StoredTensor,
        /'bits-half': tensor 'weight' declares bits 2.5/,
      ],
      [
        'bits-narrow',
        (t) => ({ ...t, bits: 2 }) as StoredTensor,
        /'bits-narrow': tensor 'weight' at 2 bits: packInts: values\[\d+\] = -?\d+ is outside the 2-bit signed range \[-2, 1\]/,
      ],
      [
        'bits-shape',
        (t) => ({ ...t, shape: [2, 2] }),
        /'bits-shape': tensor 'weight' has 21 values for shape \[2,2\]/,
      ],
    ];
    for (const [kind, change, message] of cases) {
      registerIntegerForm(wrapped(kind, change));
      try {
        expect(errorOf(model(kind))).toMatch(message);
      } finally {
        unregisterIntegerForm(kind);
      }
    }
  });
});

/** The writer of format qbnn-qat/1 (main before packing): every integer one value a byte. */
function writeFormat1(qm: QuantizedModel): Uint8Array {
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
        (name, t) => {
          tensors[`${key}.${name}`] = { dtype: t.dtype, shape: t.shape, data: t.data } as SafeTensor;
        },
        { n: l.n, k: l.k },
      );
      return { op: 'layer', key, layer: { ...l, weights: { ...json, kind: form.kind } } };
    });
  const meta = {
    [QMODEL_FORMAT_KEY]: 'qbnn-qat/1',
    [QMODEL_OPS_KEY]: JSON.stringify(mapOps(qm.ops)),
    [QMODEL_INPUT_KEY]: JSON.stringify(qm.inputShape),
  };
  return encodeSafetensors(tensors, { ...meta, [QMODEL_HEADER_CRC_KEY]: headerChecksum(meta, tensors) });
}

describe('files written before packing (format qbnn-qat/1) still load', () => {
  it('a hand-built W4 file of the format spec: exact logits, then kept packed and saved as qbnn-qat/2', () => {
    // one linear layer, input grid S = 0.5, Z = 0; weights 4-bit signed per channel, S_w = (0.25, 0.5),
    // Z_w = (0, 1), one value a byte (I8), bias (0.5, -1); no header checksum (the oldest files)
    const q = { scale: 0.5, zeroPoint: 0, bits: 8, signed: false };
    const ops = [
      { op: 'quantize', q },
      {
        op: 'layer',
        key: '1:fc',
        layer: {
          op: 'linear',
          path: 'fc',
          n: 2,
          k: 3,
          input: q,
          output: null,
          relu: false,
          weights: {
            kind: 'fixed',
            wq: { scale: [0.25, 0.5], zeroPoint: [0, 1], bits: 4, signed: true, axis: 0 },
            bias: true,
          },
        },
      },
    ];
    const bytes = encodeSafetensors(
      {
        '1:fc.weight': { dtype: 'I8', shape: [2, 3], data: Int8Array.of(-8, 7, 3, -1, 0, 5) },
        '1:fc.bias': { dtype: 'F32', shape: [2], data: Float32Array.of(0.5, -1) },
      },
      { [QMODEL_FORMAT_KEY]: 'qbnn-qat/1', [QMODEL_OPS_KEY]: JSON.stringify(ops), [QMODEL_INPUT_KEY]: '[3]' },
    );
    const m = deserializeQuantized(bytes);
    // x = (1, 2, 0.5) -> q_x = (2, 4, 1); channel 0: 0.5 * 0.25 * (2*-8 + 4*7 + 1*3) + 0.5 = 2.375;
    // channel 1: 0.5 * 0.5 * (2*-2 + 4*-1 + 1*4) - 1 = -2
    const x = [1, 2, 0.5];
    expect(Array.from(m.forward(x).logits)).toEqual([2.375, -2]);
    expect(m.storedWeights(m.layers[0]).packed).toBe(true);
    const again = serializeQuantized(m);
    const file = decodeSafetensors(again);
    expect(file.metadata[QMODEL_FORMAT_KEY]).toBe(QMODEL_FORMAT_PACKED);
    // the six 4-bit values, low nibble first: (-8, 7) (3, -1) (0, 5)
    expect(Array.from(file.tensors['1:fc.weight'].data)).toEqual([0x78, 0xf3, 0x50]);
    expect(Array.from(deserializeQuantized(again).forward(x).logits)).toEqual([2.375, -2]);
  });

  for (const kind of KINDS) {
    it(`${kind} W3 written by the format 1 writer loads, runs as before and is kept packed`, () => {
      const plain = new QuantizedModel(netOps(kind, 3, true), INPUT);
      const m = new QuantizedModel(netOps(kind, 3, false), INPUT);
      const old = writeFormat1(m);
      const file = decodeSafetensors(old);
      expect(file.metadata[QMODEL_FORMAT_KEY]).toBe('qbnn-qat/1');
      expect(Object.values(file.tensors).some((t) => t.dtype === 'I8')).toBe(true);
      const back = deserializeQuantized(old);
      expect(layersIn(back.ops).every((l) => back.storedWeights(l).packed)).toBe(true);
      expect(logits(back)).toEqual(logits(plain));
      expect(serializeQuantized(back).length).toBeLessThan(old.length);
    });
  }
});

describe('bad packed data is ERR_FORMAT naming the tensor', () => {
  const m = new QuantizedModel(netOps('gaussian', 3, false), INPUT);
  const good = decodeSafetensors(serializeQuantized(m));
  const MU = '1:conv1.mu'; // 5 x 9 values at 3 bits: 17 bytes, 1 padding bit

  /** The file with its packed table, tensors or format edited (no header checksum: checks beyond it). */
  function edit(
    f: (
      table: Record<string, Record<string, unknown>>,
      tensors: Record<string, SafeTensor>,
      meta: Record<string, string>,
    ) => void,
  ): Uint8Array {
    const table = JSON.parse(good.metadata[QMODEL_PACKED_KEY]);
    const tensors = { ...(good.tensors as Record<string, SafeTensor>) };
    const meta = { ...good.metadata };
    delete meta[QMODEL_HEADER_CRC_KEY];
    delete meta['qbnn.crc32'];
    f(table, tensors, meta);
    if (meta[QMODEL_PACKED_KEY] === good.metadata[QMODEL_PACKED_KEY])
      meta[QMODEL_PACKED_KEY] = JSON.stringify(table);
    return encodeSafetensors(tensors, meta);
  }

  it('the unedited file loads (the cases below differ from it in one thing)', () => {
    expect(good.tensors[MU].data.length).toBe(packedByteLength(45, 3));
    expect(logits(deserializeQuantized(edit(() => {})))).toEqual(logits(m));
  });

  const cases: [string, Parameters<typeof edit>[0], RegExp][] = [
    [
      'a byte too few',
      (_, t) => (t[MU] = { dtype: 'U8', shape: [16], data: (t[MU].data as Uint8Array).slice(0, 16) }),
      /packed tensor '1:conv1\.mu': \[5,9\] at 3 bits takes 17 bytes, but the file stores 16/,
    ],
    [
      'a byte too many',
      (_, t) => (t[MU] = { dtype: 'U8', shape: [18], data: Uint8Array.from([...t[MU].data, 0]) }),
      /packed tensor '1:conv1\.mu': \[5,9\] at 3 bits takes 17 bytes, but the file stores 18/,
    ],
    [
      'bits 1',
      (p) => (p[MU].bits = 1),
      /packed tensor '1:conv1\.mu': bits must be an integer in \[2, 8\], got 1/,
    ],
    [
      'bits 9',
      (p) => (p[MU].bits = 9),
      /packed tensor '1:conv1\.mu': bits must be an integer in \[2, 8\], got 9/,
    ],
    ['bits 3.5', (p) => (p[MU].bits = 3.5), /packed tensor '1:conv1\.mu': bits must be an integer/],
    ['bits "3"', (p) => (p[MU].bits = '3'), /packed tensor '1:conv1\.mu': bits must be an integer/],
    [
      'a shape larger than the data',
      (p) => (p[MU].shape = [5e8, 9e8]),
      /packed tensor '1:conv1\.mu': \[500000000,900000000\] at 3 bits takes 168750000000000000 bytes, but the file stores 17/,
    ],
    [
      'a shape beyond 2^53 elements',
      (p) => (p[MU].shape = [2 ** 40, 2 ** 40]),
      /packed tensor '1:conv1\.mu': \[1099511627776,1099511627776\] at 3 bits takes .* bytes, but the file stores 17/,
    ],
    [
      'a negative dimension',
      (p) => (p[MU].shape = [-5, -9]),
      /packed tensor '1:conv1\.mu': shape must be an array of non-negative integers/,
    ],
    [
      'dtype F32',
      (p) => (p[MU].dtype = 'F32'),
      /packed tensor '1:conv1\.mu': dtype must be 'I8' or 'U8', got "F32"/,
    ],
    ['an entry of nothing', (p) => (p[MU] = null as never), /packed tensor '1:conv1\.mu': dtype must be/],
    [
      'listed but not stored',
      (p) => (p['9:ghost.mu'] = { dtype: 'I8', shape: [1], bits: 3 }),
      /packed tensor '9:ghost\.mu' is listed in qbnn\.qat\.packed but not stored/,
    ],
    [
      'stored as I8 instead of U8 bytes',
      (_, t) => (t[MU] = { dtype: 'I8', shape: [17], data: new Int8Array(t[MU].data.buffer.slice(0)) }),
      /packed tensor '1:conv1\.mu' must be stored as U8 \[bytes\], got I8 \[17\]/,
    ],
    [
      'the signedness of sigma changed',
      (p) => (p['1:conv1.sigma'].dtype = 'I8'),
      /'1:conv1\.sigma' is I8, expected U8/,
    ],
    [
      'a packed count other than the layer needs',
      (p) => (p[MU].shape = [44]), // 44 values of 3 bits also take 17 bytes
      /'1:conv1\.mu' holds 44 packed values, expected 45/,
    ],
    [
      'non-zero padding bits',
      (_, t) => {
        const d = Uint8Array.from(t[MU].data);
        d[16] |= 0x80;
        t[MU] = { dtype: 'U8', shape: [17], data: d };
      },
      /'1:conv1\.mu': unpackInts: the 1 padding bits of the last byte must be zero/,
    ],
    [
      "values beyond the params' bits (4-bit data, 3-bit params)",
      (p, t) => {
        p[MU].bits = 4;
        p[MU].shape = [45];
        const d = new Uint8Array(23).fill(0x77);
        d[22] = 0x07; // 45 x 4 bits: the last byte's high nibble is padding
        t[MU] = { dtype: 'U8', shape: [23], data: d };
      },
      /mu\[0\] = 7 is outside the 3-bit range \[-4, 3\]/,
    ],
    [
      'a format 1 file with a packed table',
      (_, __, meta) => (meta[QMODEL_FORMAT_KEY] = QMODEL_FORMAT),
      /qbnn\.qat\.packed is not part of format qbnn-qat\/1/,
    ],
    [
      'a format 2 file without its packed table',
      (_, __, meta) => delete meta[QMODEL_PACKED_KEY],
      /metadata qbnn\.qat\.packed is missing/,
    ],
    [
      'a packed table that is an array',
      (_, __, meta) => (meta[QMODEL_PACKED_KEY] = '[]'),
      /qbnn\.qat\.packed must be a JSON object/,
    ],
    [
      'an unknown format',
      (_, __, meta) => (meta[QMODEL_FORMAT_KEY] = 'qbnn-qat/3'),
      /reads qbnn-qat\/1 and qbnn-qat\/2/,
    ],
  ];
  for (const [what, f, message] of cases) {
    it(what, () => {
      const e = errorOf(() => deserializeQuantized(edit(f)));
      expect(e).toMatch(/^ERR_FORMAT: /);
      expect(e).toMatch(message);
    });
  }

  it('a header checksum covers the packed table', () => {
    const file = decodeSafetensors(serializeQuantized(m));
    const meta = { ...file.metadata };
    const table = JSON.parse(meta[QMODEL_PACKED_KEY]);
    table['1:conv1.sigma'].shape = [9, 5]; // as many values, a different shape: only the checksum sees it
    meta[QMODEL_PACKED_KEY] = JSON.stringify(table);
    delete meta['qbnn.crc32'];
    expect(
      errorOf(() =>
        deserializeQuantized(encodeSafetensors(file.tensors as Record<string, SafeTensor>, meta)),
      ),
    ).toMatch(/^ERR_FORMAT: quantised model: header checksum mismatch/);
  });
});
