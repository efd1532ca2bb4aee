import { getKernelProvider, Rng } from '@qbnn/core';
import type { Suite } from '../harness.js';
import { loadNative } from '../native.js';

/** The zoo's convolution layers: [name, C, O, H (= W), kernel, stride, pad]. */
const LAYERS: [string, number, number, number, number, number, number][] = [
  ['lenet5.conv1', 1, 20, 28, 5, 1, 2],
  ['lenet5.conv2', 20, 50, 14, 5, 1, 2],
  ['resnet18.3x3.w24', 24, 24, 32, 3, 1, 1],
  ['resnet18.3x3.w48', 48, 48, 16, 3, 1, 1],
  ['resnet18.3x3.w96', 96, 96, 8, 3, 1, 1],
  ['resnet18.3x3.w192', 192, 192, 4, 3, 1, 1],
  ['resnet18.3x3s2.w48', 24, 48, 32, 3, 2, 1],
  ['resnet18.1x1s2.w48', 24, 48, 32, 1, 2, 0],
  ['resnet18.conv1', 3, 24, 32, 3, 1, 1],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

export const convSuite: Suite = {
  name: 'conv',
  description:
    'native int8 convolution (direct AVX-512 VNNI kernel) on the zoo layers, batch 32, one thread, beside the vpdpbusd peak measured interleaved',
  async run(ctx) {
    const native = await loadNative();
    if (!native) {
      ctx.note('native addon not loaded: conv suite skipped');
      return;
    }
    const info = native.nativeInfo()!;
    native.setIsa('best');
    native.setThreads(1);
    const batch = ctx.quick && !ctx.filtered ? 4 : 32;
    ctx.note(
      `isa ${info.best}, one thread; rates in thread CPU time (the calling thread's clock), each conv burst timed right after a vpdpbusd peak burst of the same length, medians of ${ctx.runs}; the convolution prepared once (arguments validated and weights reordered once, as execution plans run it), the provider's qconv2d (every argument validated each call) beside it as provider_*`,
    );
    const provider = getKernelProvider('native');
    const rng = new Rng(77);
    for (const [layer, c, o, h, k, stride, pad] of LAYERS) {
      if (!ctx.accepts({ layer, batch })) continue;
      const kg = c * k * k;
      const ho = Math.floor((h + 2 * pad - k) / stride) + 1;
      const x = Uint8Array.from(rng.uint32(batch * c * h * h), (u) => u & 0xff);
      const w = Int8Array.from(rng.uint32(o * kg), (u) => (u & 0xff) - 128);
      const args = {
        x,
        xShape: [batch, c, h, h] as [number, number, number, number],
        xScale: 0.02,
        xZeroPoint: 3,
        w: provider.packWeights(w, o, kg, 0),
        wShape: [o, c, k, k] as [number, number, number, number],
        wScale: 0.01,
        stride: [stride, stride] as [number, number],
        padding: [pad, pad] as [number, number],
        output: { kind: 'u8' as const, scale: 40, zeroPoint: 0, relu: true },
        out: new Uint8Array(batch * o * ho * ho),
      };
      const ops = 2 * batch * o * ho * ho * kg;
      const burst = Math.max(1, Math.round((ctx.quick ? 5e7 : 1e9) / ops));
      const peakIters = Math.max(20_000, Math.round((burst * ops) / 1536));
      // The convolution as execution plans run it: validated and its weights reordered once
      // (prepareQConv2d), each call the kernel on the input. The provider's qconv2d (the same
      // kernel after validating every argument) is timed too, as `provider_*`.
      const prepared = native.prepareQConv2d(args);
      const calls: [string, () => void][] = [['provider', () => provider.qconv2d(args)]];
      if (prepared) {
        calls.unshift(['prepared', () => prepared.run(x, args.out)]);
        const viaProvider = Uint8Array.from(provider.qconv2d(args) as Uint8Array);
        const same = prepared.run(x).every((v, i) => v === viaProvider[i]);
        if (!same) throw new Error(`conv ${layer}: the prepared convolution differs from qconv2d`);
      }
      const timed = calls.map(() => ({
        rates: [] as number[],
        peaks: [] as number[],
        times: [] as number[],
      }));
      for (let r = 0; r < ctx.runs; r++) {
        for (let c = 0; c < calls.length; c++) {
          const call = calls[c][1];
          const t = timed[c];
          // 12 vpdpbusd zmm an iteration: 16 lanes x 4 multiply-adds x 2 ops each (thread CPU time)
          const p0 = native.threadCpuTime();
          native.vpdpbusdPeakGops(peakIters);
          t.peaks.push((peakIters * 1536) / (native.threadCpuTime() - p0) / 1e9);
          const t0 = native.threadCpuTime();
          for (let i = 0; i < burst; i++) call();
          const s = native.threadCpuTime() - t0;
          t.times.push((s / burst) * 1e3);
          t.rates.push((burst * ops) / s / 1e9);
        }
      }
      prepared?.dispose();
      const { rates, peaks, times } = timed[0];
      const gops = median(rates);
      const peak = median(peaks);
      const sorted = [...times].sort((a, b) => a - b);
      const viaProvider = timed[calls.length - 1];
      ctx.add({
        case: 'qconv2d',
        impl: `native-${info.best}`,
        params: { layer, batch, shape: `${batch}x${c}x${h}x${h} -> ${o}, ${k}x${k}/${stride}`, threads: 1 },
        median_ms: +median(times).toFixed(4),
        min_ms: +sorted[0].toFixed(4),
        max_ms: +sorted[sorted.length - 1].toFixed(4),
        runs: times.length,
        throughput: +gops.toFixed(1),
        unit: 'GOPS',
        extra: {
          call: calls[0][0],
          peak_gops: +peak.toFixed(1),
          share_of_peak: +(gops / peak).toFixed(3),
          provider_median_ms: +median(viaProvider.times).toFixed(4),
          provider_share_of_peak: +(median(viaProvider.rates) / median(viaProvider.peaks)).toFixed(3),
        },
      });
      ctx.ratio(`conv_share_of_peak_${layer}_b${batch}`, gops / peak);
    }
    native.setThreads(2);
  },
};
