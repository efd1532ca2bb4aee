"""Small modules with Bayesian-Torch's parameter names, buffers and forward semantics.

Bayesian-Torch itself is not installable here, so the interop tests write their models with
these: LinearReparameterization / Conv2dReparameterization (one weight sample per forward),
their Flipout variants (mean output plus a sign-flipped perturbation), LSTMReparameterization
(two LinearReparameterization gates `ih` and `hh`, fresh weights at every time step) and the
helpers the tests need (mean mode, a safetensors reader). Parameter names: mu_weight /
rho_weight (linear), mu_kernel / rho_kernel (convolutions), mu_bias / rho_bias; the eps and
prior buffers are not persistent, as in Bayesian-Torch, so they are not in the state dict.
"""
import json
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN_MODE = {"on": False}


def softplus(rho):
    return torch.log1p(torch.exp(rho))


class _Variational(nn.Module):
    def _init(self, shape, bias_shape, kind, prior_mean, prior_variance, mu_init, rho_init):
        self._kind = kind
        setattr(self, f"mu_{kind}", nn.Parameter(torch.empty(shape).normal_(mu_init, 0.1)))
        setattr(self, f"rho_{kind}", nn.Parameter(torch.empty(shape).normal_(rho_init, 0.1)))
        self.register_buffer(f"eps_{kind}", torch.empty(shape), persistent=False)
        self.register_buffer("prior_weight_mu", torch.full(shape, float(prior_mean)), persistent=False)
        self.register_buffer("prior_weight_sigma", torch.full(shape, float(prior_variance)), persistent=False)
        if bias_shape is not None:
            self.mu_bias = nn.Parameter(torch.empty(bias_shape).normal_(mu_init, 0.1))
            self.rho_bias = nn.Parameter(torch.empty(bias_shape).normal_(rho_init, 0.1))
            self.register_buffer("eps_bias", torch.empty(bias_shape), persistent=False)
            self.register_buffer("prior_bias_mu", torch.full(bias_shape, float(prior_mean)), persistent=False)
            self.register_buffer("prior_bias_sigma", torch.full(bias_shape, float(prior_variance)), persistent=False)
        else:
            self.mu_bias = None
            self.rho_bias = None

    def _mu(self):
        return getattr(self, f"mu_{self._kind}")

    def _sigma(self):
        return softplus(getattr(self, f"rho_{self._kind}"))

    def kl_loss(self):
        def kl(mu_q, sigma_q, mu_p, sigma_p):
            return (torch.log(sigma_p) - torch.log(sigma_q)
                    + (sigma_q ** 2 + (mu_q - mu_p) ** 2) / (2 * sigma_p ** 2) - 0.5).sum()
        out = kl(self._mu(), self._sigma(), self.prior_weight_mu, self.prior_weight_sigma)
        if self.mu_bias is not None:
            out = out + kl(self.mu_bias, softplus(self.rho_bias), self.prior_bias_mu, self.prior_bias_sigma)
        return out

    def forward(self, x):
        mu_b = self.mu_bias
        if MEAN_MODE["on"]:
            return self._op(x, self._mu(), mu_b), 0
        # fresh noise tensors (Bayesian-Torch refills its eps buffers through .data, which hides
        # the in-place update from autograd; a new tensor gives the same samples and honest gradients)
        eps = torch.randn_like(getattr(self, f"eps_{self._kind}"))
        bias = None
        if mu_b is not None:
            bias = mu_b + softplus(self.rho_bias) * torch.randn_like(self.eps_bias)
        if not self._flipout:
            return self._op(x, self._mu() + self._sigma() * eps, bias), self.kl_loss()
        out = self._op(x, self._mu(), mu_b)
        sign_in = x.clone().uniform_(-1, 1).sign()
        sign_out = out.clone().uniform_(-1, 1).sign()
        db = None if mu_b is None else bias - mu_b
        return out + self._op(x * sign_in, self._sigma() * eps, db) * sign_out, self.kl_loss()


class LinearReparameterization(_Variational):
    _flipout = False

    def __init__(self, in_features, out_features, prior_mean=0, prior_variance=1,
                 posterior_mu_init=0, posterior_rho_init=-3.0, bias=True):
        super().__init__()
        self._init((out_features, in_features), (out_features,) if bias else None, "weight",
                   prior_mean, prior_variance, posterior_mu_init, posterior_rho_init)

    def _op(self, x, w, b):
        return F.linear(x, w, b)


class LinearFlipout(LinearReparameterization):
    _flipout = True


class Conv2dReparameterization(_Variational):
    _flipout = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, prior_mean=0, prior_variance=1, posterior_mu_init=0,
                 posterior_rho_init=-3.0, bias=True):
        super().__init__()
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self._init((out_channels, in_channels // groups, kernel_size, kernel_size),
                   (out_channels,) if bias else None, "kernel",
                   prior_mean, prior_variance, posterior_mu_init, posterior_rho_init)

    def _op(self, x, w, b):
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)


class Conv2dFlipout(Conv2dReparameterization):
    _flipout = True


class LSTMReparameterization(nn.Module):
    def __init__(self, in_features, out_features, prior_mean=0, prior_variance=1,
                 posterior_mu_init=0, posterior_rho_init=-3.0, bias=True):
        super().__init__()
        self.out_features = out_features
        kw = dict(prior_mean=prior_mean, prior_variance=prior_variance,
                  posterior_mu_init=posterior_mu_init, posterior_rho_init=posterior_rho_init, bias=bias)
        self.ih = LinearReparameterization(in_features, out_features * 4, **kw)
        self.hh = LinearReparameterization(out_features, out_features * 4, **kw)

    def forward(self, x):
        n, t, _ = x.size()
        hs = self.out_features
        h = torch.zeros(n, hs)
        c = torch.zeros(n, hs)
        kl = 0
        seq = []
        for s in range(t):
            a, kl_i = self.ih(x[:, s, :])
            b, kl_h = self.hh(h)
            g = a + b
            kl = kl + kl_i + kl_h
            i, f, gg, o = (torch.sigmoid(g[:, :hs]), torch.sigmoid(g[:, hs:2 * hs]),
                           torch.tanh(g[:, 2 * hs:3 * hs]), torch.sigmoid(g[:, 3 * hs:]))
            c = f * c + i * gg
            h = o * torch.tanh(c)
            seq.append(h)
        out = torch.stack(seq, 1)
        return out, (out, c), kl


def read_safetensors(path):
    """A minimal safetensors reader (the safetensors package is not installed here)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        out[k] = torch.frombuffer(buf, dtype=dtypes[v["dtype"]]).reshape(v["shape"]).clone()
    return out
