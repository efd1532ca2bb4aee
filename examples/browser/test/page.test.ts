import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { deflateSync } from 'node:zlib';
import { crc32, initBackend, referenceKernels } from '@qbnn/core';
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
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExample } from '../scripts/build.mjs';
import type { PageState } from '../src/app.js';
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
  let digit: Float32Array;
  let sizes: { totalGzip: number };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qbnn-browser-'));
    sizes = await buildExample(dir);
    // A Bayesian LeNet-5 quantised to W8A8 (PTQ on real MNIST digits; untrained weights are
    // enough to compare two runtimes of the same integer model).
    await initBackend({ backend: 'cpu', log: () => {} });
    const { model } = dnnToBnn(lenet5({}, { seed: 3 }), { posterior: 'gaussian', seed: 3 });
    const { train } = loadMnist({ trainSize: 64, testSize: 0, seed: 1 });
    digit = train.images.slice(0, 784);
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

  const demo = (page: Page) =>
    page.evaluate(() => (globalThis as { qbnnDemo?: PageState }).qbnnDemo as PageState);

  /** Opens the page in a fresh Chromium, recording console errors and requests outside the server. */
  async function openPage(): Promise<{ browser: Browser; page: Page; errors: string[]; outside: string[] }> {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
      ],
    });
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
      () => {
        const d = (globalThis as { qbnnDemo?: { ready: boolean; error?: string } }).qbnnDemo;
        return d?.ready || d?.error !== undefined;
      },
      null,
      { timeout: 60_000 },
    );
    expect((await demo(page)).kernels).toMatch(/^WebAssembly (relaxed|simd128)$/);
    return { browser, page, errors, outside };
  }

  /** The page's last classification equals the Node integer engine's (JS reference kernels) for its input and seed. */
  async function expectNodeEngineAgrees(page: Page, samples: number, seed: number): Promise<number[]> {
    const last = (await demo(page)).last;
    if (!last) throw new Error('the page classified nothing');
    expect(await page.locator('#verdict').textContent()).toContain(`looks like a ${last.result.prediction}`);
    expect(last.result.samples).toBe(samples);
    expect(last.result.seed).toBe(seed);
    const model = deserializeQuantized(modelBytes);
    const node = classify(model, Float32Array.from(last.input), samples, seed);
    expect(Array.from(node.logits)).toEqual(last.result.logits); // bit-identical integer engine
    expect(node.prediction).toBe(last.result.prediction);
    expect(Array.from(node.mean)).toEqual(last.result.mean);
    expect(node.entropy).toBe(last.result.entropy);
    expect(node.mutualInformation).toBe(last.result.mutualInformation);
    expect(node.refer).toBe(last.result.refer);
    expect(referenceKernels.name).toBe('js');
    return last.input;
  }

  it('classifies a drawn digit like the Node integer engine, with no errors and no outside request', async () => {
    const { browser, page, errors, outside } = await openPage();
    try {
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
      const input = await expectNodeEngineAgrees(page, 20, 7);
      expect(input.reduce((s, v) => s + v, 0)).toBeGreaterThan(20); // the drawing reached the model
      expect(errors).toEqual([]);
      expect(outside).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('classifies an uploaded image file (a real MNIST digit, dark on light) like the Node integer engine', async () => {
    const { browser, page, errors, outside } = await openPage();
    try {
      await page.fill('#samples', '12');
      await page.fill('#seed', '3');
      // A file that is not an image is refused with a message, not an error.
      const notImage = join(dir, 'notes.png');
      writeFileSync(notImage, 'not an image');
      await page.setInputFiles('#upload', notImage);
      await page.waitForFunction(() =>
        document.getElementById('status')?.textContent?.startsWith('Cannot read'),
      );
      expect((await demo(page)).uploads).toBe(0);

      // The digit as a photo of paper would be: dark ink on white, 4x larger, as a PNG file.
      const file = join(dir, 'digit.png');
      writeFileSync(
        file,
        grayPng(
          upscale(
            digit.map((v) => 255 - Math.round(255 * v)),
            28,
            4,
          ),
          112,
          112,
        ),
      );
      await page.setInputFiles('#upload', file);
      await page.waitForFunction(
        () => (globalThis as { qbnnDemo?: { last?: unknown } }).qbnnDemo?.last !== undefined,
      );
      expect((await demo(page)).uploads).toBe(1);
      const input = await expectNodeEngineAgrees(page, 12, 3);
      // The page normalises the upload like MNIST (inverted, box 20 px, centred by mass): its
      // input is the digit again, up to the resampling.
      expect(correlation(input, Array.from(digit))).toBeGreaterThan(0.8);
      expect(errors).toEqual([]);
      expect(outside).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

/** A w x h 8-bit greyscale PNG (RFC 2083: signature, IHDR, one zlib IDAT with filter 0 rows, IEND). */
function grayPng(pixels: ArrayLike<number>, w: number, h: number): Uint8Array {
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8 bits, greyscale, deflate, filter set 0, no interlace
  const raw = new Uint8Array(h * (w + 1));
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = pixels[y * w + x];
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** An n x n image enlarged k times by pixel repetition. */
function upscale(pixels: ArrayLike<number>, n: number, k: number): Uint8Array {
  const out = new Uint8Array(n * k * n * k);
  for (let y = 0; y < n * k; y++)
    for (let x = 0; x < n * k; x++) out[y * n * k + x] = pixels[Math.floor(y / k) * n + Math.floor(x / k)];
  return out;
}

/** Pearson correlation of two equally long arrays. */
function correlation(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, v) => s + v, 0) / n;
  const mb = b.reduce((s, v) => s + v, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}
