import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadQuantized } from '@qbnn/qat/node';
import { afterAll, describe, expect, test } from 'vitest';
import type { Results } from '../src/lib/results.js';
import { haveChromium, renderInChromium } from './chromium.js';
import { run } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'qbnn-cli-e2e-'));
const ckpt = join(dir, 'm.safetensors');
// A small but real run: 600 MNIST digits, 2 epochs of a Bayesian MLP, 200 held-out digits.
const split = ['--train-size', '600', '--test-size', '200'];

// Each step needs a few seconds of CPU; the timeout leaves room for a machine shared with other jobs.
describe('train -> quantize -> eval -> report on real MNIST digits', { timeout: 300_000 }, () => {
  afterAll(() => {
    // keep the screenshots (the report of a real run) where a person can look at them
    for (const [from, to] of [
      ['report.png', 'qbnn-cli-e2e-report.png'],
      ['sweep/report.png', 'qbnn-cli-e2e-sweep.png'],
    ]) {
      if (existsSync(join(dir, from))) copyFileSync(join(dir, from), join(tmpdir(), to));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('train writes a checkpoint and reports the run as JSON', async () => {
    const r = await run(
      'train',
      '--model',
      'mlp',
      '--posterior',
      'gaussian',
      ...split,
      '--epochs',
      '2',
      '--out',
      ckpt,
      '--json',
      '--quiet',
    );
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.checkpoint).toBe(ckpt);
    expect(j.posterior).toBe('gaussian');
    expect(j.trainImages).toBe(600);
    expect(j.steps).toBe(2 * Math.ceil(600 / 64));
    expect(Number.isFinite(j.finalLoss)).toBe(true);
    expect(existsSync(ckpt)).toBe(true);
    expect(readdirTmp(dir)).toEqual([]);
  });

  test('quantize: PTQ at W8/A8, and QAT with a per-layer override from a qconfig file', async () => {
    const ptq = await run('quantize', '--checkpoint', ckpt, '--calibration-size', '128', '--quiet');
    expect(ptq.code, ptq.err).toBe(0);
    expect(existsSync(join(dir, 'm-ptq-w8a8.safetensors'))).toBe(true);
    const qc = join(dir, 'qconfig.json');
    writeFileSync(qc, JSON.stringify({ layers: { fc3: { weight: { bits: 4 } } } }));
    const qat = await run(
      'quantize',
      '--checkpoint',
      ckpt,
      '--mode',
      'qat',
      '--qat-size',
      '256',
      '--abits',
      '7',
      '--qconfig',
      qc,
      '--json',
      '--quiet',
    );
    expect(qat.code, qat.err).toBe(0);
    const j = JSON.parse(qat.out);
    expect(j.layers.map((l: { path: string; weightBits: number }) => [l.path, l.weightBits])).toEqual([
      ['fc1', 8],
      ['fc2', 8],
      ['fc3', 4],
    ]);
    // The saved file holds what was reported: fc3's mean and sigma at 4 bits, inputs at 7.
    const qm = await loadQuantized(j.quantized);
    const fc3 = qm.layers[2].weights;
    expect(fc3.kind).toBe('gaussian');
    if (fc3.kind === 'gaussian') {
      expect(fc3.muQ.bits).toBe(4);
      expect(Math.max(...Array.from(fc3.mu, Math.abs))).toBeLessThanOrEqual(8);
    }
    expect(qm.layers.every((l) => l.input.bits === 7)).toBe(true);
    // Bad override files are usage errors naming the flag and the key.
    writeFileSync(qc, JSON.stringify({ layers: { fc3: { weight: { bitz: 4 } } } }));
    const bad = await run('quantize', '--checkpoint', ckpt, '--qconfig', qc);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('layers.fc3.weight.bitz is not a quantisation setting');
  });

  let results: Results;
  test('eval: float vs int8 figures that hang together, written to results.json', async () => {
    const out = join(dir, 'results.json');
    const r = await run(
      'eval',
      '--checkpoint',
      ckpt,
      '--quantized',
      `${join(dir, 'm-ptq-w8a8.safetensors')},${join(dir, 'm-qat-w8a7.safetensors')}`,
      '--ood-size',
      '200',
      '--samples',
      '4',
      '--throughput',
      '--throughput-seconds',
      '0.2',
      '--out',
      out,
      '--json',
      '--quiet',
    );
    expect(r.code, r.err).toBe(0);
    results = JSON.parse(r.out) as Results;
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(results);
    expect(results.models.map((m) => m.name)).toEqual(['float32', 'm-ptq-w8a8', 'm-qat-w8a7']);
    const [float, ptq] = results.models;
    // trained: far above chance (0.1) on held-out digits
    expect(float.metrics.accuracy).toBeGreaterThan(0.5);
    // 8-bit PTQ keeps the predictions
    expect(Math.abs(ptq.metrics.accuracy - float.metrics.accuracy)).toBeLessThan(0.08);
    for (const m of results.models) {
      const x = m.metrics;
      expect(x.error).toBeCloseTo(1 - x.accuracy, 12);
      expect(x.mi).toBeGreaterThanOrEqual(-1e-9);
      expect(x.ape).toBeGreaterThanOrEqual(x.mi);
      expect(x.ape).toBeLessThanOrEqual(Math.log(10) + 1e-9);
      expect(x.ece).toBeGreaterThanOrEqual(0);
      expect(x.oodAuroc).toBeGreaterThanOrEqual(0);
      expect(x.oodAuroc).toBeLessThanOrEqual(1);
      // referring nothing keeps the plain accuracy
      expect(m.referral[0]).toEqual({ fraction: 0, accuracy: Math.round(x.accuracy * 1e4) / 1e4 });
      expect(m.entropy.correct.length + m.entropy.wrong.length).toBe(200);
      expect(m.entropy.wrong.length).toBe(Math.round(200 * x.error));
      expect(m.roc[0]).toEqual({ fpr: 0, tpr: 0 });
      expect(m.roc[m.roc.length - 1]).toEqual({ fpr: 1, tpr: 1 });
      const n = m.reliability.reduce((s, b) => s + b.count, 0);
      expect(n).toBe(200);
    }
    const impls = results.throughput!.map((t) => t.impl);
    // the float row names the kernels it ran on (qbnn's native fp32 kernels when the addon loaded)
    expect(impls[0]).toMatch(/^float32 (tfjs-wasm|native \(tfjs-wasm \+ qbnn kernels\))$/);
    expect(impls).toContain('m-ptq-w8a8 js');
    expect(results.throughput!.every((t) => t.imagesPerSecond > 0)).toBe(true);
  });

  test.skipIf(!haveChromium)(
    'report: the HTML of the real run renders every chart in headless Chromium',
    async () => {
      const html = join(dir, 'report.html');
      const r = await run('report', '--results', join(dir, 'results.json'), '--out', html);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain(html);
      const ids = ['reliability', 'entropy', 'referral', 'roc', 'throughput'];
      const page = await renderInChromium(html, ids, join(dir, 'report.png'));
      expect(page.errors).toEqual([]);
      expect(page.requests).toEqual([]);
      expect(page.chartsRendered).toBe(ids.length);
      for (const id of ids) expect(page.marks[id], id).toBeGreaterThan(0);
      expect(existsSync(join(dir, 'report.png'))).toBe(true);
    },
  );

  test('demo: a tiny run of the real pipeline (Bayesian LeNet-5, PTQ + QAT, float vs int8, report)', async () => {
    const out = join(dir, 'demo');
    const r = await run(
      'demo',
      '--train-size',
      '128',
      '--test-size',
      '64',
      '--ood-size',
      '64',
      '--epochs',
      '1',
      '--batch-size',
      '32',
      '--qat-size',
      '64',
      '--calibration-size',
      '1000', // more than the 128 training digits: all 128 calibrate, and the results say so
      '--samples',
      '2',
      '--throughput-batch',
      '8',
      '--throughput-seconds',
      '0',
      '--out-dir',
      out,
      '--quiet',
    );
    expect(r.code, r.err).toBe(0);
    for (const f of [
      'model.safetensors',
      'ptq-w8a8.safetensors',
      'qat-w8a8.safetensors',
      'results.json',
      'report.html',
    ]) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    expect(r.err).toMatch(/integer engine provider '(js|native)'/);
    expect(r.out).toMatch(/^accuracy\s+\d\.\d{4}\s+\d\.\d{4}\s+\d\.\d{4}$/m);
    expect(r.out).toMatch(/^OOD AUROC \(entropy\)\s+\d\.\d{4}/m);
    expect(r.out).toContain(`report:      ${join(out, 'report.html')}`);
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
    expect(res.models.map((m) => m.name)).toEqual(['float32', 'int8 PTQ', 'int8 QAT']);
    // said 'PTQ (1000 calibration digits)' while the 128 training digits were all there was
    expect(res.config.quantisation).toMatch(
      /PTQ \(128 calibration digits\) and QAT \(1 epoch on 64 digits\)/,
    );
    const impls = res.throughput!.map((t) => t.impl);
    expect(impls).toEqual(expect.arrayContaining(['int8 PTQ js', 'int8 QAT js']));
    expect(impls[0]).toMatch(/^float32 (tfjs-wasm|native \(tfjs-wasm \+ qbnn kernels\))$/);
    // the int8 model stores mu and sigma as bytes: about a quarter of the float parameters' size
    const [float, ptq] = res.models;
    expect(ptq.metrics.sizeBytes / float.metrics.sizeBytes).toBeGreaterThan(0.2);
    expect(ptq.metrics.sizeBytes / float.metrics.sizeBytes).toBeLessThan(0.3);
  });

  test('sweep: PTQ and QAT points against bit width for MNIST (Fashion-MNIST confusion) and Boston folds, resumable, drawn in the report', async () => {
    const out = join(dir, 'sweep');
    const argv = [
      'sweep',
      '--quick',
      '--posteriors',
      'gaussian',
      '--train-size',
      '300',
      '--test-size',
      '100',
      '--confusion-size',
      '60',
      '--weight-bits',
      '4',
      '--activation-bits',
      '6',
      '--regression',
      'boston',
      '--folds',
      '2',
      '--regression-epochs',
      '5',
      '--samples',
      '2',
      '--out-dir',
      out,
      '--quiet',
    ];
    const r = await run(...argv, '--json');
    expect(r.code, r.err).toBe(0);
    const res = JSON.parse(r.out) as Results;
    const sweep = res.sweep!;
    const at = (sw: string, bits: number, metric: string, mode: string) =>
      sweep.filter((p) => p.sweep === sw && p.bits === bits && p.metric === metric && p.mode === mode);
    const W = 'weight bits (A7)';
    const A = 'activation bits (W8)';
    for (const mode of ['ptq', 'qat']) {
      // each quantised setting once, the float reference (bits 32) starting both lines of each flow
      for (const metric of [
        'MNIST error',
        'MNIST ECE',
        'MNIST NLL',
        'MNIST aPE',
        'Fashion-MNIST aPE (confusion)',
      ]) {
        for (const b of [4, 32]) expect(at(W, b, metric, mode), `${metric} W${b} ${mode}`).toHaveLength(1);
        for (const b of [6, 32]) expect(at(A, b, metric, mode), `${metric} A${b} ${mode}`).toHaveLength(1);
      }
      // regression: one point per fold
      for (const metric of ['Boston RMSE', 'Boston NLL']) {
        expect(
          at(W, 4, metric, mode)
            .map((p) => p.fold)
            .sort(),
          `${metric} ${mode}`,
        ).toEqual([0, 1]);
      }
    }
    expect(at(W, 32, 'MNIST error', 'ptq')[0].value).toBe(at(A, 32, 'MNIST error', 'qat')[0].value);
    for (const p of sweep) expect(Number.isFinite(p.value), `${p.metric} ${p.bits}`).toBe(true);
    // Boston RMSE in $1000s: a trained regressor beats predicting the mean (std of MEDV ~9.2)
    for (const p of at(W, 32, 'Boston RMSE', 'ptq')) expect(p.value).toBeLessThan(8);
    // every point is a file of its own; the trained float models are kept for a rerun
    expect(readdirSync(join(out, 'mnist', 'points')).sort()).toEqual(
      [
        'gaussian~float~w32a32',
        'gaussian~ptq~w4a7',
        'gaussian~ptq~w8a6',
        'gaussian~qat~w4a7',
        'gaussian~qat~w8a6',
      ].map((k) => `${k}.json`),
    );
    expect(readdirSync(join(out, 'mnist', 'models'))).toEqual(['gaussian.safetensors']);
    if (haveChromium) {
      const page = await renderInChromium(
        join(out, 'report.html'),
        ['sweep-mnist', 'sweep-boston'],
        join(out, 'report.png'),
      );
      expect(page.errors).toEqual([]);
      expect(page.chartsRendered).toBe(2);
      expect(page.marks['sweep-mnist']).toBeGreaterThan(0);
      expect(page.marks['sweep-boston']).toBeGreaterThan(0);
    }
    // resumable: a lost point is recomputed alone (same seeds, same value); the others are skipped
    const lost = join(out, 'mnist', 'points', 'gaussian~qat~w4a7.json');
    const before = JSON.parse(readFileSync(lost, 'utf8'));
    rmSync(lost);
    const again = await run(...argv);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain('\n1 new points');
    expect(JSON.parse(readFileSync(lost, 'utf8')).metrics).toEqual(before.metrics);
    // other settings are refused instead of mixing incomparable points
    const other = await run(...argv.map((a) => (a === '300' ? '400' : a)));
    expect(other.code).toBe(2);
    expect(other.err).toMatch(
      /holds sweep points of another configuration \(trainSize: 300 there, 400 now\)/,
    );
  });

  test('a posterior from a --plugin module trains and quantises; an unloadable plugin is a usage error', async () => {
    const plugin = join(dir, 'plugin.mjs');
    writeFileSync(
      plugin,
      `export default function ({ posteriors }) {
  class Wide extends posteriors.GaussianPosterior {}
  posteriors.registerPosterior('cli-test-gauss', (spec, o) => new Wide(spec, { rhoInit: -4, ...o }), { replace: true });
}
`,
    );
    const out = join(dir, 'plugin.safetensors');
    const t = await run(
      'train',
      '--model',
      'mlp',
      '--posterior',
      'cli-test-gauss',
      '--plugin',
      plugin,
      '--train-size',
      '128',
      '--test-size',
      '64',
      '--epochs',
      '1',
      '--out',
      out,
      '--quiet',
    );
    expect(t.code, t.err).toBe(0);
    expect(existsSync(out)).toBe(true);
    const q = await run(
      'quantize',
      '--checkpoint',
      out,
      '--calibration-size',
      '64',
      '--plugin',
      plugin,
      '--quiet',
    );
    expect(q.code, q.err).toBe(0);
    const missing = await run(
      'train',
      '--posterior',
      'no-such-posterior',
      '--plugin',
      join(dir, 'absent.mjs'),
    );
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('--plugin');
  });
});

function readdirTmp(d: string): string[] {
  return readdirSync(d).filter((f) => f.endsWith('.tmp'));
}
