import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BatchNorm2d,
  Conv2d,
  Dropout,
  Flatten,
  Identity,
  Linear,
  MaxPool2d,
  Module,
  ReLU,
  Sequential,
} from '../src/index.js';
import { ready } from './setup.js';

beforeAll(ready);

function small() {
  return new Sequential(
    new Conv2d(1, 2, 3, { padding: 1, seed: 1 }),
    new BatchNorm2d(2),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
    new Dropout(0.1),
    new Linear(8, 3, { seed: 2 }),
  );
}

class Scaled extends Module {
  constructor(inner: Module) {
    super();
    this.registerModule('inner', inner);
    this.registerParameter('scale', tf.scalar(2));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.mul(this.child('inner').apply(x), this.param('scale'));
  }
}

describe('Module', () => {
  it('names parameters and buffers with torch-style dotted paths', () => {
    const m = small();
    expect(m.namedParameters().map(([n]) => n)).toEqual([
      '0.weight',
      '0.bias',
      '1.weight',
      '1.bias',
      '6.weight',
      '6.bias',
    ]);
    expect(m.namedBuffers().map(([n]) => n)).toEqual([
      '1.running_mean',
      '1.running_var',
      '1.num_batches_tracked',
    ]);
    expect(Object.keys(m.stateDict())).toHaveLength(9);
    expect(m.numParameters()).toBe(2 * 9 + 2 + 2 + 2 + 8 * 3 + 3);
    expect(m.namedModules().map(([p]) => p)).toEqual(['', '0', '1', '2', '3', '4', '5', '6']);
    expect(m.children()).toHaveLength(7);
    expect(m.toString()).toContain('(0): Conv2d(1, 2, kernel=[3,3]');
    m.dispose();
  });

  it('train/eval propagate, requiresGrad freezes', () => {
    const m = small();
    m.eval();
    expect(m.modules().every((c) => !c.training)).toBe(true);
    m.train();
    expect(m.modules().every((c) => c.training)).toBe(true);
    m.getModule('0').requiresGrad(false);
    expect(m.trainableParameters()).toHaveLength(4);
    expect(m.namedParameters({ trainableOnly: true }).map(([n]) => n)).toEqual([
      '1.weight',
      '1.bias',
      '6.weight',
      '6.bias',
    ]);
    m.dispose();
  });

  it('setModule replaces a child by path; forward uses the replacement', () => {
    const m = new Sequential(new Linear(2, 2, { seed: 1 }), new ReLU());
    const wrapped = new Scaled(m.getModule('0'));
    const old = m.setModule('0', wrapped);
    expect(old).toBeInstanceOf(Linear);
    expect(m.namedParameters().map(([n]) => n)).toEqual(['0.scale', '0.inner.weight', '0.inner.bias']);
    const x = tf.tensor([[1, -2]]);
    const y = m.apply(x);
    const lin = tf.relu(old.apply(x));
    expect(Array.from(y.dataSync())).toEqual(Array.from(lin.dataSync(), (v) => 2 * v));
    m.setModule('0.inner', new Identity());
    expect(m.getModule('0.inner')).toBeInstanceOf(Identity);
    expect(() => m.setModule('7', new ReLU())).toThrow(/no module at path/);
    expect(() => m.getModule('0.x')).toThrow(/missing 'x'/);
    tf.dispose([x, y, lin]);
    old.dispose();
    m.dispose();
  });

  it('registration rejects duplicate and malformed names', () => {
    const m = new Sequential(new ReLU());
    expect(() => m.registerModule('0', new ReLU())).toThrow(/already registered/);
    expect(() => m.registerModule('a.b', new ReLU())).toThrow(/must match/);
    expect(() => m.param('nope')).toThrow(/no parameter/);
  });

  it('stateDict / loadStateDict copy values with shape and dtype checks', () => {
    const a = small();
    const b = small();
    b.getModule('6')
      .param('weight')
      .assign(tf.zeros([3, 8]));
    const sd = a.stateDict();
    b.loadStateDict(sd);
    for (const [k, v] of Object.entries(b.stateDict())) {
      expect(Array.from(v.dataSync())).toEqual(Array.from(sd[k].dataSync()));
      expect(v).not.toBe(sd[k]);
    }
    const missing = { ...sd };
    delete missing['6.bias'];
    expect(() => b.loadStateDict(missing)).toThrow(/missing keys \[6.bias\]/);
    expect(b.loadStateDict(missing, { strict: false }).missing).toEqual(['6.bias']);
    const extra = { ...sd, 'x.y': sd['6.bias'] };
    expect(() => b.loadStateDict(extra)).toThrow(/unexpected keys \[x.y\]/);
    const wrongShape = { ...sd, '6.bias': tf.zeros([4]) };
    expect(() => b.loadStateDict(wrongShape)).toThrow(/shape \[4\], expected \[3\]/);
    const wrongType = { ...sd, '1.num_batches_tracked': tf.scalar(0, 'float32') };
    expect(() => b.loadStateDict(wrongType)).toThrow(/dtype float32, expected int32/);
    tf.dispose([wrongShape['6.bias'], wrongType['1.num_batches_tracked']]);
    a.dispose();
    b.dispose();
  });

  it('loadStateDict(stateDict()) of the same module is a no-op (D8: was infinite recursion)', () => {
    for (const m of [new Linear(4, 3, { seed: 3 }), small()]) {
      m.eval();
      const x = tf.randomNormal(m instanceof Linear ? [2, 4] : [2, 1, 4, 4], 0, 1, 'float32', 5);
      const before = tf.tidy(() => m.apply(x));
      const values = Object.fromEntries(
        Object.entries(m.stateDict()).map(([k, v]) => [k, Array.from(v.dataSync())]),
      );
      const tensorsBefore = tf.memory().numTensors;
      expect(m.loadStateDict(m.stateDict())).toEqual({ missing: [], unexpected: [] });
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      for (const [k, v] of Object.entries(m.stateDict())) expect(Array.from(v.dataSync())).toEqual(values[k]);
      const after = tf.tidy(() => m.apply(x));
      expect(Array.from(after.dataSync())).toEqual(Array.from(before.dataSync()));
      tf.dispose([x, before, after]);
      m.dispose();
    }
  });

  it('loadStateDict reads the old values when the dict swaps two of the module own variables', () => {
    const m = new Sequential(new Linear(2, 2, { seed: 1 }), new Linear(2, 2, { seed: 2 }));
    const sd = m.stateDict();
    const w0 = Array.from(sd['0.weight'].dataSync());
    const w1 = Array.from(sd['1.weight'].dataSync());
    m.loadStateDict({ ...sd, '0.weight': sd['1.weight'], '1.weight': sd['0.weight'] });
    expect(Array.from(m.getModule('0').param('weight').dataSync())).toEqual(w1);
    expect(Array.from(m.getModule('1').param('weight').dataSync())).toEqual(w0);
    m.dispose();
  });

  it('loadStateDict refuses a NaN or infinite parameter (ERR_NAN naming it and the index), not a buffer', () => {
    const a = small();
    const b = small();
    const sd = a.stateDict();
    const before = Array.from(b.getModule('6').param('weight').dataSync());
    const w = sd['6.weight'].dataSync().slice();
    w[5] = NaN;
    const nanWeight = tf.tensor(w, sd['6.weight'].shape);
    const bias = sd['0.bias'].dataSync().slice();
    bias[1] = -Infinity;
    const infBias = tf.tensor(bias, sd['0.bias'].shape);
    for (const [key, t, index] of [
      ['6.weight', nanWeight, 5],
      ['0.bias', infBias, 1],
    ] as const) {
      let err: unknown;
      try {
        b.loadStateDict({ ...sd, [key]: t });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QbnnError);
      expect((err as QbnnError).code).toBe('ERR_NAN');
      expect((err as Error).message).toMatch(new RegExp(`parameter '${key}'.*at flat index ${index}`));
    }
    expect(Array.from(b.getModule('6').param('weight').dataSync())).toEqual(before);
    // Buffers may hold infinities (a running minimum, an additive mask): loaded as given.
    const infBuffer = tf.fill(sd['1.running_mean'].shape, Infinity);
    b.loadStateDict({ ...sd, '1.running_mean': infBuffer });
    expect(Array.from(b.getModule('1').buffer('running_mean').dataSync())).toEqual([Infinity, Infinity]);
    tf.dispose([nanWeight, infBias, infBuffer]);
    a.dispose();
    b.dispose();
  });

  it('loadStateDict is all-or-nothing: a bad value anywhere changes nothing', () => {
    const a = small();
    const b = small();
    const snapshot = () => Object.entries(b.stateDict()).map(([k, v]) => [k, Array.from(v.dataSync())]);
    const original = snapshot();
    const gone = tf.zeros([3]);
    gone.dispose();
    const bad: Record<string, unknown>[] = [
      { ...a.stateDict(), '6.bias': gone },
      { ...a.stateDict(), '6.bias': [1, 2, 3] },
      { ...a.stateDict(), '6.bias': null },
    ];
    for (const sd of bad) {
      expect(() => b.loadStateDict(sd as never)).toThrow(expect.objectContaining({ name: 'QbnnError' }));
      expect(() => b.loadStateDict(sd as never)).toThrow(/'6\.bias'/);
      expect(snapshot()).toEqual(original);
    }
    expect(() => b.loadStateDict(null as never)).toThrow(/state must be an object/);
    a.dispose();
    b.dispose();
  });

  it('dispose frees every variable; forward passes leak nothing', () => {
    const before = tf.memory().numTensors;
    const m = small();
    const x = tf.randomNormal([4, 1, 4, 4]);
    const after = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) {
      tf.tidy(() => {
        m.apply(x);
      });
      m.eval();
      tf.tidy(() => {
        m.apply(x);
      });
      m.train();
    }
    expect(tf.memory().numTensors).toBe(after);
    m.dispose();
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => m.apply(x)).toThrow(/disposed/);
  });

  it('forward hooks see input and output and can be removed', () => {
    const m = new Sequential(new Linear(2, 3), new ReLU());
    const seen: number[][] = [];
    const remove = m.getModule('1').registerForwardHook((_mod, _x, y) => {
      seen.push(y.shape);
    });
    const x = tf.ones([5, 2]);
    tf.tidy(() => m.apply(x));
    remove();
    tf.tidy(() => m.apply(x));
    expect(seen).toEqual([[5, 3]]);
    x.dispose();
    m.dispose();
  });

  it('seedAll makes dropout reproducible across models', () => {
    const mk = () => new Sequential(new Dropout(0.5), new Dropout(0.5));
    const a = mk().seedAll(42);
    const b = mk().seedAll(42);
    const x = tf.ones([50]);
    const ya = tf.tidy(() => Array.from(a.apply(x).dataSync()));
    const yb = tf.tidy(() => Array.from(b.apply(x).dataSync()));
    expect(ya).toEqual(yb);
    b.seedAll(43);
    const yc = tf.tidy(() => Array.from(b.apply(x).dataSync()));
    expect(yc).not.toEqual(ya);
    x.dispose();
  });
});

