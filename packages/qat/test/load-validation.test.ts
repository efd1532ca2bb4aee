import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '@qbnn/nn';
import { describe, expect, it } from 'vitest';
import type { QuantizedModel } from '../src/engine/quantized-model.js';
import {
  deserializeQuantized,
  QMODEL_HEADER_CRC_KEY,
  QMODEL_INPUT_KEY,
  QMODEL_OPS_KEY,
  serializeQuantized,
} from '../src/save.js';
import { errorOf } from './helpers.js';
import { tinyConvNet, tinyMlp } from './tiny-models.js';

/** The saved ops as parsed JSON, edited freely by the tests. */
// biome-ignore lint/suspicious/noExplicitAny: JSON of any shape, edited field by field
type JsonOps = any[];

/** The file of `m` with its metadata edited (the data checksum stays right: only the header changes). */
function edited(
  m: QuantizedModel,
  edit: (meta: Record<string, string>, ops: JsonOps) => void,
  keepHeaderCrc = false,
): Uint8Array {
  const file = decodeSafetensors(serializeQuantized(m));
  const meta = { ...file.metadata };
  const ops = JSON.parse(meta[QMODEL_OPS_KEY]);
  edit(meta, ops);
  if (!meta[QMODEL_OPS_KEY].startsWith('!')) meta[QMODEL_OPS_KEY] = JSON.stringify(ops);
  else meta[QMODEL_OPS_KEY] = meta[QMODEL_OPS_KEY].slice(1);
  if (!keepHeaderCrc) delete meta[QMODEL_HEADER_CRC_KEY];
  delete meta['qbnn.crc32'];
  return encodeSafetensors(file.tensors as Record<string, SafeTensor>, meta);
}
const raw = (m: QuantizedModel, key: string, text: string) =>
  edited(m, (meta) => {
    if (key === QMODEL_OPS_KEY) meta[key] = `!${text}`;
    else meta[key] = text;
  });

const x = Float32Array.from({ length: 3 * 16 }, (_, i) => ((i * 7) % 11) / 11);

