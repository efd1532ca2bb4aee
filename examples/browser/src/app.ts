// The page: draw or upload a digit, classify it with L Monte Carlo samples of a quantised
// Bayesian LeNet-5 on the WebAssembly kernels, show the predictive distribution, its entropy, the
// mutual information and whether to refer the case to a human.
import { getKernelProvider } from '@qbnn/core';
import { deserializeQuantized, type QuantizedModel } from '@qbnn/qat';
import { wasmInfo } from '@qbnn/wasm';
import { type Classification, classify, REFER_SHARE } from './classify.js';
import { inkOf, mnistInput } from './digit.js';

/** What the page exposes as `qbnnDemo` for tests and the curious: the last input and classification. */
export interface PageState {
  ready: boolean;
  kernels: string;
  error?: string;
  /** Images uploaded and drawn on the pad so far. */
  uploads: number;
  last?: {
    input: number[];
    result: Omit<Classification, 'logits' | 'probs' | 'mean'> & { logits: number[]; mean: number[] };
  };
}
const state: PageState = { ready: false, kernels: '', uploads: 0 };
let loaded: QuantizedModel | undefined;
(globalThis as { qbnnDemo?: PageState }).qbnnDemo = state;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const pad = $<HTMLCanvasElement>('pad');
const ctx = pad.getContext('2d', { willReadFrequently: true })!;
const status = $<HTMLParagraphElement>('status');

function clearPad(): void {
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, pad.width, pad.height);
}
clearPad();

// Drawing: white strokes, as thick as MNIST's pen relative to the digit.
let drawing = false;
pad.addEventListener('pointerdown', (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  ctx.beginPath();
  ctx.moveTo(e.offsetX, e.offsetY);
});
pad.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  ctx.strokeStyle = '#fff';
  ctx.lineWidth = 22;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.lineTo(e.offsetX, e.offsetY);
  ctx.stroke();
});
pad.addEventListener('pointerup', () => {
  drawing = false;
});
$('clear').addEventListener('click', () => {
  clearPad();
  $('result').hidden = true;
});

$<HTMLInputElement>('upload').addEventListener('change', async (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (!file) return;
  let img: ImageBitmap;
  try {
    img = await createImageBitmap(file);
  } catch {
    status.textContent = `Cannot read ${file.name} as an image: choose a PNG, JPEG, GIF or WebP file.`;
    return;
  }
  clearPad();
  const s = Math.min(pad.width / img.width, pad.height / img.height);
  ctx.drawImage(
    img,
    (pad.width - img.width * s) / 2,
    (pad.height - img.height * s) / 2,
    img.width * s,
    img.height * s,
  );
  img.close();
  state.uploads++;
  if (loaded) run(loaded); // an uploaded image is classified at once
});

function showInput(x: Float32Array): void {
  const p = $<HTMLCanvasElement>('preview').getContext('2d')!;
  const im = p.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = Math.round(x[i] * 255);
    im.data.set([v, v, v, 255], 4 * i);
  }
  p.putImageData(im, 0, 0);
}

function show(r: Classification, ms: number): void {
  $('verdict').textContent =
    `It looks like a ${r.prediction} (p = ${r.mean[r.prediction].toFixed(3)}, L = ${r.samples} samples).`;
  const refer = $('refer');
  refer.textContent = r.refer
    ? `Refer to a human: the prediction is too uncertain (entropy over ${REFER_SHARE * 100}% of its maximum).`
    : 'Confident enough to act on.';
  refer.className = r.refer ? 'on' : '';
  const bars = $('bars');
  bars.replaceChildren();
  for (let c = 0; c < r.mean.length; c++) {
    const label = document.createElement('span');
    label.textContent = String(c);
    const bar = document.createElement('div');
    bar.className = c === r.prediction ? 'bar top' : 'bar';
    bar.style.width = `${(100 * r.mean[c]).toFixed(1)}%`;
    const value = document.createElement('span');
    value.textContent = r.mean[c].toFixed(3);
    bars.append(label, bar, value);
  }
  $('entropy').textContent = `${r.entropy.toFixed(4)} nats (max ${Math.log(r.mean.length).toFixed(3)})`;
  $('mi').textContent = `${r.mutualInformation.toFixed(4)} nats`;
  $('time').textContent = `${ms.toFixed(1)} ms on ${state.kernels}`;
  $('result').hidden = false;
}

function run(model: QuantizedModel): void {
  const x = mnistInput(inkOf(ctx.getImageData(0, 0, pad.width, pad.height).data), pad.width, pad.height);
  if (x === null) {
    status.textContent = 'Draw a digit first.';
    return;
  }
  showInput(x);
  const samples = Math.max(1, Math.min(200, Math.floor(Number($<HTMLInputElement>('samples').value) || 20)));
  const seed = Math.max(0, Math.floor(Number($<HTMLInputElement>('seed').value) || 0));
  const t0 = performance.now();
  const r = classify(model, x, samples, seed);
  const ms = performance.now() - t0;
  show(r, ms);
  status.textContent = '';
  state.last = {
    input: Array.from(x),
    result: {
      prediction: r.prediction,
      entropy: r.entropy,
      mutualInformation: r.mutualInformation,
      refer: r.refer,
      samples: r.samples,
      seed: r.seed,
      logits: Array.from(r.logits),
      mean: Array.from(r.mean),
    },
  };
}

async function main(): Promise<void> {
  const url = new URLSearchParams(location.search).get('model') ?? 'model.safetensors';
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot load the model from ${url}: HTTP ${res.status}`);
  const model = deserializeQuantized(new Uint8Array(await res.arrayBuffer()));
  const info = wasmInfo();
  state.kernels = info ? `WebAssembly ${info.variant}` : `the ${getKernelProvider().name} kernels`;
  const button = $<HTMLButtonElement>('classify');
  button.addEventListener('click', () => run(model));
  button.disabled = false;
  loaded = model;
  status.textContent = `Model loaded (${model.layers.length} integer layers); kernels: ${state.kernels}.`;
  state.ready = true;
}

main().catch((e: unknown) => {
  state.error = e instanceof Error ? e.message : String(e);
  status.textContent = `Error: ${state.error}`;
  console.error(e);
});
