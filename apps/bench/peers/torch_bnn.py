"""Bayesian LeNet-5 (Gaussian, weight sampling) Monte Carlo inference in PyTorch, written the
plain way a PyTorch or Bayesian-Torch user would: fp32 with a Python loop over MC samples, and
int8 with torch's quantised ops (sample eps, quantised mul/add to form the weight, quantised
conv/linear), as Bayesian-Torch's quantised layers do. Run by `pnpm bench peers`; prints one
JSON document with the median milliseconds per call for each case.

usage: python3 torch_bnn.py '{"model":"lenet5","threads":1,"batches":[1,32],"samples":[1,20],"runs":7,"warmup":1,"impls":["fp32","int8"]}'

model "resnet18": the ResNet-18 of the Ferianc study (widths 24-48-96-192, two basic blocks a
stage, 3x32x32 input) as a converted int8 model holds it: batch norm folded into each conv's
weights and bias, every conv (stem, 3x3, 1x1 shortcuts) and the fc Bayesian, residual adds as
quantised add (add_relu after the block), global average pooling, the same weight sampling.
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

model = cfg.get("model", "lenet5")
# cpuClock: process CPU time (one thread on a shared machine), else wall clock
clock = time.process_time if cfg.get("cpuClock") else time.perf_counter

# (kind, weight shape, padding) of LeNet-5 as the Ferianc study defines it.
LENET5 = [
    ("conv", (20, 1, 5, 5), 2),
    ("conv", (50, 20, 5, 5), 2),
    ("linear", (500, 2450), 0),
    ("linear", (10, 500), 0),
]


def resnet18_layers(widths=(24, 48, 96, 192), blocks=2, classes=10):
    """(kind, weight shape, padding, stride) of every Bayesian layer, in execution order: stem,
    then per basic block conv a, conv b and (when the shape changes) the 1x1 shortcut; fc."""
    layers = [("conv", (widths[0], 3, 3, 3), 1, 1)]
    c = widths[0]
    for s, w in enumerate(widths):
        for i in range(blocks):
            stride = 2 if i == 0 and s > 0 else 1
            layers.append(("conv", (w, c, 3, 3), 1, stride))
            layers.append(("conv", (w, w, 3, 3), 1, 1))
            if stride != 1 or c != w:
                layers.append(("shortcut", (w, c, 1, 1), 0, stride))
            c = w
    layers.append(("linear", (classes, c), 0, 1))
    return layers


LAYERS = [(k, shape, pad, 1) for k, shape, pad in LENET5] if model == "lenet5" else resnet18_layers()


def make_params():
    params = []
    for kind, shape, pad, _ in LAYERS:
        fan_in = 1
        for d in shape[1:]:
            fan_in *= d
        mu = torch.empty(shape).uniform_(-1, 1) / fan_in**0.5
        rho = torch.full(shape, -5.0)
        # folded batch norm leaves a bias on every conv
        bias = torch.zeros(shape[0]) if model == "lenet5" else torch.empty(shape[0]).uniform_(-0.1, 0.1)
        params.append((kind, mu, rho, bias, pad))
    return params


PARAMS = make_params()


STRIDES = [st for _, _, _, st in LAYERS]


def resnet18_forward(x, weights, conv, relu, add_relu, pool, linear):
    """One ResNet-18 forward given each layer's (sampled) weights and the ops of one precision."""
    w = iter(zip(weights, STRIDES, PARAMS))
    wt, st, (_, _, _, bias, pad) = next(w)
    h = relu(conv(x, wt, bias, st, pad))
    i = 1
    while i < len(LAYERS) - 1:
        (wa, sa, (_, _, _, ba, pa)) = next(w)
        (wb, sb, (_, _, _, bb, pb)) = next(w)
        i += 2
        out = conv(relu(conv(h, wa, ba, sa, pa)), wb, bb, sb, pb)
        if i < len(LAYERS) - 1 and LAYERS[i][0] == "shortcut":
            (ws, ss, (_, _, _, bs, ps)) = next(w)
            i += 1
            h = conv(h, ws, bs, ss, ps)
        h = add_relu(out, h)
    (wf, _, (_, _, _, bf, _)) = next(w)
    return linear(pool(h), wf, bf)


def fp32_forward(x, L):
    if model == "resnet18":
        outs = []
        for _ in range(L):
            ws = [mu + F.softplus(rho) * torch.randn_like(mu) for _, mu, rho, _, _ in PARAMS]
            h = resnet18_forward(
                x,
                ws,
                lambda h, w, b, st, pad: F.conv2d(h, w, b, stride=st, padding=pad),
                F.relu,
                lambda a, b: F.relu(a + b),
                lambda h: F.adaptive_avg_pool2d(h, 1).flatten(1),
                F.linear,
            )
            outs.append(F.softmax(h, dim=1))
        return torch.stack(outs)
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


def sample_q(mu_q, sigma_q, noise_scale, w_scale):
    eps_q = torch.quantize_per_tensor(torch.randn(mu_q.shape), 3 / 127, 0, torch.qint8)
    n_q = torch.ops.quantized.mul(eps_q, sigma_q, noise_scale, 0)
    return torch.ops.quantized.add(mu_q, n_q, w_scale, 0)


def int8_forward(xq, L):
    if model == "resnet18":
        qf = torch.ao.nn.quantized.functional
        outs = []
        for _ in range(L):
            ws = [sample_q(mu_q, sigma_q, ns, wsc) for _, mu_q, sigma_q, _, _, ns, wsc in QPARAMS]
            h = resnet18_forward(
                xq,
                ws,
                lambda h, w, b, st, pad: qf.conv2d(h, w, b, stride=st, padding=pad, scale=ACT_SCALE, zero_point=0),
                torch.nn.functional.relu,
                lambda a, b: torch.ops.quantized.add_relu(a, b, ACT_SCALE, 0),
                lambda h: torch.flatten(qf.adaptive_avg_pool2d(h, 1), 1),
                lambda h, w, b: qf.linear(h, w, b, scale=ACT_SCALE, zero_point=0),
            )
            outs.append(F.softmax(h.dequantize(), dim=1))
        return torch.stack(outs)
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
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "runs": runs}


results = []
engine = None
if "onednn" in torch.backends.quantized.supported_engines:
    torch.backends.quantized.engine = "onednn"
    engine = "onednn"
with torch.no_grad():
    for b in batches:
        x = torch.rand(b, 1, 28, 28) if model == "lenet5" else torch.rand(b, 3, 32, 32)
        xq = torch.quantize_per_tensor(x, 1 / 255, 0, torch.quint8)
        for L in samples:
            if "fp32" in impls:
                results.append({"impl": "torch-fp32", "batch": b, "samples": L, **timed(lambda: fp32_forward(x, L))})
            if engine and "int8" in impls:
                results.append({"impl": f"torch-int8-{engine}", "batch": b, "samples": L, **timed(lambda: int8_forward(xq, L))})

print(json.dumps({"torch": torch.__version__, "engine": engine, "threads": threads, "model": model, "results": results}))
