// Soak (issue 17, float half): 10^3 float predicts in a synchronous loop, as a long-running server
// would make them, leave the process's resident memory and the tfjs tensor count flat. Small model,
// so it stays fast; the integer engine's soak lives with the engine (@qbnn/qat).
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate, Linear, predict, ReLU, Sequential } from '../src/index.js';
import { ready } from './setup.js';

beforeAll(ready);

describe('soak: float predict in a synchronous loop', () => {
  it('10^3 predicts (and evaluates): flat RSS and tensor counts', () => {
    const m = new Sequential(new Linear(16, 64, { seed: 1 }), new ReLU(), new Linear(64, 10, { seed: 2 }));
    const x = tf.randomNormal([32, 16], 0, 1, 'float32', 3);
    const y = tf.tensor1d(
      Array.from({ length: 32 }, (_, i) => i % 10),
      'int32',
    );
    const run = (k: number) => {
      for (let i = 0; i < k; i++) {
        const out = predict(m, x, { batchSize: 8 });
        out.dataSync();
        out.dispose();
        if (i % 10 === 0) evaluate(m, { x, y }, { batchSize: 16 });
      }
    };
    run(100); // warm up: backend pools, JIT
    global.gc?.();
    const tensors = tf.memory().numTensors;
    const rss0 = process.memoryUsage().rss;
    run(1000);
    global.gc?.();
    const grown = process.memoryUsage().rss - rss0;
    expect(tf.memory().numTensors).toBe(tensors);
    // A tensor leak shows in the count above; this bound catches growth outside tfjs's count
    // (the wasm heap, JS objects held) of more than ~48 KB a call.
    expect(grown).toBeLessThan(48 * 2 ** 20);
    tf.dispose([x, y]);
    m.dispose();
  });
});
