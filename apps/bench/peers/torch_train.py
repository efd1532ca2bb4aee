"""Training steps of Bayesian networks in PyTorch, written the way Bayesian-Torch trains
(its Conv2dReparameterization / LinearReparameterization layers): every forward samples each
weight, w = mu + softplus(rho) * eps, and computes the closed-form KL to the N(0, 1) prior; the
loss is NLL + KL / N; Adam. MC Dropout: a deterministic network with dropout (p = 0.2) before
every layer but the first, as qbnn's dnnToBnn places it, and Gal's L2 form of the KL (the keep
probability times the squared weights, plus the squared biases, over 2), as qbnn's loss has.

Run by `pnpm bench train` as a long-lived peer: it reads one JSON case a line on stdin and answers
each with one JSON line of the step times (ms), so the bench interleaves PyTorch and qbnn rounds
without paying Python's start-up each time. 1-thread cases are timed in process CPU time.

usage: echo '{"model":"lenet5","posterior":"gaussian","batch":64,"threads":1,"steps":10,"warmup":3,"cpuClock":true}' | python3 torch_train.py
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

DATASET_SIZE = 60000
torch.manual_seed(0)


class Reparameterization(torch.nn.Module):
    """Bayesian-Torch's reparameterisation layer: mu, rho of weight and bias, prior N(0, 1)."""

    def __init__(self, shape, kind, padding=0):
        super().__init__()
        fan_in = 1
        for d in shape[1:]:
            fan_in *= d
        self.kind, self.padding = kind, padding
        self.mu = torch.nn.Parameter(torch.empty(shape).uniform_(-1, 1) / fan_in**0.5)
        self.rho = torch.nn.Parameter(torch.full(shape, -5.0))
        self.bias_mu = torch.nn.Parameter(torch.zeros(shape[0]))
        self.bias_rho = torch.nn.Parameter(torch.full((shape[0],), -5.0))

    @staticmethod
    def kl(mu, sigma):
        return (torch.log(1.0 / sigma) + (sigma**2 + mu**2) / 2 - 0.5).sum()

    def forward(self, x):
        sigma, bsigma = F.softplus(self.rho), F.softplus(self.bias_rho)
        w = self.mu + sigma * torch.randn_like(sigma)
        b = self.bias_mu + bsigma * torch.randn_like(bsigma)
        out = F.conv2d(x, w, b, padding=self.padding) if self.kind == "conv" else F.linear(x, w, b)
        return out, self.kl(self.mu, sigma) + self.kl(self.bias_mu, bsigma)


class Dense(torch.nn.Module):
    def __init__(self, shape, kind, padding=0, p=0.0):
        super().__init__()
        layer = torch.nn.Conv2d(shape[1], shape[0], shape[2], padding=padding) if kind == "conv" else torch.nn.Linear(shape[1], shape[0])
        self.layer, self.p = layer, p

    def forward(self, x):
        out = self.layer(F.dropout(x, self.p, training=True) if self.p > 0 else x)
        # Gal's KL approximation to the N(0, 1) prior, as qbnn's mcdropout posterior computes it
        # (an L2 term with the weights scaled by the keep probability).
        keep = 1.0 - self.p
        return out, (keep * self.layer.weight.pow(2)).sum() / 2 + self.layer.bias.pow(2).sum() / 2


LENET5 = [("conv", (20, 1, 5, 5), 2), ("conv", (50, 20, 5, 5), 2), ("linear", (500, 2450), 0), ("linear", (10, 500), 0)]
MLP = [("linear", (100, 13), 0), ("linear", (100, 100), 0), ("linear", (100, 100), 0), ("linear", (2, 100), 0)]


class Net(torch.nn.Module):
    def __init__(self, model, posterior):
        super().__init__()
        spec = LENET5 if model == "lenet5" else MLP
        if posterior == "gaussian":
            layers = [Reparameterization(s, k, p) for k, s, p in spec]
        else:
            layers = [Dense(s, k, p, 0.0 if i == 0 else 0.2) for i, (k, s, p) in enumerate(spec)]
        self.layers = torch.nn.ModuleList(layers)
        self.model = model

    def forward(self, x):
        kl = torch.zeros(())
        for i, layer in enumerate(self.layers):
            if self.model == "lenet5" and i == 2:
                x = x.flatten(1)
            x, k = layer(x)
            kl = kl + k
            if i < len(self.layers) - 1:
                x = F.relu(x)
                if self.model == "lenet5" and i < 2:
                    x = F.max_pool2d(x, 2)
        return x, kl


def nll(model, out, y):
    if model == "lenet5":
        return F.cross_entropy(out, y)
    mean, log_var = out[:, 0], out[:, 1]
    return (0.5 * (log_var + (y - mean) ** 2 / log_var.exp())).mean()


def run(case):
    """Step times (ms) of `steps` training steps after `warmup`, on a fresh network."""
    model, posterior, batch = case["model"], case["posterior"], int(case["batch"])
    torch.set_num_threads(int(case["threads"]))
    # process CPU time for 1-thread runs (a shared machine's wall clock measures other jobs)
    clock = time.process_time if case.get("cpuClock") else time.perf_counter
    net = Net(model, posterior)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    if model == "lenet5":
        x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    else:
        x, y = torch.rand(batch, 13), torch.randn(batch)
    times = []
    for i in range(int(case["warmup"]) + int(case["steps"])):
        t0 = clock()
        opt.zero_grad()
        out, kl = net(x)
        loss = nll(model, out, y) + kl / DATASET_SIZE
        loss.backward()
        opt.step()
        if i >= int(case["warmup"]):
            times.append((clock() - t0) * 1e3)
    return times


for line in sys.stdin:
    if line.strip():
        case = json.loads(line)
        print(json.dumps({"torch": torch.__version__, "times_ms": run(case)}), flush=True)
