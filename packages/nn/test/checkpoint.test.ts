import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BatchNorm2d,
  Conv2d,
  deserializeModel,
  GlobalAvgPool2d,
  Linear,
  lenet5,
  ReLU,
  Sequential,
  serializeModel,
} from '../src/index.js';
import { load, loadSafetensors, save, saveSafetensors } from '../src/node.js';
import { ready } from './setup.js';

const dir = mkdtempSync(join(tmpdir(), 'qbnn-nn-ckpt-'));
beforeAll(ready);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (t: tf.Tensor) => {
  const v = t.dataSync();
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
};
const same = (a: tf.Tensor, b: tf.Tensor) => a.dtype === b.dtype && bytes(a).equals(bytes(b));

describe('checkpoints', () => {
  it('LeNet-5 round-trips bit-exactly and is rebuilt from the file alone', async () => {
    const m = lenet5({}, { seed: 3 });
    const path = join(dir, 'lenet.safetensors');
    await save(m, path, { arch: 'lenet5', config: { imageSize: 28 }, metadata: { note: 'test' } });
    const { model, arch, config, metadata } = await load(path);
    expect(arch).toBe('lenet5');
    expect(config).toEqual({ imageSize: 28 });
    expect(metadata).toMatchObject({ note: 'test', 'qbnn.format': 'qbnn-nn/1' });
    const a = m.stateDict();
    const b = model.stateDict();
    expect(Object.keys(b)).toEqual(Object.keys(a));
    for (const k of Object.keys(a)) expect(same(b[k], a[k])).toBe(true);
    // Re-saving the loaded model gives the identical file.
    const again = serializeModel(model, {
      arch: 'lenet5',
      config: { imageSize: 28 },
      metadata: { note: 'test' },
    });
    expect(Buffer.from(again).equals(readFileSync(path))).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    m.dispose();
    model.dispose();
  });

  it('BatchNorm buffers (float and int32) survive, into a given model too', async () => {
    const mk = (seed: number) =>
      new Sequential(
        new Conv2d(3, 4, 3, { seed }),
        new BatchNorm2d(4),
        new ReLU(),
        new GlobalAvgPool2d(),
        new Linear(4, 2, { seed: seed + 1 }),
      );
    const m = mk(1);
    const x = tf.randomNormal([2, 3, 6, 6]);
    tf.tidy(() => {
      m.apply(x);
    });
    const path = join(dir, 'resnet.safetensors');
    await save(m, path);
    const target = mk(5);
    await load(path, { model: target });
    const bn = target.getModule('1') as BatchNorm2d;
    expect(bn.buffer('num_batches_tracked').dataSync()[0]).toBe(1);
    for (const [k, v] of Object.entries(m.stateDict()))
      expect(bytes(target.stateDict()[k])).toEqual(bytes(v));
    m.eval();
    target.eval();
    const ya = tf.tidy(() => Array.from(m.apply(x).dataSync()));
    const yb = tf.tidy(() => Array.from(target.apply(x).dataSync()));
    expect(yb).toEqual(ya);
    x.dispose();
    m.dispose();
    target.dispose();
  });

  it('rejects truncated, oversized, flipped and mismatched checkpoints with ERR_FORMAT / ERR_SHAPE', async () => {
    const m = new Sequential(new Linear(3, 4, { seed: 1 }), new Linear(4, 2, { seed: 2 }));
    const good = serializeModel(m, { arch: 'mlp-regression', config: { inFeatures: 3 } });
    const code = (b: Uint8Array, model = m) => {
      try {
        deserializeModel(b, { model });
        return 'ok';
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    expect(code(good)).toBe('ok');
    expect(code(good.subarray(0, good.length - 1))).toBe('ERR_FORMAT');
    expect(code(Buffer.concat([good, Buffer.from([0])]))).toBe('ERR_FORMAT');
    const flipped = good.slice();
    flipped[good.length - 3] ^= 0x40;
    expect(code(flipped)).toBe('ERR_FORMAT');
    // A file of another architecture: keys or shapes do not match.
    const other = serializeModel(new Sequential(new Linear(3, 5), new Linear(5, 2)));
    expect(code(other)).toBe('ERR_SHAPE');
    const fewer = serializeModel(new Sequential(new Linear(3, 4)));
    expect(code(fewer)).toBe('ERR_FORMAT');
    // The config names an architecture that builds a larger model than the file holds: refused
    // by the zoo's size check before anything is built.
    expect(() => deserializeModel(good)).toThrow(/mlp-regression config implies more than 26 parameters/);
    expect(() => deserializeModel(serializeModel(m))).toThrow(/no qbnn.arch metadata/);
    m.dispose();
  });

  it('an interrupted or failed save leaves the previous file intact and no temp file', async () => {
    const path = join(dir, 'keep.safetensors');
    const m = new Linear(2, 2, { seed: 1 });
    await save(m, path);
    const before = readFileSync(path);
    // The rename cannot replace a directory: the save fails after writing the temp file.
    const dpath = join(dir, 'adir');
    execFileSync('mkdir', ['-p', join(dpath, 'x')]);
    await expect(save(m, dpath)).rejects.toThrow();
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    // A model that cannot be serialised fails before touching the file.
    const s = tf.tensor(['a']);
    const bad = new (class extends Linear {
      override stateDict() {
        return { s };
      }
    })(2, 2);
    await expect(save(bad, path)).rejects.toThrow(/cannot store a string tensor/);
    s.dispose();
    bad.dispose();
    expect(readFileSync(path).equals(before)).toBe(true);
    m.dispose();
  });

  it('low-level saveSafetensors / loadSafetensors take tfjs tensors and typed arrays', async () => {
    const path = join(dir, 'raw.safetensors');
    const t = tf.tensor([1, 2, 3], [3], 'int32');
    await saveSafetensors(
      path,
      { t, q: { dtype: 'I8', shape: [2], data: Int8Array.from([-5, 5]) } },
      { a: 'b' },
    );
    const f = await loadSafetensors(path);
    expect(f.metadata.a).toBe('b');
    expect(Array.from(f.tensors.t.data as Int32Array)).toEqual([1, 2, 3]);
    expect(f.tensors.q.dtype).toBe('I8');
    expect(Array.from(f.tensors.q.data as Int8Array)).toEqual([-5, 5]);
    t.dispose();
  });
});

const hasTorch = (() => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasTorch)('PyTorch interoperability', () => {
  it('PyTorch reads our LeNet-5 checkpoint and computes the same logits', async () => {
    const m = lenet5({}, { seed: 9 });
    const path = join(dir, 'interop.safetensors');
    await save(m, path, { arch: 'lenet5', config: {} });
    const x = tf.randomUniform([3, 1, 28, 28], 0, 1, 'float32', 4);
    writeFileSync(join(dir, 'x.bin'), Buffer.from(x.dataSync().buffer));
    const ours = tf.tidy(() => Array.from(m.apply(x).dataSync()));
    // A reader written from the format spec (no safetensors package) and torch.nn layers.
    const py = `
import json, struct, sys, numpy as np, torch, torch.nn as nn
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
hdr = json.loads(raw[8:8 + n]); data = raw[8 + n:]
meta = hdr.pop('__metadata__')
sd = {k: torch.from_numpy(np.frombuffer(data[v['data_offsets'][0]:v['data_offsets'][1]], dtype='<f4').reshape(v['shape']).copy()) for k, v in hdr.items()}
net = nn.Sequential()
for name, mod in [('conv1', nn.Conv2d(1, 20, 5, padding=2)), ('relu1', nn.ReLU()), ('pool1', nn.MaxPool2d(2)),
                  ('conv2', nn.Conv2d(20, 50, 5, padding=2)), ('relu2', nn.ReLU()), ('pool2', nn.MaxPool2d(2)),
                  ('flatten', nn.Flatten()), ('fc1', nn.Linear(2450, 500)), ('relu3', nn.ReLU()), ('fc2', nn.Linear(500, 10))]:
    net.add_module(name, mod)
net.load_state_dict(sd, strict=True)
x = torch.from_numpy(np.fromfile(sys.argv[2], dtype='<f4').reshape(3, 1, 28, 28))
print(json.dumps({'arch': meta['qbnn.arch'], 'y': net(x).detach().double().flatten().tolist()}))
`;
    const out = JSON.parse(
      execFileSync('/usr/bin/python3', ['-c', py, path, join(dir, 'x.bin')], { encoding: 'utf8' }),
    ) as { arch: string; y: number[] };
    expect(out.arch).toBe('lenet5');
    expect(out.y).toHaveLength(30);
    for (let i = 0; i < 30; i++) expect(Math.abs(out.y[i] - ours[i])).toBeLessThan(1e-4);
    x.dispose();
    m.dispose();
  });
});