describe('loading a quantised model validates its header (issue 17: D4 headers, D10)', () => {
  const mlp = tinyMlp();

  it('a saved model round-trips with a header checksum; a file without one (older) still loads', () => {
    const bytes = serializeQuantized(mlp);
    expect(decodeSafetensors(bytes).metadata[QMODEL_HEADER_CRC_KEY]).toMatch(/^[0-9a-f]{8}$/);
    const want = Array.from(mlp.forward(x, { samples: 3, seed: 9 }).logits);
    expect(Array.from(deserializeQuantized(bytes).forward(x, { samples: 3, seed: 9 }).logits)).toEqual(want);
    const old = edited(mlp, () => {});
    expect(decodeSafetensors(old).metadata[QMODEL_HEADER_CRC_KEY]).toBeUndefined();
    expect(Array.from(deserializeQuantized(old).forward(x, { samples: 3, seed: 9 }).logits)).toEqual(want);
  });

  it('D10: any change of the header is a checksum mismatch when the file has one', () => {
    // a change validation alone cannot see: a legal input scale, twice the saved one
    const bytes = edited(
      mlp,
      (_, ops) => {
        ops[0].q.scale *= 2;
      },
      true,
    );
    expect(errorOf(() => deserializeQuantized(bytes))).toMatch(
      /^ERR_FORMAT: quantised model: header checksum mismatch \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\)/,
    );
    // tensor bytes rewritten together with the data checksum (encodeSafetensors writes a fresh one)
    const file = decodeSafetensors(serializeQuantized(tinyConvNet()));
    const name = Object.keys(file.tensors).find((n) => n.endsWith('.weight'))!;
    const t = { ...file.tensors };
    t[name] = {
      ...t[name],
      data: Int8Array.from(t[name].data as Int8Array, (v) => (v === 127 ? 126 : v + 1)),
    };
    const meta = { ...file.metadata };
    delete meta['qbnn.crc32'];
    expect(
      errorOf(() => deserializeQuantized(encodeSafetensors(t as Record<string, SafeTensor>, meta))),
    ).toMatch(/header checksum mismatch/);
  });

  it('D10: every quantisation parameter is validated on load (files without a header checksum)', () => {
    const cases: [string, (ops: JsonOps) => void, RegExp][] = [
      ['input scale 0', (o) => (o[0].q.scale = 0), /ops\[0\]\.q\.scale must be a finite number > 0, got 0/],
      [
        'input scale -1',
        (o) => (o[0].q.scale = -1),
        /ops\[0\]\.q\.scale must be a finite number > 0, got -1/,
      ],
      [
        'input zero point 1000',
        (o) => (o[0].q.zeroPoint = 1000),
        /ops\[0\]\.q\.zeroPoint must be an integer in \[0, 255\], got 1000/,
      ],
      [
        'activation bits 20',
        (o) => (o[1].layer.output.bits = 20),
        /ops\[1\]\.layer\.output\.bits must be an integer in \[2, 8\], got 20/,
      ],
      ['unknown op kind', (o) => (o[1].op = 'softmax'), /ops\[1\]\.op must be one of/],
      [
        'weight zero point outside 8 bits',
        (o) => (o[1].layer.weights.muQ.zeroPoint[0] = 200),
        /zeroPoint\[0\] must be an integer in \[-128, 127\], got 200/,
      ],
      ['weight bits 20', (o) => (o[2].layer.weights.weightQ.bits = 20), /bits/],
      [
        'dropout p 1',
        (o) => (o[2].layer.dropout = { p: 1, masked: o[2].layer.input }),
        /dropout\.p must be in \[0, 1\)/,
      ],
      ['k against the tensors', (o) => (o[1].layer.k = 15), /'1:fc1\.mu' holds 512 values, expected 480/],
      ['relu not boolean', (o) => (o[1].layer.relu = 'yes'), /relu must be a boolean/],
    ];
    for (const [what, edit, re] of cases) {
      const err = errorOf(() => deserializeQuantized(edited(mlp, (_, ops) => edit(ops))));
      expect(err, what).toMatch(/^ERR_FORMAT: /);
      expect(err, what).toMatch(re);
    }
    // a weight kind no registered form knows: ERR_FORMAT naming the form to import
    expect(
      errorOf(() =>
        deserializeQuantized(
          edited(mlp, (_, ops) => {
            ops[1].layer.weights.kind = 'bogus';
          }),
        ),
      ),
    ).toMatch(
      /^ERR_FORMAT: quantised model: layer 'fc1' is stored in integer form 'bogus', which is not registered/,
    );
  });

  it('valid but extreme scales that overflow float32 give an ERR_NAN, never infinite logits (found by fuzz.test.ts)', () => {
    const m = deserializeQuantized(
      edited(mlp, (_, ops) => {
        ops[2].layer.weights.muQ.scale[0] = 1e308;
      }),
    );
    for (const mode of ['weights', 'local'] as const) {
      const err = errorOf(() => m.forward(x, { samples: 2, seed: 1, mode }));
      expect(err, mode).toMatch(/^ERR_(NAN|ARG): /);
      if (mode === 'local')
        expect(err).toMatch(
          /^ERR_NAN: logits\[\d+\] is -?Infinity: the model's quantisation scales overflow float32/,
        );
    }
  });

  it('D4: ops or input_shape that are not JSON, null, of the wrong type or nested 20,000 deep are ERR_FORMAT', () => {
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const deepOps = JSON.stringify([{ op: 'quantize', q: { scale: 1, zeroPoint: 0, bits: 8 } }]).replace(
      /\]$/,
      `,{"op":"residual","body":${'[{"op":"residual","body":'.repeat(5000)}[]${'}]'.repeat(5000)},"shortcut":[]}]`,
    );
    const cases: [string, string, RegExp][] = [
      [QMODEL_OPS_KEY, '{not json', /metadata qbnn\.qat\.ops is not valid JSON/],
      [QMODEL_OPS_KEY, 'null', /metadata qbnn\.qat\.ops must be a JSON array of ops, got null/],
      [QMODEL_OPS_KEY, '{}', /must be a JSON array of ops, got object/],
      [QMODEL_OPS_KEY, '[null]', /an op is null/],
      [QMODEL_OPS_KEY, '[1, 2]', /an op is number/],
      [QMODEL_OPS_KEY, deep, /nests deeper than 64 levels/],
      [QMODEL_OPS_KEY, deepOps, /nests deeper than 64 levels/],
      [QMODEL_OPS_KEY, '[{"op":"residual","body":"x","shortcut":[]}]', /^ERR_FORMAT: quantised model: /],
      [QMODEL_INPUT_KEY, 'sixteen', /metadata qbnn\.qat\.input_shape is not valid JSON/],
      [QMODEL_INPUT_KEY, 'null', /input_shape must be a JSON array, got null/],
      [QMODEL_INPUT_KEY, deep, /nests deeper than 64 levels/],
      [QMODEL_INPUT_KEY, '[1e9, 1e9]', /inputShape\[0\] must be an integer/],
    ];
    for (const [key, text, re] of cases) {
      const err = errorOf(() => deserializeQuantized(raw(mlp, key, text)));
      expect(err, `${key} = ${text.slice(0, 40)}`).toMatch(/^ERR_FORMAT: /);
      expect(err, `${key} = ${text.slice(0, 40)}`).toMatch(re);
    }
    const noOps = edited(mlp, (meta) => {
      meta[QMODEL_OPS_KEY] = '!';
    });
    expect(errorOf(() => deserializeQuantized(noOps))).toMatch(/^ERR_FORMAT: /);
  });
});
