import { describe, expect, it } from 'vitest';
import { classCounts } from '../src/index.js';
import { FASHION_MNIST_DEBIAN_DIR, findFashionMnistDir, loadFashionMnist } from '../src/node.js';

let dir: string | undefined;
try {
  dir = findFashionMnistDir(undefined, 'test');
} catch {
  dir = undefined;
}
if (!dir) {
  console.warn(
    `fashion-real.test: Fashion-MNIST not found (QBNN_DATA_DIR or ${FASHION_MNIST_DEBIAN_DIR}); ` +
      'skipping. Install it with `sudo apt-get install dataset-fashion-mnist`.',
  );
}

describe.skipIf(!dir)('loadFashionMnist on the real files', () => {
  it('loads the 10,000 test images, 1,000 a class, values in [0, 1]', () => {
    const s = loadFashionMnist({ split: 'test' });
    expect(s.shape).toEqual([10000, 1, 28, 28]);
    expect(s.images.length).toBe(10000 * 784);
    expect(Array.from(classCounts(s.labels, 10))).toEqual(new Array(10).fill(1000));
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (const v of s.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    // Fashion-MNIST's mean intensity is about 0.286 (MNIST's ~0.13)
    expect(sum / s.images.length).toBeGreaterThan(0.27);
    expect(sum / s.images.length).toBeLessThan(0.3);
    // the first test image is an ankle boot (label 9) in the published files
    expect(s.labels[0]).toBe(9);
  });

  it('loads the 60,000 training labels, 6,000 a class (images limited for speed)', () => {
    const s = loadFashionMnist({ split: 'train', limit: 1000 });
    expect(s.shape).toEqual([1000, 1, 28, 28]);
    const full = loadFashionMnist({ split: 'train' });
    expect(full.shape[0]).toBe(60000);
    expect(Array.from(classCounts(full.labels, 10))).toEqual(new Array(10).fill(6000));
    let same = true;
    for (let i = 0; i < s.images.length; i++) same &&= s.images[i] === full.images[i];
    expect(same).toBe(true);
  });
});
