"""Bayesian LeNet-5 (Gaussian, weight sampling) Monte Carlo inference in PyTorch, written the
plain way a PyTorch or Bayesian-Torch user would: fp32 with a Python loop over MC samples, and
int8 with torch's quantised ops (sample eps, quantised mul/add to form the weight, quantised
conv/linear), as Bayesian-Torch's quantised layers do. Run by `pnpm bench peers`; prints one
JSON document with the median milliseconds per call for each case.

usage: python3 torch_bnn.py '{"threads":1,"batches":[1,32],"samples":[1,20],"runs":7,"warmup":1,"impls":["fp32","int8"]}'
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
threads = int(cfg.get("threads", 1))
batches = cfg.get("batches", [1, 32, 256])
samples = cfg.get("samples", [1, 20])
runs = int(cfg.get("runs", 7))
warmup = int(cfg.get("warmup", 1))
impls = cfg.get("impls", ["fp32", "int8"])
torch.set_num_threads(threads)
torch.manual_seed(0)

# (kind, weight shape, padding) of LeNet-5 as the Ferianc study defines it.
LAYERS = [
    ("conv", (20, 1, 5, 5), 2),
    ("conv", (50, 20, 5, 5), 2),
    ("linear", (500, 2450), 0),
    ("linear", (10, 500), 0),
]


def make_params():
    params = []
    for kind, shape, pad in LAYERS:
        fan_in = 1
        for d in shape[1:]:
            fan_in *= d
        mu = torch.empty(shape).uniform_(-1, 1) / fan_in**0.5
        rho = torch.full(shape, -5.0)
        bias = torch.zeros(shape[0])
        params.append((kind, mu, rho, bias, pad))
    return params


PARAMS = make_params()


def fp32_forward(x, L):
    outs = []
    for _ in range(L):
        h = x
        for i, (kind, mu, rho, bias, pad) in enumerate(PARAMS):
            w = mu + F.softplus(rho) * torch.randn_like(mu)
            if kind == "conv":
                h = F.max_pool2d(F.relu(F.conv2d(h, w, bias, padding=pad)), 2)
            else:
                if h.dim() > 2:
                    h = h.flatten(1)
                h = F.linear(h, w, bias)
                if i < len(PARAMS) - 1:
                    h = F.relu(h)
        outs.append(F.softmax(h, dim=1))
    return torch.stack(outs)


def qparams(t, dtype):
    lo, hi = min(float(t.min()), 0.0), max(float(t.max()), 0.0)
    if dtype == torch.qint8:
        scale = max(abs(lo), abs(hi)) / 127 or 1e-8
        return scale, 0
    scale = (hi - lo) / 255 or 1e-8
    return scale, int(round(-lo / scale))


def quantize(t, dtype):
    s, z = qparams(t, dtype)
    return torch.quantize_per_tensor(t, s, z, dtype)


# Stored integers, as a converted Bayesian-Torch model holds them.
QPARAMS = []
for kind, mu, rho, bias, pad in PARAMS:
    sigma = F.softplus(rho)
    mu_q = quantize(mu, torch.qint8)
    sigma_q = quantize(sigma, torch.qint8)
    noise_scale, _ = qparams(3 * sigma, torch.qint8)
    w_scale, _ = qparams(mu.abs() + 3 * sigma, torch.qint8)
    QPARAMS.append((kind, mu_q, sigma_q, bias, pad, noise_scale, w_scale))
ACT_SCALE = 8.0 / 255


def int8_forward(xq, L):
    outs = []
    for _ in range(L):
        h = xq
        for i, (kind, mu_q, sigma_q, bias, pad, noise_scale, w_scale) in enumerate(QPARAMS):
            eps_q = torch.quantize_per_tensor(torch.randn(mu_q.shape), 3 / 127, 0, torch.qint8)
            # quantised mul/add on qint8 tensors (the Bayesian-Torch recipe): n = Q(eps*sigma), w = Q(mu + n)
            n_q = torch.ops.quantized.mul(eps_q, sigma_q, noise_scale, 0)
            w_q = torch.ops.quantized.add(mu_q, n_q, w_scale, 0)
            if kind == "conv":
                h = torch.ao.nn.quantized.functional.conv2d(h, w_q, bias, padding=pad, scale=ACT_SCALE, zero_point=0)
                h = torch.ao.nn.quantized.functional.max_pool2d(torch.nn.functional.relu(h), 2)
            else:
                if h.dim() > 2:
                    h = h.flatten(1)
                h = torch.ao.nn.quantized.functional.linear(h, w_q, bias, scale=ACT_SCALE, zero_point=0)
                if i < len(QPARAMS) - 1:
                    h = torch.nn.functional.relu(h)
        outs.append(F.softmax(h.dequantize(), dim=1))
    return torch.stack(outs)


def timed(fn):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "runs": runs}


results = []
engine = None
if "onednn" in torch.backends.quantized.supported_engines:
    torch.backends.quantized.engine = "onednn"
    engine = "onednn"
with torch.no_grad():
    for b in batches:
        x = torch.rand(b, 1, 28, 28)
        xq = torch.quantize_per_tensor(x, 1 / 255, 0, torch.quint8)
        for L in samples:
            if "fp32" in impls:
                results.append({"impl": "torch-fp32", "batch": b, "samples": L, **timed(lambda: fp32_forward(x, L))})
            if engine and "int8" in impls:
                results.append({"impl": f"torch-int8-{engine}", "batch": b, "samples": L, **timed(lambda: int8_forward(xq, L))})

print(json.dumps({"torch": torch.__version__, "engine": engine, "threads": threads, "results": results}))
