// Bundled by page.test.ts: the kernel equality suites of every provider (core/test/kernel-cases.ts)
// run inside Chromium on each build of the wasm kernels this browser can run, so the relaxed-SIMD
// build (which Node 20 cannot run) is tested byte for byte against the JS reference too.
import { referenceKernels as js } from '@qbnn/core';
import { setWasmVariant, unpackWeights, wasmInfo, wasmKernels as wk } from '@qbnn/wasm';
import {
  extremeGemms,
  qnormalStreams,
  randomConvs,
  randomGemms,
  sampledPacks,
  zooConvs,
} from '../../../packages/core/test/kernel-cases.js';

const report: { variants: string[]; passed: string[]; failed?: string } = { variants: [], passed: [] };
try {
  const info = wasmInfo();
  report.variants = info?.available ?? [];
  for (const v of report.variants) {
    setWasmVariant(v as 'relaxed' | 'simd128');
    randomGemms(wk, js, v, 300, 4e6);
    extremeGemms(wk, js, v);
    randomConvs(wk, js, v, 60);
    zooConvs(wk, js, v);
    sampledPacks(wk, js, unpackWeights);
    qnormalStreams(wk);
    report.passed.push(v);
  }
} catch (e) {
  report.failed = e instanceof Error ? e.message : String(e);
}
(globalThis as { kernelReport?: typeof report }).kernelReport = report;
