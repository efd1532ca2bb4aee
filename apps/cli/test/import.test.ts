import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMnist } from '@qbnn/data/node';
import { load } from '@qbnn/nn/node';
import { setSamplingMode } from '@qbnn/posteriors';
import { loadQuantized } from '@qbnn/qat/node';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, test } from 'vitest';
import { run } from './run.js';

const PYTHON = '/usr/bin/python3';
const torchHere = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!torchHere && process.env.CI === 'true') {
  throw new Error(`${PYTHON} cannot import torch under CI=true: run 'bash scripts/setup.sh --test'`);
}

const dir = mkdtempSync(join(tmpdir(), 'qbnn-cli-import-'));

describe.runIf(torchHere)(
  'qbnn import: a Bayesian-Torch LeNet-5 trained in PyTorch, quantised by qbnn',
  { timeout: 300_000 },
  () => {
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const digits = loadMnist({ trainSize: 1000, testSize: 64, seed: 3 });

    test('import writes a checkpoint qbnn quantize takes; the integer engine agrees with the float model', async () => {
      writeFileSync(join(dir, 'x.f32'), new Uint8Array(digits.train.images.buffer));
      writeFileSync(join(dir, 'y.i32'), new Uint8Array(Int32Array.from(digits.train.labels).buffer));
      // A Bayesian LeNet-5 with Bayesian-Torch's layer names and semantics, trained 1 epoch (ELBO). Measured here: 64/64 agree, 49/64 correct.
      execFileSync(
        PYTHON,
        [
          '-c',
          `
import sys
sys.path.insert(0, ${JSON.stringify(join(new URL('.', import.meta.url).pathname, '..', '..', '..', 'packages', 'interop', 'test'))})
from bayesian_torch_like import *
import numpy as np
torch.set_num_threads(1)
torch.manual_seed(0)
x = torch.from_numpy(np.fromfile("${dir}/x.f32", dtype=np.float32).reshape(-1, 1, 28, 28))
y = torch.from_numpy(np.fromfile("${dir}/y.i32", dtype=np.int32).astype(np.int64))
class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = Conv2dReparameterization(1, 20, 5, padding=2, posterior_rho_init=-5.0)
        self.conv2 = Conv2dReparameterization(20, 50, 5, padding=2, posterior_rho_init=-5.0)
        self.fc1 = LinearReparameterization(2450, 500, posterior_rho_init=-5.0)
        self.fc2 = LinearReparameterization(500, 10, posterior_rho_init=-5.0)
    def forward(self, x):
        kl = 0
        x, k = self.conv1(x); kl = kl + k
        x = F.max_pool2d(F.relu(x), 2)
        x, k = self.conv2(x); kl = kl + k
        x = F.max_pool2d(F.relu(x), 2).flatten(1)
        x, k = self.fc1(x); kl = kl + k
        x, k = self.fc2(F.relu(x)); kl = kl + k
        return x, kl
net = LeNet()
opt = torch.optim.Adam(net.parameters(), 2e-3)
for epoch in range(1):
    for i in range(0, len(x), 50):
        out, kl = net(x[i:i + 50])
        loss = F.cross_entropy(out, y[i:i + 50]) + kl / len(x)
        opt.zero_grad(); loss.backward(); opt.step()
torch.save(net.state_dict(), "${dir}/lenet.pt")
`,
        ],
        { stdio: 'inherit' },
      );
      const ckpt = join(dir, 'lenet.safetensors');
      const r = await run(
        'import',
        join(dir, 'lenet.pt'),
        '--arch',
        'lenet5',
        '--out',
        ckpt,
        '--json',
        '--no-native',
      );
      expect(r.code, r.err).toBe(0);
      const j = JSON.parse(r.out);
      expect(j.bayesianTorchLayers).toEqual(['conv1', 'conv2', 'fc1', 'fc2']);
      expect(j.quantizable).toBe(true);

      const q = join(dir, 'lenet-int8.safetensors');
      const qr = await run(
        'quantize',
        '--checkpoint',
        ckpt,
        '--mode',
        'ptq',
        '--calibration-size',
        '64',
        '--calibration-passes',
        '1',
        '--out',
        q,
        '--json',
        '--quiet',
      );
      expect(qr.code, qr.err).toBe(0);
      expect(JSON.parse(qr.out).layers.map((l: { weightBits: number }) => l.weightBits)).toEqual([
        8, 8, 8, 8,
      ]);

      // The int8 engine's predictive agrees with the imported float model's on held-out digits.
      const qm = await loadQuantized(q);
      const x = digits.test.images;
      const pInt = qm.predictProba(x, { samples: 8, seed: 1 });
      const { model } = await load(ckpt);
      setSamplingMode(model, 'mean');
      const logits = tf.tidy(() =>
        model
          .eval()
          .apply(tf.tensor(x, [64, 1, 28, 28]))
          .dataSync(),
      );
      let agree = 0;
      let correct = 0;
      for (let i = 0; i < 64; i++) {
        const argmax = (v: ArrayLike<number>, o: number) => {
          let b = 0;
          for (let c = 1; c < 10; c++) if (v[o + c] > v[o + b]) b = c;
          return b;
        };
        const a = argmax(pInt, i * 10);
        agree += a === argmax(logits, i * 10) ? 1 : 0;
        correct += a === digits.test.labels[i] ? 1 : 0;
      }
      // a model trained on 1,000 digits: the float mean and int8 samples pick the same class on
      // nearly every digit, and the int8 engine classifies most of them right
      expect(agree).toBeGreaterThanOrEqual(60);
      expect(correct).toBeGreaterThanOrEqual(40);
      model.dispose();
    });

    test('a file that does not fit the architecture: exit 1 naming the missing and unmatched keys', async () => {
      const r = await run(
        'import',
        join(dir, 'lenet.pt'),
        '--arch',
        'resnet18',
        '--out',
        join(dir, 'bad.safetensors'),
      );
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/missing from the file \(121\): bn1\.weight \[24\], .*, \.\.\. 105 more/);
      expect(r.err).toMatch(
        /in the file but not in the architecture \(14\): conv1\.mu_bias \[20\], conv1\.rho_bias \[20\], conv2\.mu_kernel \[50,20,5,5\]/,
      );
    });

    test('usage errors name what is missing', async () => {
      expect((await run('import')).code).toBe(2);
      const noArch = await run('import', join(dir, 'lenet.pt'), '--out', join(dir, 'x.safetensors'));
      expect(noArch.code).toBe(2);
      expect(noArch.err).toContain('--arch');
    });
  },
);
