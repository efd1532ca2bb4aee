import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SafeTensor } from '@qbnn/nn';
import { saveSafetensors } from '@qbnn/nn/node';
import { afterAll, describe, expect, test } from 'vitest';
import { run } from './run.js';

const PYTHON = '/usr/bin/python3';
const torchHere = spawnSync(PYTHON, ['-c', 'import torch, sklearn'], { stdio: 'ignore' }).status === 0;
if (!torchHere && process.env.CI === 'true') {
  throw new Error(
    `${PYTHON} cannot import torch and sklearn under CI=true: run 'bash scripts/setup.sh --test'`,
  );
}

/** A float32 safetensors entry of `shape` with values `at(flat index)`. */
function f32(shape: number[], at: (i: number) => number): SafeTensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = at(i);
  return { dtype: 'F32', shape, data };
}

/** A fixed pseudo-random number in [0, 1) for index i (a 32-bit integer hash). */
function uniform(i: number): number {
  let h = Math.imul(i + 1, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return ((h ^ (h >>> 13)) >>> 0) / 2 ** 32;
}

const dir = mkdtempSync(join(tmpdir(), 'qbnn-cli-datafile-'));
const interopTest = join(
  new URL('.', import.meta.url).pathname,
  '..',
  '..',
  '..',
  'packages',
  'interop',
  'test',
);

/**
 * PyTorch trains a Bayesian MLP (features -> 32 -> 2, Bayesian-Torch's layer names, loss + KL / N,
 * Adam) on one of sklearn's bundled data sets, standardised and split by `seed`, and saves
 * `<name>.pt` (the state dict), `<name>-train.pt` and `<name>-test.pt` ({x, y}); `extra` adds lines
 * (with `net`, `x`, `y`, `tr`, `te` in scope). Returns what the script prints last as JSON: PyTorch's
 * own Monte Carlo figure of the test rows, the independent reference of qbnn's.
 */
function trainInTorch<T>(o: {
  name: string;
  dataset: 'load_breast_cancer' | 'load_diabetes';
  features: number;
  nTrain: number;
  seed: number;
  epochs: number;
  batch: number;
  yType: 'int64' | 'float32';
  loss: string;
  measure: string;
  extra?: string;
}): T {
  const script = `
import sys, json, math
sys.path.insert(0, ${JSON.stringify(interopTest)})
from bayesian_torch_like import *
from sklearn.datasets import ${o.dataset}
torch.set_num_threads(1)
torch.manual_seed(${o.seed})
d = ${o.dataset}()
x = torch.tensor(d.data, dtype=torch.float32)
x = (x - x.mean(0)) / x.std(0)
y = torch.tensor(d.target, dtype=torch.${o.yType})
if y.is_floating_point(): y = (y - y.mean()) / y.std()
perm = torch.randperm(len(x))
tr, te = perm[:${o.nTrain}], perm[${o.nTrain}:]
class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = LinearReparameterization(${o.features}, 32, posterior_rho_init=-5.0)
        self.fc2 = LinearReparameterization(32, 2, posterior_rho_init=-5.0)
    def forward(self, x):
        h, k1 = self.fc1(x)
        o, k2 = self.fc2(F.relu(h))
        return o, k1 + k2
def loss_of(o, t):
${o.loss}
net = Mlp()
opt = torch.optim.Adam(net.parameters(), 1e-2)
for epoch in range(${o.epochs}):
    for i in range(0, ${o.nTrain}, ${o.batch}):
        b = tr[i:i + ${o.batch}]
        out, kl = net(x[b])
        loss = loss_of(out, y[b]) + kl / ${o.nTrain}
        opt.zero_grad(); loss.backward(); opt.step()
torch.save(net.state_dict(), "${dir}/${o.name}.pt")
torch.save({'x': x[tr], 'y': y[tr]}, "${dir}/${o.name}-train.pt")
torch.save({'x': x[te], 'y': y[te]}, "${dir}/${o.name}-test.pt")
${o.extra ?? ''}
with torch.no_grad():
${o.measure}
`;
  const out = execFileSync(PYTHON, ['-c', script], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!) as T;
}

/** `qbnn import <name>.pt` as a Linear(features, 32), ReLU, Linear(32, 2) architecture (the ReLU unnamed). */
async function importMlp(name: string, features: number): Promise<string> {
  const arch = join(dir, `${name}-arch.json`);
  writeFileSync(
    arch,
    JSON.stringify({
      layers: [
        { name: 'fc1', type: 'Linear', in_features: features, out_features: 32 },
        { type: 'ReLU' },
        { name: 'fc2', type: 'Linear', in_features: 32, out_features: 2 },
      ],
    }),
  );
  const out = join(dir, `${name}.safetensors`);
  const r = await run('import', join(dir, `${name}.pt`), '--arch', arch, '--out', out);
  expect(r.code, r.err).toBe(0);
  return out;
}

/**
 * `qbnn quantize` of `<name>.safetensors` on `<name>-train.pt` into `<name>-<tag>.safetensors`,
 * then `qbnn eval` of both models on `<name>-test.pt`; each must exit 0. Returns eval's output and
 * the two models' metrics (float32, int8).
 */
async function quantizeAndEval(
  name: string,
  tag: string,
  o: { quantize?: string[]; eval?: string[] },
): Promise<{ out: string; float: Record<string, number>; int8: Record<string, number> }> {
  const imported = join(dir, `${name}.safetensors`);
  const q = join(dir, `${name}-${tag}.safetensors`);
  const data = (part: string) => ['--data', join(dir, `${name}-${part}.pt`)];
  const quant = await run(
    'quantize',
    '--checkpoint',
    imported,
    ...data('train'),
    '--out',
    q,
    '--quiet',
    ...(o.quantize ?? []),
  );
  expect(quant.code, quant.err).toBe(0);
  const results = join(dir, `${name}-results.json`);
  const ev = await run(
    'eval',
    '--checkpoint',
    imported,
    '--quantized',
    q,
    ...data('test'),
    '--out',
    results,
    '--quiet',
    ...(o.eval ?? []),
  );
  expect(ev.code, ev.err).toBe(0);
  const r = JSON.parse(readFileSync(results, 'utf8')) as { models: { metrics: Record<string, number> }[] };
  return { out: ev.out, float: r.models[0].metrics, int8: r.models[1].metrics };
}

describe.runIf(torchHere)(
  'qbnn quantize / eval of an imported model on the user’s own data files',
  { timeout: 300_000 },
  () => {
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test('a Bayesian-Torch MLP on breast-cancer data: imported, quantised with --data FILE, evaluated against PyTorch', async () => {
      // a 2-class Bayesian MLP on sklearn's breast-cancer set; PyTorch's own MC accuracy (32 samples)
      const torchRef = trainInTorch<{ accuracy: number; n: number }>({
        name: 'mlp',
        dataset: 'load_breast_cancer',
        features: 30,
        nTrain: 400,
        seed: 0,
        epochs: 30,
        batch: 50,
        yType: 'int64',
        loss: '    return F.cross_entropy(o, t)',
        extra: `torch.save({'x': x[te], 'y': y[te].float()}, "${dir}/test-float-y.pt")
torch.save({'x': x[te]}, "${dir}/x-only.pt")`,
        measure: `    p = torch.stack([F.softmax(net(x[te])[0], 1) for _ in range(32)]).mean(0)
    print(json.dumps({'accuracy': (p.argmax(1) == y[te]).float().mean().item(), 'n': len(te)}))`,
      });
      // inputs uniform in +-8 standard deviations as the OOD set, written by qbnn as safetensors
      await saveSafetensors(join(dir, 'ood.safetensors'), { x: f32([169, 30], (i) => 16 * uniform(i) - 8) });
      const imported = await importMlp('mlp', 30);

      // an imported model without a data file: a usage error naming --data, nothing written
      const noData = await run(
        'quantize',
        '--checkpoint',
        imported,
        '--out',
        join(dir, 'never.safetensors'),
        '--quiet',
      );
      expect(noData.code).not.toBe(0);
      expect(noData.err).toMatch(/imported model: give its data with --data FILE/);

      const { float, int8 } = await quantizeAndEval('mlp', 'ptq', {
        eval: ['--ood', join(dir, 'ood.safetensors'), '--samples', '16', '--json'],
      });
      // MC accuracy of the same weights: within 3 standard errors of PyTorch's own figure
      const se = Math.sqrt((torchRef.accuracy * (1 - torchRef.accuracy)) / torchRef.n) + 1 / torchRef.n;
      expect(float.accuracy).toBeGreaterThan(0.9);
      expect(Math.abs(float.accuracy - torchRef.accuracy)).toBeLessThanOrEqual(3 * se);
      expect(Math.abs(int8.accuracy - float.accuracy)).toBeLessThanOrEqual(3 * se);
      // the OOD file reached both models: AUROCs computed, and int8 ranks the examples as float does
      // (ReLU networks are not reliably uncertain far from the data, so no claim on the AUROC itself)
      expect(Number.isFinite(float.oodAuroc)).toBe(true);
      expect(Math.abs(int8.oodAuroc - float.oodAuroc)).toBeLessThan(0.1);
    });

    test('bad data files are typed errors that name the flag and the expectation', async () => {
      const imported = join(dir, 'mlp.safetensors');
      const q = join(dir, 'mlp-ptq.safetensors');
      const evalWith = (...extra: string[]) =>
        run(
          'eval',
          '--checkpoint',
          imported,
          '--quantized',
          q,
          '--out',
          join(dir, 'r2.json'),
          '--quiet',
          ...extra,
        );

      const noY = await evalWith('--data', join(dir, 'x-only.pt'));
      expect(noY.code).not.toBe(0);
      expect(noY.err).toMatch(/--data .*x-only\.pt: expected tensors 'x' .* and 'y' .*found \[x\]/);

      // float labels are read as regression targets: a 2-class classifier's head is [N, 2] too, so
      // the note says how they were read; a 3-column head is refused
      const floatY = await evalWith('--data', join(dir, 'test-float-y.pt'));
      expect(floatY.err).toMatch(/'y' is floating point, so it is read as regression targets/);

      // OOD rows of another width: refused before any model runs
      await saveSafetensors(join(dir, 'narrow.safetensors'), { x: f32([4, 7], () => 0) });
      const narrow = await evalWith(
        '--data',
        join(dir, 'mlp-test.pt'),
        '--ood',
        join(dir, 'narrow.safetensors'),
      );
      expect(narrow.code).not.toBe(0);
      expect(narrow.err).toMatch(
        /--ood .*narrow\.safetensors: 'x' is \[4,7\], 7 values an example, but the test examples hold 30/,
      );

      const nan = join(dir, 'nan.safetensors');
      await saveSafetensors(nan, {
        x: f32([1, 30], (i) => (i === 0 ? Number.NaN : 0)),
        y: { dtype: 'I32', shape: [1], data: new Int32Array(1) },
      });
      const bad = await evalWith('--data', nan);
      expect(bad.code).not.toBe(0);
      expect(bad.err).toMatch(/'x' holds NaN at flat index 0; inputs must be finite/);

      const notTensors = join(dir, 'junk.pt');
      writeFileSync(notTensors, 'not a torch file');
      const junk = await evalWith('--data', notTensors);
      expect(junk.code).not.toBe(0);
      expect(junk.err).toMatch(/--data .*junk\.pt: not a torch\.save or safetensors file of tensors/);

      const shifted = await evalWith('--data', join(dir, 'mlp-test.pt'), '--ood', 'shifted');
      expect(shifted.code).not.toBe(0);
      expect(shifted.err).toMatch(/with --data FILE give --ood FILE or none/);
    });

    test('a Bayesian-Torch regression MLP on the diabetes data: quantised on float targets, RMSE and coverage against PyTorch', async () => {
      // Gaussian NLL with a softplus variance head (qbnn's convention for [N, 2] outputs) + KL / N;
      // PyTorch's own RMSE of the MC mean (64 samples)
      const torchRef = trainInTorch<{ rmse: number }>({
        name: 'reg',
        dataset: 'load_diabetes',
        features: 10,
        nTrain: 320,
        seed: 1,
        epochs: 60,
        batch: 40,
        yType: 'float32',
        loss: `    v = F.softplus(o[:, 1]) + 1e-6
    return (0.5 * torch.log(2 * math.pi * v) + (t - o[:, 0]) ** 2 / (2 * v)).mean()`,
        measure: `    m = torch.stack([net(x[te])[0][:, 0] for _ in range(64)]).mean(0)
    print(json.dumps({'rmse': ((m - y[te]) ** 2).mean().sqrt().item()}))`,
      });
      await importMlp('reg', 10);
      // QAT fine-tunes on the float targets (the Gaussian NLL)
      const { out, float, int8 } = await quantizeAndEval('reg', 'qat', {
        quantize: ['--mode', 'qat', '--qat-lr', '1e-4'],
        eval: ['--samples', '64'],
      });
      expect(out).toMatch(/RMSE/);
      // the same weights' MC-mean RMSE as PyTorch's own, up to Monte Carlo noise at rho = -5
      expect(Math.abs(float.rmse - torchRef.rmse)).toBeLessThan(0.05 * torchRef.rmse);
      expect(int8.rmse).toBeLessThan(1.1 * float.rmse);
      for (const m of [float, int8]) {
        expect(m.coverage95).toBeGreaterThan(0.7);
        expect(m.gaussianNll).toBeLessThan(2);
      }
    });
  },
);
