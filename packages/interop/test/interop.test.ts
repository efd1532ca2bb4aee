import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@qbnn/core';
import type { Module } from '@qbnn/nn';
import { load } from '@qbnn/nn/node';
import { bayesLayers, type SamplingMode, setSamplingMode } from '@qbnn/posteriors';
import { quantize } from '@qbnn/qat';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { importTorch, StateDictMismatchError } from '../src/index.js';
import { exportTorch, saveImported } from '../src/node.js';
import { expectEngineMatchesReference } from './int8.js';
import { haveTorch, python } from './python.js';
import { maxZ, moments } from './stats.js';

const dir = mkdtempSync(join(tmpdir(), 'qbnn-interop-'));
const here = new URL('.', import.meta.url).pathname;
const bytesOf = (name: string) => new Uint8Array(readFileSync(join(dir, name)));
const jsonOf = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8'));

/**
 * S draws of `model`'s outputs on x in `mode`, each a flat vector. In `local` mode every row gets
 * an independent sample, so the S copies of x run as one batch.
 */
function draws(model: Module, x: tf.Tensor, mode: SamplingMode, s: number): Float32Array[] {
  setSamplingMode(model, mode);
  model.eval();
  if (mode !== 'local') {
    return Array.from({ length: s }, () => tf.tidy(() => model.apply(x)).dataSync() as Float32Array);
  }
  const y = tf.tidy(() => model.apply(tf.concat(Array.from({ length: s }, () => x))));
  const all = y.dataSync() as Float32Array;
  y.dispose();
  const per = all.length / s;
  return Array.from({ length: s }, (_, i) => all.subarray(i * per, (i + 1) * per));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const PRELUDE = `
import sys, json
sys.path.insert(0, ${JSON.stringify(here)})
from bayesian_torch_like import *
OUT = ${JSON.stringify(dir)}
def dump(name, obj):
    with open(f"{OUT}/{name}", "w") as fh:
        json.dump(obj, fh)
def flat(t):
    return t.detach().reshape(-1).tolist()
class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = Conv2dReparameterization(1, 20, 5, padding=2, posterior_rho_init=-1.0)
        self.conv2 = Conv2dReparameterization(20, 50, 5, padding=2, posterior_rho_init=-1.0)
        self.fc1 = LinearReparameterization(2450, 500, posterior_rho_init=-1.0)
        self.fc2 = LinearReparameterization(500, 10, posterior_rho_init=-1.0)
    def forward(self, x):
        kl = 0
        x, k = self.conv1(x); kl = kl + k
        x = F.max_pool2d(F.relu(x), 2)
        x, k = self.conv2(x); kl = kl + k
        x = F.max_pool2d(F.relu(x), 2).flatten(1)
        x, k = self.fc1(x); kl = kl + k
        x, k = self.fc2(F.relu(x)); kl = kl + k
        return x, kl
class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = LSTMReparameterization(1, 12, posterior_rho_init=-2.0)
        self.fc = LinearReparameterization(12, 1, posterior_rho_init=-2.0)
    def forward(self, x):
        seq, _, kl = self.lstm(x)
        y, kl2 = self.fc(seq[:, -1, :])
        return y, kl + kl2
`;

describe.runIf(haveTorch())('Bayesian-Torch and PyTorch models into qbnn', () => {
  beforeAll(async () => {
    await initBackend({ log: () => {} });
    python(`${PRELUDE}
torch.manual_seed(0)
net = LeNet()
# a few ELBO steps (cross-entropy + KL / N) on synthetic digits, as a training script does
xs, ys = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
opt = torch.optim.Adam(net.parameters(), 1e-3)
for step in range(4):
    out, kl = net(xs[(step % 2) * 32:(step % 2 + 1) * 32])
    loss = F.cross_entropy(out, ys[(step % 2) * 32:(step % 2 + 1) * 32]) + kl / 60000
    opt.zero_grad(); loss.backward(); opt.step()
torch.save(net.state_dict(), f"{OUT}/lenet.pt")
x = torch.randn(3, 1, 28, 28)
with torch.no_grad():
    MEAN_MODE["on"] = True
    mean = net(x)[0]
    MEAN_MODE["on"] = False
    samples = [flat(net(x)[0]) for _ in range(60)]
dump("lenet.json", {"x": flat(x), "mean": flat(mean), "samples": samples,
                    "sigma_conv1": flat(softplus(net.conv1.rho_kernel)[:2])})

# flipout MLP
torch.manual_seed(1)
class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = LinearFlipout(6, 16, posterior_rho_init=-1.5)
        self.fc2 = LinearFlipout(16, 3, posterior_rho_init=-1.5)
    def forward(self, x):
        h, _ = self.fc1(x)
        return self.fc2(torch.tanh(h))[0]
mlp = Mlp()
torch.save(mlp.state_dict(), f"{OUT}/mlp.pt")
x = torch.randn(4, 6)
with torch.no_grad():
    samples = [flat(mlp(x)) for _ in range(2000)]
dump("mlp.json", {"x": flat(x), "samples": samples})

# a plain PyTorch CNN with batch norm, in a training checkpoint
torch.manual_seed(2)
plain = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 5))
plain.train()
for _ in range(3):
    plain(torch.randn(8, 2, 6, 6))
plain.eval()
torch.save({"epoch": 3, "model_state_dict": plain.state_dict()}, f"{OUT}/plain.pt")
x = torch.randn(3, 2, 6, 6)
with torch.no_grad():
    dump("plain.json", {"x": flat(x), "y": flat(plain(x))})

# plain layers with torch layouts: Conv1d, BatchNorm1d, ConvTranspose1d; ConvTranspose2d; ConvTranspose3d
torch.manual_seed(4)
seq1 = nn.Sequential(nn.Conv1d(2, 4, 3, stride=2, padding=1, groups=2), nn.BatchNorm1d(4), nn.Tanh(),
                     nn.ConvTranspose1d(4, 3, 4, stride=3, padding=1, output_padding=2))
seq1.train()
for _ in range(2):
    seq1(torch.randn(5, 2, 11))
seq1.eval()
torch.save(seq1.state_dict(), f"{OUT}/seq1d.pt")
x = torch.randn(3, 2, 11)
with torch.no_grad():
    dump("seq1d.json", {"x": flat(x), "y": flat(seq1(x)), "shape": list(seq1(x).shape)})
up = nn.Sequential(nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=(1, 0), output_padding=(1, 0), dilation=(1, 2), groups=2), nn.ReLU(),
                   nn.ConvTranspose2d(6, 1, 3, padding=1))
torch.save(up.state_dict(), f"{OUT}/up2d.pt")
x = torch.randn(2, 4, 5, 4)
with torch.no_grad():
    dump("up2d.json", {"x": flat(x), "y": flat(up(x)), "shape": list(up(x).shape)})
up3 = nn.Sequential(nn.ConvTranspose3d(2, 4, (2, 3, 2), stride=(2, 1, 2), padding=(1, 1, 0), output_padding=(1, 0, 1), dilation=(1, 1, 2), groups=2))
torch.save(up3.state_dict(), f"{OUT}/up3d.pt")
x = torch.randn(2, 2, 3, 4, 3)
with torch.no_grad():
    dump("up3d.json", {"x": flat(x), "y": flat(up3(x)), "shape": list(up3(x).shape)})

# a small Bayesian LSTM regressor: next value of a noisy sine from 8 past values
torch.manual_seed(3)
reg = Regressor()
t = torch.arange(200, dtype=torch.float32) * 0.3
series = torch.sin(t) + 0.05 * torch.randn(200)
xs = torch.stack([series[i:i + 8] for i in range(180)]).unsqueeze(-1)
ys = series[8:188].unsqueeze(-1)
opt = torch.optim.Adam(reg.parameters(), 1e-2)
for step in range(30):
    pred, kl = reg(xs)
    loss = F.mse_loss(pred, ys) + kl / 180 / 100
    opt.zero_grad(); loss.backward(); opt.step()
torch.save(reg.state_dict(), f"{OUT}/lstm.pt")
x = xs[:4]
with torch.no_grad():
    MEAN_MODE["on"] = True
    mean = reg(x)[0]
    MEAN_MODE["on"] = False
    samples = [flat(reg(x)[0]) for _ in range(400)]
dump("lstm.json", {"x": flat(x), "mean": flat(mean), "samples": samples, "mse": F.mse_loss(mean, ys[:4]).item()})
`);
  });

  it('LeNet-5 (Reparameterization): mean-mode logits within 1e-4, sigma = log1p(exp(rho))', () => {
    const ref = jsonOf('lenet.json');
    const { model, bayesianTorchLayers } = importTorch(bytesOf('lenet.pt'), 'lenet5', { mode: 'mean' });
    expect(bayesianTorchLayers).toEqual(['conv1', 'conv2', 'fc1', 'fc2']);
    const x = tf.tensor(ref.x, [3, 1, 28, 28]);
    const y = tf.tidy(() => model.eval().apply(x)).dataSync();
    expect(maxAbsDiff(y, ref.mean)).toBeLessThan(1e-4);
    const [, conv1] = bayesLayers(model)[0];
    const sigma = tf.tidy(() =>
      tf.softplus(conv1.param('weight_rho')).dataSync().slice(0, ref.sigma_conv1.length),
    );
    expect(maxAbsDiff(sigma, ref.sigma_conv1)).toBeLessThan(1e-6);
    model.dispose();
  });

  it('LeNet-5 sampled outputs have the moments of the torch samples (within standard errors)', () => {
    const ref = jsonOf('lenet.json');
    const { model } = importTorch(bytesOf('lenet.pt'), 'lenet5');
    model.seedAll(7);
    const x = tf.tensor(ref.x, [3, 1, 28, 28]);
    // local reparameterisation gives each example the same marginal as one weight sample
    const ours = moments(draws(model, x, 'local', 120));
    const z = maxZ(ours, moments(ref.samples));
    expect(z.mean).toBeLessThan(4.5);
    expect(z.variance).toBeLessThan(4.5);
    model.dispose();
  });

  it('LeNet-5 end to end: one import, int8 PTQ, the integer engine agrees with the float64 reference and with torch', async () => {
    const ref = jsonOf('lenet.json');
    const { model } = importTorch(bytesOf('lenet.pt'), 'lenet5');
    const x = tf.tensor(ref.x, [3, 1, 28, 28]);
    // calibration on inputs of the same distribution as the test inputs (torch.randn)
    const calib = tf.randomNormal([16, 1, 28, 28], 0, 1, 'float32', 11);
    const qm = await quantize(model, { mode: 'ptq', data: calib, inputShape: [1, 28, 28] });
    expect(qm.layers.map((l) => [l.path, l.op, l.weights.kind])).toEqual([
      ['conv1', 'conv2d', 'gaussian'],
      ['conv2', 'conv2d', 'gaussian'],
      ['fc1', 'linear', 'gaussian'],
      ['fc2', 'linear', 'gaussian'],
    ]);
    const xs = x.dataSync() as Float32Array;
    expectEngineMatchesReference(qm, xs, { samples: 2, seed: 3 });
    // the int8 samples have the torch samples' moments (within standard errors: at 8 bits the
    // quantisation error is small beside the posterior's spread)
    const L = 30;
    const logits = qm.forward(xs, { samples: L, seed: 4 }).logits;
    const per = logits.length / L;
    const ours = Array.from({ length: L }, (_, l) => logits.subarray(l * per, (l + 1) * per));
    const z = maxZ(moments(ours), moments(ref.samples));
    expect(z.mean).toBeLessThan(4.5);
    expect(z.variance).toBeLessThan(4.5);
    calib.dispose();
    x.dispose();
    model.dispose();
  });

  it('Flipout layers: qbnn flipout samples have the torch moments', () => {
    const ref = jsonOf('mlp.json');
    const arch = {
      layers: [
        { name: 'fc1', type: 'Linear', in_features: 6, out_features: 16 },
        { name: 'act', type: 'Tanh' },
        { name: 'fc2', type: 'Linear', in_features: 16, out_features: 3 },
      ],
    } as never;
    const { model } = importTorch(bytesOf('mlp.pt'), arch, { mode: 'flipout' });
    model.seedAll(3);
    const x = tf.tensor(ref.x, [4, 6]);
    const z = maxZ(moments(draws(model, x, 'flipout', 2000)), moments(ref.samples));
    expect(z.mean).toBeLessThan(4.5);
    expect(z.variance).toBeLessThan(4.5);
    model.dispose();
  });

  it('an LSTM regressor (LSTMReparameterization): mean within 1e-4, per-step weight samples with the torch moments', () => {
    const ref = jsonOf('lstm.json');
    const arch = {
      layers: [
        { name: 'lstm', type: 'LSTM', input_size: 1, hidden_size: 12, batch_first: true, output: 'last' },
        { name: 'fc', type: 'Linear', in_features: 12, out_features: 1 },
      ],
    } as never;
    const { model, bayesianTorchLayers } = importTorch(bytesOf('lstm.pt'), arch, { mode: 'mean' });
    expect(bayesianTorchLayers).toEqual(['lstm', 'fc']);
    const x = tf.tensor(ref.x, [4, 8, 1]);
    expect(maxAbsDiff(tf.tidy(() => model.eval().apply(x)).dataSync(), ref.mean)).toBeLessThan(1e-4);
    model.seedAll(5);
    const z = maxZ(moments(draws(model, x, 'weights', 400)), moments(ref.samples));
    expect(z.mean).toBeLessThan(4.5);
    expect(z.variance).toBeLessThan(4.5);
    model.dispose();
  });

  it('LSTM regressor end to end: one import, int8 PTQ, the integer engine agrees with the float64 reference and with torch', async () => {
    const ref = jsonOf('lstm.json');
    const arch = {
      layers: [
        { name: 'lstm', type: 'LSTM', input_size: 1, hidden_size: 12, batch_first: true, output: 'last' },
        { name: 'fc', type: 'Linear', in_features: 12, out_features: 1 },
      ],
    } as never;
    const { model } = importTorch(bytesOf('lstm.pt'), arch);
    // calibration windows of the series the regressor was trained on (a sine with noise)
    const noise = new Float32Array(tf.randomNormal([300], 0, 0.05, 'float32', 2).dataSync());
    const series = Array.from({ length: 300 }, (_, i) => Math.sin(i * 0.3) + noise[i]);
    const windows = Array.from({ length: 64 }, (_, w) => series.slice(3 * w, 3 * w + 8));
    const calib = tf.tensor(windows.flat(), [64, 8, 1]);
    const qm = await quantize(model, { mode: 'ptq', data: calib });
    expect(qm.ops.map((o) => o.op)).toEqual(['quantize', 'lstm', 'layer']);
    expect(qm.layers.map((l) => [l.path, l.weights.kind])).toEqual([
      ['lstm.ih', 'gaussian'],
      ['lstm.hh', 'gaussian'],
      ['fc', 'gaussian'],
    ]);
    const xs = Float32Array.from(ref.x);
    expectEngineMatchesReference(qm, xs, { samples: 3, seed: 3 });
    // the int8 samples have the torch samples' moments (within standard errors)
    const L = 300;
    const logits = qm.forward(xs, { samples: L, seed: 4 }).logits;
    const ours = Array.from({ length: L }, (_, l) => logits.subarray(l * 4, (l + 1) * 4));
    const z = maxZ(moments(ours), moments(ref.samples));
    expect(z.mean).toBeLessThan(4.5);
    expect(z.variance).toBeLessThan(4.5);
    calib.dispose();
    model.dispose();
  });

  it('a plain PyTorch model (nested in a checkpoint) imports deterministic, then MOPED keeps the mean', () => {
    const ref = jsonOf('plain.json');
    const arch = {
      layers: [
        { type: 'Conv2d', in_channels: 2, out_channels: 4, kernel_size: 3, padding: 1 },
        { type: 'BatchNorm2d', num_features: 4 },
        { type: 'ReLU' },
        { type: 'Flatten' },
        { type: 'Linear', in_features: 144, out_features: 5 },
      ],
    } as const;
    const x = tf.tensor(ref.x, [3, 2, 6, 6]);
    const det = importTorch(bytesOf('plain.pt'), arch as never);
    expect(bayesLayers(det.model)).toHaveLength(0);
    expect(maxAbsDiff(tf.tidy(() => det.model.eval().apply(x)).dataSync(), ref.y)).toBeLessThan(1e-4);
    const bnn = importTorch(bytesOf('plain.pt'), arch as never, {
      posterior: 'gaussian',
      mode: 'mean',
      moped_delta: 0.05,
    });
    expect(bnn.convertedLayers).toEqual(['0', '4']);
    expect(maxAbsDiff(tf.tidy(() => bnn.model.eval().apply(x)).dataSync(), ref.y)).toBeLessThan(1e-4);
    det.model.dispose();
    bnn.model.dispose();
  });

  it('Conv1d, BatchNorm1d, ConvTranspose1d/2d/3d: torch layouts, outputs within 1e-4', () => {
    const seq = jsonOf('seq1d.json');
    const a = importTorch(bytesOf('seq1d.pt'), {
      layers: [
        { type: 'Conv1d', in_channels: 2, out_channels: 4, kernel_size: 3, stride: 2, padding: 1, groups: 2 },
        { type: 'BatchNorm1d', num_features: 4 },
        { type: 'Tanh' },
        {
          type: 'ConvTranspose1d',
          in_channels: 4,
          out_channels: 3,
          kernel_size: 4,
          stride: 3,
          padding: 1,
          output_padding: 2,
        },
      ],
    } as never);
    const ya = tf.tidy(() => a.model.eval().apply(tf.tensor(seq.x, [3, 2, 11])));
    expect(ya.shape).toEqual(seq.shape);
    expect(maxAbsDiff(ya.dataSync(), seq.y)).toBeLessThan(1e-4);
    const up = jsonOf('up2d.json');
    const b = importTorch(bytesOf('up2d.pt'), {
      layers: [
        {
          type: 'ConvTranspose2d',
          in_channels: 4,
          out_channels: 6,
          kernel_size: [3, 2],
          stride: 2,
          padding: [1, 0],
          output_padding: [1, 0],
          dilation: [1, 2],
          groups: 2,
        },
        { type: 'ReLU' },
        { type: 'ConvTranspose2d', in_channels: 6, out_channels: 1, kernel_size: 3, padding: 1 },
      ],
    } as never);
    const yb = tf.tidy(() => b.model.eval().apply(tf.tensor(up.x, [2, 4, 5, 4])));
    expect(yb.shape).toEqual(up.shape);
    expect(maxAbsDiff(yb.dataSync(), up.y)).toBeLessThan(1e-4);
    const up3 = jsonOf('up3d.json');
    const c = importTorch(bytesOf('up3d.pt'), {
      layers: [
        {
          type: 'ConvTranspose3d',
          in_channels: 2,
          out_channels: 4,
          kernel_size: [2, 3, 2],
          stride: [2, 1, 2],
          padding: [1, 1, 0],
          output_padding: [1, 0, 1],
          dilation: [1, 1, 2],
          groups: 2,
        },
      ],
    } as never);
    const yc = tf.tidy(() => c.model.eval().apply(tf.tensor(up3.x, [2, 2, 3, 4, 3])));
    expect(yc.shape).toEqual(up3.shape);
    expect(maxAbsDiff(yc.dataSync(), up3.y)).toBeLessThan(1e-4);
    a.model.dispose();
    b.model.dispose();
    c.model.dispose();
  });

  it('lists missing and unmatched keys with their shapes', () => {
    const arch = { zoo: 'lenet5', config: { numClasses: 7 } };
    let err: unknown;
    try {
      importTorch(bytesOf('lenet.pt'), arch);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDictMismatchError);
    const m = err as StateDictMismatchError;
    expect(m.shapeMismatches.map((s) => s.key)).toEqual([
      'fc2.mu_weight',
      'fc2.rho_weight',
      'fc2.mu_bias',
      'fc2.rho_bias',
    ]);
    expect(m.message).toContain('fc2.mu_weight file [10,500] vs expected [7,500]');
    let err2: unknown;
    try {
      importTorch(bytesOf('plain.pt'), 'lenet5');
    } catch (e) {
      err2 = e;
    }
    const m2 = err2 as StateDictMismatchError;
    expect(m2.missing.map((k) => k.key)).toContain('conv1.weight');
    expect(m2.unmatched).toContainEqual({ key: '1.running_var', shape: [4] });
  });

  it('round trip: the checkpoint reloads with nn.load, the export loads into torch with the same outputs', async () => {
    const ref = jsonOf('lenet.json');
    const imported = importTorch(bytesOf('lenet.pt'), 'lenet5', { mode: 'mean' });
    await saveImported(imported, join(dir, 'lenet.safetensors'));
    const { model } = await load(join(dir, 'lenet.safetensors'));
    const x = tf.tensor(ref.x, [3, 1, 28, 28]);
    expect(maxAbsDiff(tf.tidy(() => model.eval().apply(x)).dataSync(), ref.mean)).toBeLessThan(1e-4);
    await exportTorch(model, join(dir, 'lenet-export.safetensors'));
    const lstm = importTorch(bytesOf('lstm.pt'), {
      layers: [
        { name: 'lstm', type: 'LSTM', input_size: 1, hidden_size: 12, batch_first: true, output: 'last' },
        { name: 'fc', type: 'Linear', in_features: 12, out_features: 1 },
      ],
    });
    await exportTorch(lstm.model, join(dir, 'lstm-export.safetensors'));
    // torch loads the exports strictly into fresh modules and reproduces the mean-mode outputs
    const out = python(`${PRELUDE}
MEAN_MODE["on"] = True
for name, net, shape in [("lenet", LeNet(), [3, 1, 28, 28]), ("lstm", Regressor(), [4, 8, 1])]:
    net.load_state_dict(read_safetensors(f"{OUT}/{name}-export.safetensors"), strict=True)
    x = torch.tensor(json.load(open(f"{OUT}/{name}.json"))["x"]).reshape(shape)
    ref = torch.tensor(json.load(open(f"{OUT}/{name}.json"))["mean"])
    with torch.no_grad():
        print((net(x)[0].reshape(-1) - ref).abs().max().item())
`);
    expect(out.trim().split('\n').map(Number)).toEqual([0, 0]);
    lstm.model.dispose();
    imported.model.dispose();
    model.dispose();
  });
});
