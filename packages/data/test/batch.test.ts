import { initBackend } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { BatchLoader, type ImageSet, type RegressionSet, synthLinear, toArrayDataset } from '../src/index.js';
import { loadMnist } from '../src/node.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

/** n samples of 2 x 3 whose values encode (sample, position): 10 * i + k. */
function numbered(n: number): ImageSet {
  const images = new Float32Array(n * 6);
  for (let i = 0; i < images.length; i++) images[i] = 10 * Math.floor(i / 6) + (i % 6);
  return {
    images,
    labels: Int32Array.from({ length: n }, (_, i) => 100 + i),
    shape: [n, 1, 2, 3],
    classNames: [],
  };
}

describe('BatchLoader (typed arrays)', () => {
  const set = numbered(10);

  it('visits every sample once an epoch, in batches of the right size and content', () => {
    const loader = new BatchLoader(set, { batchSize: 3, seed: 4 });
    expect(loader.numBatches).toBe(4);
    const batches = [...loader.batches(0)];
    expect(batches.map((b) => b.size)).toEqual([3, 3, 3, 1]);
    const seen: number[] = [];
    for (const b of batches) {
      expect(b.x.length).toBe(b.size * 6);
      for (let j = 0; j < b.size; j++) {
        const i = b.indices[j];
        seen.push(i);
        expect(b.y[j]).toBe(100 + i);
        expect(Array.from(b.x.subarray(j * 6, j * 6 + 6))).toEqual([0, 1, 2, 3, 4, 5].map((k) => 10 * i + k));
      }
    }
    expect(seen.slice().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(seen).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('reshuffles every epoch, deterministically by (seed, epoch)', () => {
    const a = new BatchLoader(numbered(50), { batchSize: 8, seed: 1 });
    const b = new BatchLoader(numbered(50), { batchSize: 8, seed: 1 });
    const c = new BatchLoader(numbered(50), { batchSize: 8, seed: 2 });
    expect(Array.from(a.order(3))).toEqual(Array.from(b.order(3)));
    expect(Array.from(a.order(0))).not.toEqual(Array.from(a.order(1)));
    expect(Array.from(a.order(0))).not.toEqual(Array.from(c.order(0)));
    // epoch 2 does not depend on having run epochs 0 and 1
    for (const _ of a.batches(0));
    for (const _ of a.batches(1));
    const idx = [...a.batches(2)].flatMap((x) => Array.from(x.indices));
    expect(idx).toEqual(Array.from(b.order(2)));
  });

  it('drops the last partial batch on request', () => {
    const loader = new BatchLoader(set, { batchSize: 4, seed: 0, dropLast: true });
    expect(loader.numBatches).toBe(2);
    expect([...loader.batches(0)].map((b) => b.size)).toEqual([4, 4]);
    expect(new BatchLoader(set, { batchSize: 20, dropLast: true }).numBatches).toBe(0);
  });

  it('yields views of the dataset, without copying, when not shuffling', () => {
    const loader = new BatchLoader(set, { batchSize: 4, shuffle: false });
    const [b0, b1] = [...loader.batches(0)];
    expect(b0.x.buffer).toBe(set.images.buffer);
    expect(b1.x.byteOffset).toBe(4 * 6 * 4);
    expect(b1.y.buffer).toBe(set.labels.buffer);
    expect(Array.from(b1.indices)).toEqual([4, 5, 6, 7]);
    expect(b1.x[0]).toBe(40);
  });

  it('takes regression sets and checks shapes', () => {
    const r: RegressionSet = synthLinear({ n: 7, seed: 1 });
    const loader = new BatchLoader(r, { batchSize: 2, seed: 3 });
    const b = [...loader.batches(0)][0];
    expect(b.y).toBeInstanceOf(Float32Array);
    expect(b.y[0]).toBe(r.y[b.indices[0]]);
    expect(b.x[1]).toBe(r.x[b.indices[1]]);
    expect(() =>
      toArrayDataset({ x: new Float32Array(5), y: new Int32Array(2), n: 2, xShape: [3], yShape: [] }),
    ).toThrow(/needs 6 inputs and 2 targets, got 5 and 2/);
    expect(() => new BatchLoader(r, { batchSize: 0 })).toThrow(/batchSize/);
  });
});

describe('BatchLoader (tfjs tensors)', () => {
  it('yields tensors of the right shape, dtype and values, disposing them as it goes', async () => {
    const { train } = loadMnist({ trainSize: 300, testSize: 0, seed: 1 });
    const loader = new BatchLoader(train, { batchSize: 128, seed: 5 });
    const base = tf.memory().numTensors;
    let count = 0;
    for (const b of loader.tensorBatches(0)) {
      expect(tf.memory().numTensors).toBe(base + 2);
      expect(b.x.shape).toEqual([b.size, 1, 28, 28]);
      expect(b.x.dtype).toBe('float32');
      expect(b.y.dtype).toBe('int32');
      expect(b.y.shape).toEqual([b.size]);
      const y = await b.y.data();
      const x = await b.x.data();
      expect(y[5]).toBe(train.labels[b.indices[5]]);
      expect(x[b.size * 784 - 1]).toBe(train.images[(b.indices[b.size - 1] + 1) * 784 - 1]);
      count++;
    }
    expect(count).toBe(3);
    expect(tf.memory().numTensors).toBe(base);
    // breaking out of the loop disposes too
    for (const _ of loader.tensorBatches(1)) break;
    expect(tf.memory().numTensors).toBe(base);
  });

  it('leaves disposal to the caller with keep, and reshapes x on request', () => {
    const loader = new BatchLoader(numbered(10), { batchSize: 5, seed: 2 });
    const base = tf.memory().numTensors;
    const kept = [...loader.tensorBatches(0, { keep: true, xShape: [2, 3, 1] })];
    expect(kept[0].x.shape).toEqual([5, 2, 3, 1]);
    expect(tf.memory().numTensors).toBe(base + 4);
    for (const b of kept) tf.dispose([b.x, b.y]);
    expect(tf.memory().numTensors).toBe(base);
    expect(() => [...loader.tensorBatches(0, { xShape: [7] })]).toThrow(/xShape \[7\] must hold 6 values/);
  });
});
