import { Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { GaussianPosterior } from '../src/gaussian.js';
import { RadialPosterior } from '../src/radial.js';
import { setup } from './helpers.js';

beforeAll(setup);

/** Root-mean-square of w - mu over `draws` weight samples, and its standard error (delta method). */
function noiseRms(post: RadialPosterior | GaussianPosterior, draws: number): [number, number] {
  const [w] = post.params;
  const perDraw: number[] = [];
  for (let k = 0; k < draws; k++) {
    const v = tf.tidy(() => tf.sub(post.sample().weight, w.mu).dataSync());
    let s = 0;
    for (const x of v) s += x * x;
    perDraw.push(s / v.length);
  }
  const m = perDraw.reduce((a, b) => a + b, 0) / draws;
  const sd = Math.sqrt(perDraw.reduce((a, b) => a + (b - m) ** 2, 0) / (draws - 1));
  // rms = sqrt(mean square): SE by the delta method
  return [Math.sqrt(m), sd / Math.sqrt(draws) / (2 * Math.sqrt(m))];
}

describe("Radial's default initialisation (issue 19, item 5)", () => {
  it('gives each weight ~0.02 of noise whatever the tensor size (the old default shrank it by sqrt(n))', () => {
    for (const shape of [
      [6, 1, 5, 5],
      [120, 400],
    ] as number[][]) {
      const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
      const spec = { weightShape: shape, biasShape: null, fanIn, rng: new Rng(3) };
      // E[(r u_j)^2] = 1/n and sigma ~ 0.02 sqrt(n) (rho std 0.1 widens it by ~0.5%): rms noise 0.02
      const [rms, se] = noiseRms(new RadialPosterior(spec), 100);
      expect(Math.abs(rms - 0.02), `${shape}: rms ${rms} se ${se}`).toBeLessThan(4 * se + 0.02 * 0.02);
      // an explicit rhoInit still wins: rho = -5 everywhere is the old, all but deterministic posterior
      const [old] = noiseRms(new RadialPosterior(spec, { rhoInit: { mean: -5, std: 0.1 } }), 20);
      const n = shape.reduce((a, b) => a * b, 1);
      expect(old).toBeLessThan((0.0068 / Math.sqrt(n)) * 1.5);
    }
  });

  it("leaves the Gaussian's default (sigma = softplus(-5) ~ 0.0067 a weight) as it was", () => {
    const spec = { weightShape: [120, 400], biasShape: null, fanIn: 400, rng: new Rng(3) };
    const [rms, se] = noiseRms(new GaussianPosterior(spec), 20);
    expect(Math.abs(rms - 0.00672)).toBeLessThan(4 * se + 0.0001);
  });
});
