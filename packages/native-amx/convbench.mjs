// scratch (not committed)
import { createRequire } from 'node:module';
const a = createRequire(import.meta.url)('./build/Release/qbnn_native.node');
a.setThreads(Number(process.env.T ?? 1));
const f = a.fp32;
const B = Number(process.env.B ?? 64);
const rnd = (n) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
function cpu() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
}
function time(name, flops, fn) {
  if (process.env.OP && !name.includes(process.env.OP)) return;
  fn();
  const ts = [];
  for (let i = 0; i < Number(process.env.R ?? 9); i++) {
    const t0 = cpu();
    fn();
    ts.push(cpu() - t0);
  }
  ts.sort((x, y) => x - y);
  const m = ts[4];
  console.log(name.padEnd(28), m.toFixed(2), 'ms', (flops / m / 1e6).toFixed(1), 'GFLOPS');
}

for (const [nm, h, ci, co, fh] of [
  ['conv1', 32, 1, 20, 5],
  ['conv2', 18, 20, 50, 5],
]) {
  const oh = h - fh + 1;
  const g = Int32Array.from([B, h, h, ci, oh, oh, co, fh, fh, 1, 1, 1, 1, 0, 0]);
  const x = rnd(B * h * h * ci),
    w = rnd(fh * fh * ci * co),
    y = new Float32Array(B * oh * oh * co),
    dy = rnd(B * oh * oh * co),
    dx = new Float32Array(x.length),
    dw = new Float32Array(w.length);
  const fl = 2 * B * oh * oh * co * fh * fh * ci;
  time(`${nm} fwd`, fl, () => f.conv2d(x, w, y, g, null, 0, 0));
  time(`${nm} bwd filter`, fl, () => f.conv2dBackpropFilter(x, dy, dw, g));
  if (ci > 1) time(`${nm} bwd input`, fl, () => f.conv2dBackpropInput(dy, w, dx, g));
}
for (const [M, K, N, ta, tb] of [
  [B, 2450, 500, 0, 1],
  [B, 500, 2450, 0, 0],
  [500, B, 2450, 1, 0],
]) {
  const A = rnd(M * K),
    Bm = rnd(K * N),
    C = new Float32Array(M * N);
  time(`matmul ${M}x${K}x${N} ${ta}${tb}`, 2 * M * N * K, () =>
    f.matmul(A, Bm, C, Int32Array.from([1, 1, M, K, N, ta, tb]), null, 0, 0),
  );
}
// NCHW: check vs NHWC and time
const toNchw = (a, n, h, w, c) => {
  const o = new Float32Array(a.length);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let q = 0; q < c; q++) o[((b * c + q) * h + i) * w + j] = a[((b * h + i) * w + j) * c + q];
  return o;
};
for (const [nm, h, ci, co, fh, pad] of [
  ['conv1', 28, 1, 20, 5, 2],
  ['conv2', 14, 20, 50, 5, 2],
]) {
  const oh = h + 2 * pad - fh + 1;
  const g = Int32Array.from([B, h, h, ci, oh, oh, co, fh, fh, 1, 1, 1, 1, pad, pad]);
  const x = rnd(B * h * h * ci),
    w = rnd(fh * fh * ci * co),
    y = new Float32Array(B * oh * oh * co),
    y2 = new Float32Array(y.length),
    dy = rnd(B * oh * oh * co),
    dx = new Float32Array(x.length),
    dx2 = new Float32Array(x.length),
    dw = new Float32Array(w.length),
    dw2 = new Float32Array(w.length);
  const xc = toNchw(x, B, h, h, ci),
    dyc = toNchw(dy, B, oh, oh, co);
  f.conv2d(x, w, y, g, null, 0, 0);
  f.conv2dNchw(xc, w, y2, g, null, 0, 0);
  f.conv2dBackpropInput(dy, w, dx, g);
  f.conv2dNchwBackpropInput(dyc, w, dx2, g);
  f.conv2dBackpropFilter(x, dy, dw, g);
  f.conv2dNchwBackpropFilter(xc, dyc, dw2, g);
  const err = (a, b) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    return m;
  };
  console.log(
    nm,
    'maxdiff y',
    err(toNchw(y, B, oh, oh, co), y2),
    'dx',
    err(toNchw(dx, B, h, h, ci), dx2),
    'dw',
    err(dw, dw2),
  );
  const fl = 2 * B * oh * oh * co * fh * fh * ci;
  time(`${nm} NCHW fwd`, fl, () => f.conv2dNchw(xc, w, y2, g, null, 0, 0));
  time(`${nm} NCHW bwd filter`, fl, () => f.conv2dNchwBackpropFilter(xc, dyc, dw2, g));
  if (ci > 1) time(`${nm} NCHW bwd input`, fl, () => f.conv2dNchwBackpropInput(dyc, w, dx2, g));
}