describe('Sequential names and order', () => {
  it('[name, module] pairs keep their order, index names included', () => {
    const m = new Sequential([
      ['fc1', new Linear(2, 2, { seed: 1 })],
      ['1', new ReLU()],
      ['fc2', new Linear(2, 2, { seed: 2 })],
    ]);
    expect(m.children().map((c) => c.constructor.name)).toEqual(['Linear', 'ReLU', 'Linear']);
    expect(m.namedModules().map(([p]) => p)).toEqual(['', 'fc1', '1', 'fc2']);
    m.dispose();
  });

  it('an object mixing index names with other names is refused (its key order is not the written one)', () => {
    const relu = new ReLU();
    expect(() => new Sequential({ fc1: new Linear(2, 2, { seed: 1 }), 1: relu })).toThrow(
      /mixing index names \[1\] with other names cannot keep its order.*\[name, module\] pairs/,
    );
    // all-index and all-named objects keep their (well-defined) order
    expect(
      new Sequential({ 0: new ReLU(), 1: new Flatten() }).children().map((c) => c.constructor.name),
    ).toEqual(['ReLU', 'Flatten']);
  });

  it('an array of modules, or a value that is not modules, is a typed error saying what Sequential takes', () => {
    // an array of modules (Keras' style) was read as pairs: TypeError '.for is not iterable';
    // a number was an empty Sequential, undefined a TypeError from Object.keys
    const relu = new ReLU();
    expect(() => new Sequential([relu, new Flatten()] as never)).toThrow(
      /Sequential: an array argument must hold \[name, module\] pairs; entry 0 is a ReLU \(pass modules as arguments/,
    );
    expect(() => new Sequential([['a', relu], ['b']] as never)).toThrow(/entry 1 is b/);
    for (const v of [42, undefined, null, 'relu'])
      expect(() => new Sequential(v as never), String(v)).toThrow(
        /Sequential: takes modules, \[name, module\] pairs or an object of named modules/,
      );
    expect(() => new Sequential([['a', 42]] as never)).toThrow(/not a Module/);
  });
});
