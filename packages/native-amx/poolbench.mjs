import { createRequire } from 'node:module';
const a = createRequire(import.meta.url)('./build/Release/qbnn_native.node');
a.setThreads(1);
const f = a.fp32;
function cpu() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
}
function time(name, fn) {
  fn();
  const ts = [];
  for (let i = 0; i < 15; i++) {
    const t0 = cpu();
    fn();
    ts.push(cpu() - t0);
  }
  ts.sort((x, y) => x - y);
  console.log(name.padEnd(28), ts[7].toFixed(3), 'ms');
}
for (const [n, h, c] of [
  [1280, 28, 1],
  [3200, 14, 1],
  [64, 28, 20],
]) {
  const oh = h / 2;
  const g = Int32Array.from([n, h, h, c, oh, oh, 2, 2, 2, 2, 0, 0]);
  const x = Float32Array.from({ length: n * h * h * c }, () => Math.random()),
    y = new Float32Array(n * oh * oh * c),
    dx = new Float32Array(x.length);
  time(`max ${n}x${h}x${h}x${c}`, () => f.pool('max', x, y, g));
  time(`maxgrad ${n}x${h}x${h}x${c}`, () => f.poolGrad('max', x, y, dx, g));
}
