import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { initBackend, referenceKernels } from '@qbnn/core';
import { loadMnist } from '@qbnn/data/node';
import { lenet5 } from '@qbnn/nn';
import { dnnToBnn } from '@qbnn/posteriors';
import {
  calibrate,
  convert,
  defaultQConfig,
  deserializeQuantized,
  prepare,
  serializeQuantized,
} from '@qbnn/qat';
import * as tf from '@tensorflow/tfjs-core';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExample } from '../scripts/build.mjs';
import { classify } from '../src/classify.js';

// Builds the page, serves it from 127.0.0.1 and drives it in headless Chromium (Debian's, as
// scripts/setup.sh installs it): a drawn digit is classified on the WebAssembly kernels, and the
// page's predictions must equal the Node integer engine's (JS reference kernels) for the same input
// and seed, with no console errors and no request outside the local server.
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM) || !!process.env.CI;
const MIME: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.safetensors': 'application/octet-stream',
};

describe.skipIf(!haveChromium)('the browser example in Chromium', () => {
  let dir: string;
  let server: Server;
  let origin: string;
  let modelBytes: Uint8Array;
  let sizes: { totalGzip: number };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qbnn-browser-'));
    sizes = await buildExample(dir);
    // A Bayesian LeNet-5 quantised to W8A8 (PTQ on real MNIST digits; untrained weights are
    // enough to compare two runtimes of the same integer model).
    await initBackend({ backend: 'cpu', log: () => {} });
    const { model } = dnnToBnn(lenet5({}, { seed: 3 }), { posterior: 'gaussian', seed: 3 });
    const { train } = loadMnist({ trainSize: 64, testSize: 0, seed: 1 });
    const x = tf.tensor(train.images, [64, 1, 28, 28]);
    prepare(model, defaultQConfig());
    await calibrate(model, [x], { passes: 2 });
    x.dispose();
    const qm = convert(model, { inputShape: [1, 28, 28] });
    modelBytes = serializeQuantized(qm);
    await build({
      entryPoints: [join(import.meta.dirname, 'kernels-page.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      conditions: ['@qbnn/source'],
      outfile: join(dir, 'kernels.js'),
      logLevel: 'warning',
    });
    writeFileSync(
      join(dir, 'kernels.html'),
      '<!doctype html><link rel="icon" href="data:,"><script type="module" src="kernels.js"></script>',
    );
    writeFileSync(join(dir, 'model.safetensors'), modelBytes);
    server = createServer((req, res) => {
      const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
      const file = join(dir, path === '/' ? 'index.html' : path);
      if (!file.startsWith(dir) || !existsSync(file)) {
        res.statusCode = 404;
        res.end();
        return;
      }
      res.setHeader('content-type', MIME[extname(file)] ?? 'application/octet-stream');
      res.end(readFileSync(file));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 300_000);

  afterAll(() => {
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the bundle (JS with the wasm kernels, HTML, CSS; no weights) is at most 400 KB gzipped', () => {
    expect(sizes.totalGzip).toBeLessThanOrEqual(400 * 1024);
  });

  it('runs the kernel equality suites on every wasm build this Chromium can run (relaxed SIMD included)', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${origin}/kernels.html`);
      await page.waitForFunction(
        () => (globalThis as { kernelReport?: unknown }).kernelReport !== undefined,
        null,
        {
          timeout: 240_000,
        },
      );
      const report = await page.evaluate(
        () =>
          (globalThis as { kernelReport?: { variants: string[]; passed: string[]; failed?: string } })
            .kernelReport!,
      );
      console.log(`wasm builds tested in Chromium: ${report.passed.join(', ')}`);
      expect(report.failed).toBeUndefined();
      expect(report.variants).toContain('simd128');
      expect(report.passed).toEqual(report.variants);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 300_000);

  it('classifies a drawn digit like the Node integer engine, with no errors and no outside request', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
      ],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      const outside: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (r) => {
        if (!r.url().startsWith(`${origin}/`)) outside.push(r.url());
      });
      await page.goto(`${origin}/`);
      await page.waitForFunction(
        () =>
          (globalThis as { qbnnDemo?: { ready: boolean; error?: string } }).qbnnDemo?.ready ||
          (globalThis as { qbnnDemo?: { error?: string } }).qbnnDemo?.error !== undefined,
        null,
        { timeout: 60_000 },
      );
      const kernels = await page.evaluate(
        () => (globalThis as { qbnnDemo?: { kernels: string } }).qbnnDemo!.kernels,
      );
      expect(kernels).toMatch(/^WebAssembly (relaxed|simd128)$/);
      // Draw a 7 with the mouse: a top bar and a diagonal stroke.
      const box = (await page.locator('#pad').boundingBox())!;
      const stroke = async (pts: [number, number][]) => {
        await page.mouse.move(box.x + pts[0][0], box.y + pts[0][1]);
        await page.mouse.down();
        for (const [x, y] of pts.slice(1)) await page.mouse.move(box.x + x, box.y + y, { steps: 8 });
        await page.mouse.up();
      };
      await stroke([
        [70, 60],
        [210, 60],
        [120, 230],
      ]);
      await page.fill('#samples', '20');
      await page.fill('#seed', '7');
      await page.click('#classify');
      await page.waitForFunction(
        () => (globalThis as { qbnnDemo?: { last?: unknown } }).qbnnDemo?.last !== undefined,
      );
      const last = await page.evaluate(
        () =>
          (
            globalThis as {
              qbnnDemo?: {
                last: {
                  input: number[];
                  result: {
                    logits: number[];
                    mean: number[];
                    prediction: number;
                    entropy: number;
                    mutualInformation: number;
                    refer: boolean;
                    samples: number;
                    seed: number;
                  };
                };
              };
            }
          ).qbnnDemo!.last,
      );
      expect(await page.locator('#verdict').textContent()).toContain(
        `looks like a ${last.result.prediction}`,
      );
      expect(last.result.samples).toBe(20);
      expect(last.result.seed).toBe(7);
      const ink = last.input.reduce((s, v) => s + v, 0);
      expect(ink).toBeGreaterThan(20); // the drawing reached the model

      // The same input and seed through the Node integer engine on the JS reference kernels.
      const model = deserializeQuantized(modelBytes);
      const node = classify(model, Float32Array.from(last.input), 20, 7);
      expect(Array.from(node.logits)).toEqual(last.result.logits); // bit-identical integer engine
      expect(node.prediction).toBe(last.result.prediction);
      expect(Array.from(node.mean)).toEqual(last.result.mean);
      expect(node.entropy).toBe(last.result.entropy);
      expect(node.mutualInformation).toBe(last.result.mutualInformation);
      expect(node.refer).toBe(last.result.refer);
      expect(referenceKernels.name).toBe('js');

      expect(errors).toEqual([]);
      expect(outside).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
