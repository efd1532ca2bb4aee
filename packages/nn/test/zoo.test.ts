import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  architectures,
  buildModel,
  type LayerFactory,
  Linear,
  lenet5,
  Module,
  RegressionMLP,
  registerArchitecture,
  regressionMlp,
  resnet18,
} from '../src/index.js';
import { ready } from './setup.js';

beforeAll(ready);

const convCount = (i: number, o: number, k: number, bias: boolean) => i * o * k * k + (bias ? o : 0);

function resnetCount(inC: number, classes: number, widths: number[]) {
  let n = convCount(inC, widths[0], 3, false) + 2 * widths[0];
  let c = widths[0];
  widths.forEach((w, s) => {
    for (let b = 0; b < 2; b++) {
      const stride = b === 0 && s > 0 ? 2 : 1;
      n += convCount(c, w, 3, false) + 2 * w + convCount(w, w, 3, false) + 2 * w;
      if (stride !== 1 || c !== w) n += convCount(c, w, 1, false) + 2 * w;
      c = w;
    }
  });
  return n + c * classes + classes;
}

describe('model zoo', () => {
  it('LeNet-5: the study layout, 2450 flat features, 1.256 M parameters', () => {
    const m = lenet5({}, { seed: 1 });
    expect(m.namedChildren().map(([n]) => n)).toEqual([
      'conv1',
      'relu1',
      'pool1',
      'conv2',
      'relu2',
      'pool2',
      'flatten',
      'fc1',
      'relu3',
      'fc2',
    ]);
    expect(m.getModule('fc1').param('weight').shape).toEqual([500, 2450]);
    expect(m.numParameters()).toBe(520 + 25050 + 2450 * 500 + 500 + 5010);
    const x = tf.randomUniform([2, 1, 28, 28]);
    const y = m.apply(x);
    expect(y.shape).toEqual([2, 10]);
    tf.dispose([x, y]);
    m.dispose();
  });

  it('LeNet-5 trains a step on this backend (conv gradients present)', () => {
    const m = lenet5({}, { seed: 2 });
    const x = tf.randomUniform([4, 1, 28, 28], 0, 1, 'float32', 3);
    const w = m.getModule('conv1').param('weight');
    const { grads, value } = tf.variableGrads(
      () => tf.mean(tf.square(m.apply(x))) as tf.Scalar,
      m.trainableParameters(),
    );
    expect(Object.keys(grads)).toHaveLength(8);
    expect(tf.util.arraysEqual(grads[w.name].shape, [20, 1, 5, 5])).toBe(true);
    expect(Math.abs(tf.sum(grads[w.name]).dataSync()[0])).toBeGreaterThan(0);
    tf.dispose([x, value, ...Object.values(grads)]);
    m.dispose();
  });

  it('regression MLP: 3 x 100 hidden, mean and log-variance heads', () => {
    const m = regressionMlp({ inFeatures: 13 }, { seed: 3 });
    expect(m).toBeInstanceOf(RegressionMLP);
    expect(m.numParameters()).toBe(13 * 100 + 100 + 2 * (100 * 100 + 100) + 2 * 101);
    expect(m.namedParameters().map(([n]) => n)).toEqual([
      'body.0.weight',
      'body.0.bias',
      'body.2.weight',
      'body.2.bias',
      'body.4.weight',
      'body.4.bias',
      'mean.weight',
      'mean.bias',
      'logvar.weight',
      'logvar.bias',
    ]);
    const x = tf.randomNormal([5, 13]);
    const out = m.apply(x);
    const { mean, logVar } = m.heads(x);
    expect(out.shape).toEqual([5, 2]);
    expect(Array.from(out.dataSync())).toEqual(Array.from(tf.concat([mean, logVar], 1).dataSync()));
    tf.dispose([x, out, mean, logVar]);
    m.dispose();
  });

  it('ResNet-18: [2,2,2,2] BasicBlocks, widths 24/48/96/192 and a width multiplier', () => {
    const m = resnet18({}, { seed: 4 });
    expect(m.numParameters()).toBe(resnetCount(3, 10, [24, 48, 96, 192]));
    expect(m.getModule('layer2.0.shortcut.0').param('weight').shape).toEqual([48, 24, 1, 1]);
    expect(m.getModule('layer4.1.conv2').param('weight').shape).toEqual([192, 192, 3, 3]);
    const x = tf.randomNormal([2, 3, 16, 16]);
    const y = tf.tidy(() => m.apply(x));
    expect(y.shape).toEqual([2, 10]);
    const half = resnet18({ widthMultiplier: 0.5, inChannels: 1, numClasses: 4 });
    expect(half.numParameters()).toBe(resnetCount(1, 4, [12, 24, 48, 96]));
    tf.dispose([x, y]);
    m.dispose();
    half.dispose();
  });

  it('builds deterministically from the seed', () => {
    const a = lenet5({}, { seed: 7 });
    const b = lenet5({}, { seed: 7 });
    const c = lenet5({}, { seed: 8 });
    const raw = (t: tf.Tensor) => {
      const v = t.dataSync();
      return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    };
    const sa = a.stateDict();
    for (const [k, v] of Object.entries(b.stateDict())) expect(raw(v).equals(raw(sa[k]))).toBe(true);
    expect(raw(c.stateDict()['fc1.weight']).equals(raw(sa['fc1.weight']))).toBe(false);
    expect(raw(sa['conv1.weight']).equals(raw(sa['conv2.weight']).subarray(0, 2000))).toBe(false);
    for (const m of [a, b, c]) m.dispose();
  });

  it('any layer implementation swaps in through the factory', () => {
    class Doubled extends Module {
      constructor(inner: Module) {
        super();
        this.registerModule('inner', inner);
      }
      forward(x: tf.Tensor) {
        return tf.mul(this.child('inner').apply(x), 2);
      }
    }
    const paths: string[] = [];
    const factory: Partial<LayerFactory> = {
      linear: (i, o, opts) => {
        paths.push(opts.path);
        return new Doubled(new Linear(i, o, { seed: opts.rng }));
      },
    };
    const m = lenet5({}, { seed: 5, factory });
    expect(paths).toEqual(['fc1', 'fc2']);
    expect(m.getModule('fc1')).toBeInstanceOf(Doubled);
    expect(m.namedParameters().map(([n]) => n)).toContain('fc2.inner.bias');
    // Same init as the plain model: the factory receives the same per-layer streams.
    const plain = lenet5({}, { seed: 5 });
    expect(Array.from(m.stateDict()['fc2.inner.weight'].dataSync())).toEqual(
      Array.from(plain.stateDict()['fc2.weight'].dataSync()),
    );
    const r = resnet18(
      { widthMultiplier: 0.25 },
      {
        factory: {
          relu: (ctx) => {
            paths.push(ctx.path);
            return new Doubled(new Linear(1, 1));
          },
        },
      },
    );
    expect(paths).toContain('layer3.1.post');
    r.dispose();
    m.dispose();
    plain.dispose();
  });

  it('architecture registry builds by name', () => {
    expect(architectures()).toEqual(expect.arrayContaining(['lenet5', 'mlp-regression', 'resnet18']));
    const m = buildModel('mlp-regression', { inFeatures: 4, hidden: 8, seed: 2 });
    expect(m.numParameters()).toBe(4 * 8 + 8 + 2 * 72 + 2 * 9);
    expect(() => buildModel('nope')).toThrow(/unknown architecture 'nope'/);
    registerArchitecture('tiny-test', () => new Linear(2, 2));
    expect(() => registerArchitecture('tiny-test', () => new Linear(2, 2))).toThrow(/already registered/);
    m.dispose();
  });

  it("a zoo architecture's config with an unknown key is ERR_ARG naming it (was ignored: the default built)", () => {
    // { zoo: 'lenet5', config: { numclasses: 3 } } (qbnn import --arch file.json) built 10 classes
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as { code?: string; message: string };
      }
      return undefined;
    };
    const e = err(() => buildModel('lenet5', { numclasses: 3 }));
    expect(e?.code).toBe('ERR_ARG');
    expect(e?.message).toBe(
      "architecture 'lenet5' config: unknown key 'numclasses' (known: inChannels, numClasses, imageSize, seed)",
    );
    expect(err(() => buildModel('resnet18', { width: [8, 8, 8, 8] }))?.message).toMatch(
      /unknown key 'width'/,
    );
    expect(err(() => buildModel('mlp-regression', { inFeatures: 2, hiden: 4 }))?.message).toMatch(/'hiden'/);
    expect(err(() => buildModel('lenet5', [] as never))?.message).toMatch(
      /config must be an object, got an array/,
    );
    const ok = buildModel('lenet5', { numClasses: 3, seed: 1 });
    expect(ok.numParameters()).toBeGreaterThan(0);
    ok.dispose();
  });
});
