// Model builders shared by the bnn, peers, kl and size suites: the zoo's three models made
// Bayesian with each registered posterior, and the PTQ flow to qat's integer engine. The models
// are untrained (random initialisation): throughput and size do not depend on the weights'
// values, only on their shapes (and SGHMC's member count).
import { Rng } from '@qbnn/core';
import { Linear, lenet5, type Module, ReLU, resnet18, Sequential } from '@qbnn/nn';
import { BayesConv2d, BayesLinear, dnnToBnn, type SghmcPosterior } from '@qbnn/posteriors';
import { defaultQConfig, type QuantizedModel, quantize } from '@qbnn/qat';
import * as tf from '@tensorflow/tfjs-core';

export type ModelName = 'mlp' | 'lenet5' | 'resnet18';
export type PosteriorKind = 'gaussian' | 'radial' | 'mcdropout' | 'sghmc';

export const MODELS: ModelName[] = ['mlp', 'lenet5', 'resnet18'];
export const POSTERIORS: PosteriorKind[] = ['gaussian', 'radial', 'mcdropout', 'sghmc'];

/** SGHMC ensembles hold this many collected members; L samples cycle through them. */
export const SGHMC_MEMBERS = 10;

/** Per-example input shape of each model. */
export const INPUT_SHAPE: Record<ModelName, number[]> = {
  // Boston housing's 13 features
  mlp: [13],
  lenet5: [1, 28, 28],
  resnet18: [3, 32, 32],
};

/** Human description of each model, for notes. */
export const MODEL_NOTE: Record<ModelName, string> = {
  mlp: 'regression MLP 13-100-100-100-2 (the zoo MLP with its mean and log-variance heads as one Linear(100, 2), which computes the same function and keeps the model sequential for the integer engine)',
  lenet5: 'LeNet-5 (Ferianc: conv 20, conv 50, fc 500, fc 10), 1x28x28 input',
  resnet18: 'ResNet-18 (Ferianc widths 24-48-96-192), 3x32x32 input',
};

/** The deterministic model (before conversion to Bayesian layers). */
export function buildDeterministic(name: ModelName, seed = 0): Module {
  switch (name) {
    case 'mlp': {
      const s = new Rng(seed);
      return new Sequential({
        fc_0: new Linear(13, 100, { seed: s.fork(0) }),
        fc_1: new ReLU(),
        fc_2: new Linear(100, 100, { seed: s.fork(1) }),
        fc_3: new ReLU(),
        fc_4: new Linear(100, 100, { seed: s.fork(2) }),
        fc_5: new ReLU(),
        head: new Linear(100, 2, { seed: s.fork(3) }),
      });
    }
    case 'lenet5':
      return lenet5({}, { seed });
    case 'resnet18':
      return resnet18({}, { seed });
  }
}

/**
 * A Bayesian model: every Linear and Conv2d becomes a Bayesian layer with `posterior`
 * (dnnToBnn). Gaussian and Radial use the default rho init (sigma ~ softplus(-5)); MC Dropout
 * p = 0.2; SGHMC collects {@link SGHMC_MEMBERS} members, each the initial weights perturbed.
 */
export function buildBayes(name: ModelName, posterior: PosteriorKind, seed = 0): Module {
  const { model } = dnnToBnn(buildDeterministic(name, seed), {
    posterior,
    posteriorOptions: (posterior === 'mcdropout' ? { p: 0.2 } : {}) as never,
    seed,
  });
  model.eval();
  if (posterior === 'sghmc') {
    const rng = new Rng(seed + 77);
    for (const [, m] of model.namedModules()) {
      if (m instanceof BayesLinear || m instanceof BayesConv2d) {
        const p = m.posterior as SghmcPosterior;
        for (let k = 0; k < SGHMC_MEMBERS; k++) {
          tf.tidy(() => {
            const noise = tf.tensor(rng.normal(p.weight.size), p.weight.shape);
            p.weight.assign(tf.add(p.weight, tf.mul(noise, 0.01)));
          });
          p.collect();
        }
      }
    }
  }
  return model;
}

/** A deterministic random input batch in [0, 1), shape [batch, ...INPUT_SHAPE]. */
export function inputBatch(name: ModelName, batch: number, seed = 1): Float32Array {
  const per = INPUT_SHAPE[name].reduce((a, b) => a * b, 1);
  const u = new Rng(seed).uint32(per * batch);
  return Float32Array.from(u, (v) => v / 2 ** 32);
}

export function inputTensor(name: ModelName, batch: number, seed = 1): tf.Tensor {
  return tf.tensor(inputBatch(name, batch, seed), [batch, ...INPUT_SHAPE[name]]);
}

/**
 * PTQ (prepare, calibrate on two random batches with two weight draws each, convert) to qat's
 * integer engine, at `weightBits` (activations 8 bits). Consumes `model`.
 */
export async function quantizeModel(name: ModelName, model: Module, weightBits = 8): Promise<QuantizedModel> {
  const batches = [inputTensor(name, 8, 11), inputTensor(name, 8, 12)];
  try {
    return await quantize(model, {
      mode: 'ptq',
      data: batches,
      qconfig: defaultQConfig({ weightBits }),
      inputShape: INPUT_SHAPE[name],
      passes: 2,
    });
  } finally {
    for (const b of batches) b.dispose();
  }
}

/** Whether the fp32 path (posteriors' predict) supports a sampling mode for a posterior. */
export function supportsMode(posterior: PosteriorKind, mode: 'weights' | 'local'): boolean {
  if (mode === 'weights') return true;
  return posterior === 'gaussian' || posterior === 'mcdropout';
}
