/**
 * Issue 19, item 5: every built-in posterior's defaults (initialisation, KL weight, learning rate,
 * SGHMC schedule: what `qbnn train` uses when given no flags) give a posterior whose epistemic
 * uncertainty is visible after a small budget: the mean mutual information on out-of-distribution
 * images (Fashion-MNIST) is above the mean on MNIST test digits by more than Z standard errors, and
 * large enough to read (MIN_OOD_MI nats), not a difference of rounding noise. The small budget:
 * the cli's Bayesian MLP on 1,000 digits for 2 epochs, L = 10 samples, 300 test and 300 OOD images.
 *
 * Standard error: per-example MI values are independent across examples (the posterior's weight
 * draws are shared within a batch, which the per-example spread over 300 images covers), so the
 * SE of a mean is sd / sqrt(n) and the SE of the difference adds the two in quadrature.
 *
 * The broken variant: Radial with the old default (rho = -5 for every tensor, so each weight's
 * noise is sigma / sqrt(tensor size), ~1e-5 in fc1) must fail the check.
 */
import { uncertaintyScores } from '@qbnn/metrics';
import { beforeAll, describe, expect, test } from 'vitest';
import { imageTensors } from '../src/commands/common.js';
import { haveFashionMnist, loadClassification, loadConfusion } from '../src/lib/data.js';
import { buildBayesModel } from '../src/lib/models.js';
import { floatProbs } from '../src/lib/predict.js';
import { initRuntime } from '../src/lib/runtime.js';
import { trainBayes } from '../src/lib/train.js';

const Z = 3;
const MIN_OOD_MI = 1e-3;
const L = 10;
const SEED = 0;

/** Mean, its standard error. */
function meanSe(v: Float64Array): [number, number] {
  let m = 0;
  for (const x of v) m += x;
  m /= v.length;
  let s = 0;
  for (const x of v) s += (x - m) ** 2;
  return [m, Math.sqrt(s / (v.length - 1) / v.length)];
}

interface Separation {
  testMi: number;
  oodMi: number;
  /** (OOD - test) / SE of the difference. */
  z: number;
}

async function separation(
  posterior: string,
  posteriorOptions?: Record<string, unknown>,
): Promise<Separation> {
  const split = loadClassification('mnist', { trainSize: 1000, testSize: 300, seed: SEED });
  const ood = loadConfusion('mnist', 300, SEED).set;
  const model = buildBayesModel({ model: 'mlp', posterior, posteriorOptions, seed: SEED });
  const data = imageTensors(split.train, [784]);
  try {
    // the cli's defaults (qbnn train with no flags): beta 0.1, Adam 2e-3 or SGHMC 0.5, 8 members
    await trainBayes(model, data, {
      epochs: 2,
      batchSize: 64,
      beta: 0.1,
      seed: SEED,
      task: 'classification',
      members: 8,
      label: posterior,
      quiet: true,
    });
    const mi = (set: typeof ood) => {
      const p = floatProbs(model, set, L, { inputShape: [784] });
      return uncertaintyScores(p.probs, { samples: p.samples, n: p.n, classes: p.classes }).mutualInformation;
    };
    const [t, tse] = meanSe(Float64Array.from(mi(split.test)));
    const [o, ose] = meanSe(Float64Array.from(mi(ood)));
    return { testMi: t, oodMi: o, z: (o - t) / Math.hypot(tse, ose) };
  } finally {
    data.x.dispose();
    data.y.dispose();
    model.dispose();
  }
}

const visible = (s: Separation) => s.z > Z && s.oodMi > MIN_OOD_MI;

describe.skipIf(!haveFashionMnist() && !process.env.CI)(
  "each posterior's defaults show epistemic uncertainty in a small budget",
  { timeout: 180_000 },
  () => {
    beforeAll(async () => {
      await initRuntime({ native: true });
    });

    for (const posterior of ['gaussian', 'radial', 'mcdropout', 'sghmc']) {
      test(`${posterior}: OOD MI above test MI by more than ${Z} SE, and above ${MIN_OOD_MI} nats`, async () => {
        const s = await separation(posterior);
        console.log(
          `${posterior}: test MI ${s.testMi.toExponential(3)}, OOD MI ${s.oodMi.toExponential(3)}, z ${s.z.toFixed(1)}`,
        );
        expect(visible(s), JSON.stringify(s)).toBe(true);
      });
    }

    test('the broken variant is caught: Radial with the old default (rho -5 whatever the tensor size)', async () => {
      const s = await separation('radial', { rhoInit: { mean: -5, std: 0.1 } });
      console.log(
        `radial, old default: test MI ${s.testMi.toExponential(3)}, OOD MI ${s.oodMi.toExponential(3)}, z ${s.z.toFixed(1)}`,
      );
      expect(visible(s), JSON.stringify(s)).toBe(false);
    });
  },
);
