/**
 * Native execution plans (issue 18, items 1 and 3): a whole forward as one native call must give
 * the logits of the kernel-by-kernel integer engine byte for byte, for every built-in posterior,
 * engine mode, a low bit width, batches of one and of several tiles, and 1 or 2 threads; on
 * LeNet-5, the MLP and a narrow ResNet-18 with the extreme inputs (all 0, all 1.0) in the batch.
 * The reference is the engine kernel by kernel on core's JS provider (no plan, no native code),
 * or for batches of several tiles on the native kernels (equal to the JS ones by
 * native-whole-model.test.ts).
 */
import { JS_PROVIDER, meanSoftmax } from '@qbnn/core';
import { getThreads, loadError, NATIVE_PROVIDER, nativeAvailable, setThreads } from '@qbnn/native-amx';
import {
  Conv1d,
  Conv2d,
  ConvTranspose1d,
  ConvTranspose2d,
  Flatten,
  Linear,
  MaxPool2d,
  type Module,
  ReLU,
  Sequential,
} from '@qbnn/nn';
import { dnnToBnn } from '@qbnn/posteriors';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuantizedModel } from '../src/engine/quantized-model.js';
import { defaultQConfig } from '../src/qconfig.js';
import { quantize } from '../src/quantize.js';
import { LOWERED_CONV_CASES } from './conv-models.js';
import { lcg } from './helpers.js';
import { useCpu } from './setup-tf.js';
import { INPUT, images, type Post, quantised, type Shape } from './whole-models.js';

beforeAll(useCpu);
const threads0 = nativeAvailable ? getThreads() : 1;
afterAll(() => {
  if (nativeAvailable) setThreads(threads0);
});

const CI = process.env.CI === 'true';
const runNative = nativeAvailable || CI;
if (!nativeAvailable && !CI) console.warn(`native-plan: skipped, the addon is not available: ${loadError}`);

/** `n` examples: all 0, all 1.0, then real digits (or noise). */
function batch(shape: [number, number, number], n: number): Float32Array {
  const px = shape[0] * shape[1] * shape[2];
  const x = new Float32Array(n * px);
  x.fill(1, px, 2 * px);
  x.set(images(shape, n - 2, 300).subarray(0, (n - 2) * px), 2 * px);
  return x;
}

function same(a: Float32Array, b: Float32Array, what: string): void {
  let bad = -1;
  for (let i = 0; i < a.length && bad < 0; i++) if (!Object.is(a[i], b[i])) bad = i;
  expect(a.length, what).toBe(b.length);
  expect(bad < 0 ? 'identical' : `logit ${bad}: plan ${a[bad]} vs engine ${b[bad]}`, what).toBe('identical');
}

/** `build()` made Bayesian with `posterior` (MC Dropout p = 0.3) and PTQ-calibrated on 4 lcg inputs. */
async function quantizedNet(
  build: () => Module,
  posterior: 'gaussian' | 'radial' | 'mcdropout',
  shape: number[],
  r: () => number,
  bits = 8,
): Promise<QuantizedModel> {
  const options = posterior === 'mcdropout' ? { posterior, posteriorOptions: { p: 0.3 } } : { posterior };
  const model = dnnToBnn(build(), options as never).model;
  const per = shape.reduce((a, b) => a * b, 1);
  const calib = tf.tensor(
    Float32Array.from({ length: 4 * per }, () => r()),
    [4, ...shape],
  );
  try {
    const qconfig = defaultQConfig({ weightBits: bits, activationBits: bits });
    return await quantize(model, { mode: 'ptq', data: calib, qconfig });
  } finally {
    calib.dispose();
  }
}

const cases: [Exclude<Shape, 'conv-kmax' | 'linear-kmax'>, Post][] = [
  ['lenet5', 'gaussian'],
  ['lenet5', 'radial'],
  ['lenet5', 'mcdropout'],
  ['lenet5', 'sghmc'],
  ['lenet5', 'none'],
  ['mlp', 'gaussian'],
  ['mlp', 'mcdropout'],
  ['mlp', 'radial'],
  ['resnet18', 'gaussian'],
  ['resnet18', 'mcdropout'],
  ['resnet18', 'sghmc'],
];

describe('native execution plans = the integer engine (logits byte for byte)', () => {
  for (const [shape, p] of cases) {
    it.skipIf(!runNative)(`${shape} / ${p}: weights and local modes, 1 and 2 threads`, async () => {
      const qm = await quantised(shape, p);
      const modes = p === 'radial' || p === 'none' ? (['weights'] as const) : (['weights', 'local'] as const);
      const s = INPUT[shape];
      // a batch of one, one of several batch tiles for the small models, and small batches of
      // several samples (tasks stack whole samples when no weight depends on the sample; the
      // last stack shorter)
      const sizes: [number, number][] =
        shape === 'resnet18'
          ? [
              [3, 2],
              [2, 5],
            ]
          : [
              [70, 2],
              [3, 5],
              [1, 3],
            ];
      for (const mode of modes) {
        expect(qm.planned({ mode, provider: NATIVE_PROVIDER })).toBe(true);
        for (const [B, L] of sizes) {
          const x = B === 1 ? images(s, 1, 400) : batch(s, B);
          const opts = { samples: L, seed: 987654321, mode };
          // the reference: the integer engine kernel by kernel, on core's JS kernels for the
          // small batches and on the native kernels (equal to them, native-whole-model.test.ts)
          // for the batch of several tiles, which the JS kernels take long over
          const js = qm.forward(x, {
            ...opts,
            provider: B > 3 ? NATIVE_PROVIDER : JS_PROVIDER,
            plan: false,
          }).logits;
          setThreads(1);
          const one = qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits;
          setThreads(2);
          const two = qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits;
          same(one, js, `${shape}/${p}/${mode}/B=${B}/L=${L}: plan (1 thread) vs engine`);
          same(two, js, `${shape}/${p}/${mode}/B=${B}/L=${L}: plan (2 threads) vs engine`);
        }
      }
    });
  }

  it.skipIf(!runNative)(
    'a later call draws new weights into the convolutions it prepared before',
    async () => {
      const qm = await quantised('lenet5', 'gaussian');
      const x = batch(INPUT.lenet5, 3);
      setThreads(1);
      // same batch and samples, so the plan's drawn convolutions keep their prepared geometry and
      // only take the new weights; a stale draw would repeat the first call's logits
      for (const seed of [11, 12, 13]) {
        const opts = { samples: 2, seed, mode: 'weights' as const };
        same(
          qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits,
          qm.forward(x, { ...opts, provider: JS_PROVIDER }).logits,
          `seed ${seed}`,
        );
      }
    },
  );

  it.skipIf(!runNative)(
    'later draws written straight into the prepared convolutions (tap order) equal the engine',
    async () => {
      // from a plan's second call on, a drawn convolution with one tap a dword is sampled into
      // the tap order of the convolution it prepared (no packed layout, no reorder): partial
      // quads (5 and 6 input channels), one tap (1x1), 16 taps (a quad is 64 bytes), 2x3
      // kernels, 20 and 40 channels (several channel blocks, the last 16-row block partial), a
      // batch of two tile sizes (71 rows: tiles of 36 and 35, both prepared convolutions
      // written); new seeds each call
      const r = lcg(9);
      const qm = await quantizedNet(
        () =>
          new Sequential(
            new Conv2d(5, 20, 3, { padding: 1, seed: 1 }),
            new ReLU(),
            new Conv2d(20, 6, 1, { seed: 2 }),
            new ReLU(),
            new Conv2d(6, 40, [2, 3], { padding: 1, seed: 3 }),
            new ReLU(),
            new Conv2d(40, 8, 4, { seed: 4 }),
            new ReLU(),
            new Flatten(),
            new Linear(8 * 4 * 3, 3, { seed: 5 }),
          ),
        'gaussian',
        [5, 6, 6],
        r,
      );
      let seed = 50;
      for (const B of [3, 71])
        for (const threads of [1, 2, 1]) {
          const x = Float32Array.from({ length: B * 5 * 6 * 6 }, () => r());
          const opts = { samples: 3, seed: seed++, mode: 'weights' as const };
          setThreads(threads);
          same(
            qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits,
            qm.forward(x, { ...opts, provider: B > 3 ? NATIVE_PROVIDER : JS_PROVIDER, plan: false }).logits,
            `B=${B} ${threads} threads seed ${seed - 1}`,
          );
        }
      const x = batch(INPUT.resnet18, 3);
      const rq = await quantised('resnet18', 'gaussian');
      setThreads(1);
      for (const s of [61, 62]) {
        const opts = { samples: 2, seed: s, mode: 'weights' as const };
        same(
          rq.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits,
          rq.forward(x, { ...opts, provider: JS_PROVIDER }).logits,
          `resnet18 seed ${s}`,
        );
      }
    },
  );

  it.skipIf(!runNative)(
    'a wide layer drawn in parts (row blocks over threads) equals the engine',
    async () => {
      // k = 2000: the plan draws the 100 rows of fc1 in blocks of 48 rows (the last of 4 rows),
      // the bias with the first block
      const r = lcg(5);
      const qm = await quantizedNet(
        () =>
          new Sequential(new Linear(2000, 100, { seed: 1 }), new ReLU(), new Linear(100, 10, { seed: 2 })),
        'gaussian',
        [2000],
        r,
      );
      // a new seed for every call: rows a wrong split left undrawn would hold another sample's
      let seed = 70;
      for (const B of [1, 3]) {
        const x = Float32Array.from({ length: B * 2000 }, () => r());
        for (const threads of [2, 1]) {
          const opts = { samples: 3, seed: seed++, mode: 'weights' as const };
          setThreads(threads);
          same(
            qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits,
            qm.forward(x, { ...opts, provider: JS_PROVIDER }).logits,
            `B=${B} ${threads} threads`,
          );
        }
      }
    },
  );

  it.skipIf(!runNative)(
    'grouped convolutions (grouped, depthwise, grouped 1-D and transposed) run as plans',
    async () => {
      // a depthwise layer with a pool after it, then the grouped models of the engine's own tests
      const models: [() => Module, number[]][] = [
        [
          () =>
            new Sequential(
              new Conv2d(4, 6, 3, { padding: 1, groups: 2, seed: 1 }),
              new ReLU(),
              new Conv2d(6, 6, 3, { padding: 1, groups: 6, seed: 2 }),
              new ReLU(),
              new MaxPool2d(2),
              new Flatten(),
              new Linear(6 * 3 * 3, 3, { seed: 3 }),
            ),
          [4, 6, 6],
        ],
        ...LOWERED_CONV_CASES.filter((c) => c.name.includes('grouped') || c.name.includes('groups')).map(
          (c): [() => Module, number[]] => [c.make, c.inputShape],
        ),
      ];
      expect(models.length).toBe(3);
      const r = lcg(4);
      for (const [build, shape] of models)
        for (const posterior of ['gaussian', 'radial', 'mcdropout'] as const) {
          const qm = await quantizedNet(build, posterior, shape, r);
          const per = shape.reduce((a, b) => a * b, 1);
          const modes = posterior === 'radial' ? (['weights'] as const) : (['weights', 'local'] as const);
          let seed = 30;
          for (const mode of modes) {
            expect(qm.planned({ mode, provider: NATIVE_PROVIDER })).toBe(true);
            for (const [B, L] of [
              [3, 2],
              [1, 3],
            ]) {
              const x = Float32Array.from({ length: B * per }, () => r());
              for (const threads of [1, 2]) {
                const opts = { samples: L, seed: seed++, mode };
                setThreads(threads);
                same(
                  qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits,
                  qm.forward(x, { ...opts, provider: JS_PROVIDER }).logits,
                  `${shape} ${posterior} ${mode} B=${B} L=${L} ${threads} threads`,
                );
              }
            }
          }
        }
    },
  );

  it.skipIf(!runNative)(
    'a 2x2 max pool folded into the convolution before it (pooled int32 sums, one requantisation)',
    async () => {
      // odd planes (floor pooling drops the last row and column), the second pool writing the
      // slot its convolution reads, inputs with flat patches (ties in the windows), all-zero and
      // far past the calibrated range (negative sums under ReLU, sums clamped at 255 or the 4-bit
      // qmax), 8 and 4 bits; the engine pools after requantising. Stride-1 convolutions pool in
      // their epilogue in pairs of rows of 16 columns (8 pooled values a pair, two pairs a kernel
      // tile): the wide model's rows need 3 such column blocks (the last holding 1 pooled value),
      // its planes an odd number of pairs (kernel tiles spanning two images), and its stride-2
      // convolution pools through the int32 buffer instead
      const narrow = () =>
        new Sequential(
          new Conv2d(1, 5, 3, { padding: 1, seed: 11 }),
          new ReLU(),
          new MaxPool2d(2),
          new Conv2d(5, 7, 3, { padding: 1, seed: 12 }),
          new ReLU(),
          new MaxPool2d(2),
          new Flatten(),
          new Linear(7 * 2 * 2, 3, { seed: 13 }),
        );
      const wide = () =>
        new Sequential(
          new Conv2d(1, 5, 3, { padding: 1, seed: 14 }),
          new ReLU(),
          new MaxPool2d(2),
          new Conv2d(5, 6, 3, { padding: 1, seed: 15 }),
          new ReLU(),
          new MaxPool2d(2),
          new Conv2d(6, 4, 3, { padding: 1, stride: 2, seed: 16 }),
          new ReLU(),
          new MaxPool2d(2),
          new Flatten(),
          new Linear(4 * 1 * 2, 3, { seed: 17 }),
        );
      const r = lcg(8);
      for (const [build, h, w] of [
        [narrow, 9, 11],
        [wide, 15, 35],
      ] as const) {
        const shape = [1, h, w];
        const per = h * w;
        for (const bits of [8, 4])
          for (const posterior of ['gaussian', 'mcdropout'] as const) {
            const qm = await quantizedNet(build, posterior, shape, r, bits);
            expect(qm.planned({ mode: 'weights', provider: NATIVE_PROVIDER })).toBe(true);
            const B = 6;
            const x = new Float32Array(B * per);
            for (let b = 2; b < B; b++)
              for (let i = 0; i < per; i++) {
                const y = Math.floor(i / w),
                  c = i % w;
                // b = 2, 3: 2x2-constant patches; b = 4, 5: noise scaled by 8 and -8
                x[b * per + i] =
                  b < 4 ? (((y >> 1) * 7 + (c >> 1) * 3) % 5) / 4 : (b === 4 ? 8 : -8) * (r() - 0.3);
              }
            for (const threads of [1, 2]) {
              setThreads(threads);
              const opts = { samples: 3, seed: 40 + threads, mode: 'weights' as const };
              same(
                qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits,
                qm.forward(x, { ...opts, provider: JS_PROVIDER }).logits,
                `${h}x${w} ${bits}-bit ${posterior} ${threads} threads`,
              );
            }
          }
      }
    },
  );

  it.skipIf(!runNative)('4-bit LeNet-5 Gaussian (low-bit clamps) in both modes', async () => {
    const qm = await quantised('lenet5', 'gaussian', 4);
    // inputs past the calibrated range: convolution outputs above the 4-bit qmax before pooling
    const x = batch(INPUT.lenet5, 5).map((v, i) => v * (1 + (i % 7)));
    for (const mode of ['weights', 'local'] as const) {
      const opts = { samples: 2, seed: 5, mode };
      same(
        qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits,
        qm.forward(x, { ...opts, provider: JS_PROVIDER }).logits,
        `4-bit ${mode}`,
      );
    }
  });

  it.skipIf(!runNative)(
    'a batch of one (Gaussian linear layers drawn row by row and dotted as drawn) equals the engine, 4 and 8 bits',
    async () => {
      for (const bits of [4, 8]) {
        const qm = await quantised('lenet5', 'gaussian', bits);
        // images past the calibrated range (clamped activations) and an all-zero one
        for (const [i, x] of [
          images(INPUT.lenet5, 1, 700).map((v) => v * 3),
          new Float32Array(28 * 28),
        ].entries()) {
          for (const threads of [1, 2]) {
            const opts = { samples: 2, seed: 77 + i, mode: 'weights' as const };
            setThreads(threads);
            same(
              qm.forward(x, { ...opts, provider: NATIVE_PROVIDER }).logits,
              qm.forward(x, { ...opts, provider: JS_PROVIDER }).logits,
              `${bits}-bit image ${i}, ${threads} threads`,
            );
          }
        }
      }
    },
  );

  it.skipIf(!runNative)(
    'float32, float64 and plain-array inputs give the same logits; a value that is not finite is the engine error',
    async () => {
      const qm = await quantised('lenet5', 'gaussian');
      const x32 = batch(INPUT.lenet5, 3);
      const opts = { samples: 2, seed: 21, provider: NATIVE_PROVIDER };
      const engine = qm.forward(x32, { ...opts, plan: false }).logits;
      for (const x of [x32, Float64Array.from(x32), Array.from(x32)]) {
        same(qm.forward(x, opts).logits, engine, x.constructor.name);
      }
      for (const [i, v] of [
        [0, Number.NaN],
        [1000, Number.POSITIVE_INFINITY],
        [x32.length - 1, Number.NEGATIVE_INFINITY],
      ] as const) {
        for (const x of [Float32Array.from(x32), Float64Array.from(x32)]) {
          x[i] = v;
          const message = `x[${i}] must be a finite number, got ${v}`;
          expect(() => qm.forward(x, { ...opts, plan: false })).toThrow(message);
          expect(() => qm.forward(x, opts)).toThrow(expect.objectContaining({ code: 'ERR_NAN', message }));
        }
      }
    },
  );

  it.skipIf(!runNative)(
    'predictProba: the MC predictive computed in the plan equals the engine logits through core meanSoftmax, byte for byte',
    async () => {
      for (const [shape, p] of [
        ['lenet5', 'gaussian'],
        ['mlp', 'mcdropout'],
        ['resnet18', 'sghmc'],
      ] as const) {
        const qm = await quantised(shape, p);
        const s = INPUT[shape];
        for (const [B, L] of [
          [1, 5],
          [shape === 'resnet18' ? 3 : 20, 3],
        ]) {
          const x = B === 1 ? images(s, 1, 600) : batch(s, B);
          for (const threads of [1, 2]) {
            setThreads(threads);
            const opts = { samples: L, seed: 4242, provider: NATIVE_PROVIDER };
            const o = qm.forward(x, { ...opts, plan: false });
            const want = meanSoftmax(o.logits, L, B, o.classes);
            same(qm.predictProba(x, opts), want, `${shape}/${p} B=${B} L=${L} ${threads} threads`);
            same(qm.predictProba(x, { ...opts, plan: false }), want, `${shape}/${p} kernels`);
          }
        }
      }
      // logits that overflow float32 (valid but extreme scales): the engine's error, not NaN probabilities
      const base = await quantised('mlp', 'gaussian');
      const ops = structuredClone(base.ops);
      const last = ops[ops.length - 1] as { layer: { weights: { muQ: { scale: Float64Array | number[] } } } };
      last.layer.weights.muQ.scale[0] = 1e308;
      const extreme = new QuantizedModel(ops, base.inputShape);
      const x = images(INPUT.mlp, 2, 700);
      const opts = { samples: 2, seed: 1, mode: 'local' as const, provider: NATIVE_PROVIDER };
      expect(extreme.planned(opts)).toBe(true);
      const message = (f: () => unknown) => {
        try {
          f();
        } catch (e) {
          return `${(e as { code?: string }).code}: ${(e as Error).message}`;
        }
        return 'no error';
      };
      const engine = message(() => extreme.predictProba(x, { ...opts, plan: false }));
      expect(engine).toMatch(
        /^ERR_NAN: logits\[\d+\] is -?Infinity: the model's quantisation scales overflow/,
      );
      expect(message(() => extreme.predictProba(x, opts))).toBe(engine);
      expect(message(() => extreme.forward(x, opts))).toBe(
        message(() => extreme.forward(x, { ...opts, plan: false })),
      );
      // weights mode: the plan refuses what the kernels refuse, with the same error
      const w = { ...opts, mode: 'weights' as const };
      expect(message(() => extreme.predictProba(x, w))).toBe(
        message(() => extreme.predictProba(x, { ...w, plan: false })),
      );
    },
  );

  it.skipIf(!runNative)(
    'dispose() frees plans and packed weights now; the model then prepares them again',
    async () => {
      for (const p of ['gaussian', 'none'] as const) {
        const qm = await quantised('mlp', p);
        const x = images(INPUT.mlp, 4, 500);
        const opts = { samples: 3, seed: 8, provider: NATIVE_PROVIDER };
        const before = qm.forward(x, opts).logits;
        const local = p === 'gaussian' ? qm.forward(x, { ...opts, mode: 'local' }).logits : undefined;
        const kernels = qm.forward(x, { ...opts, plan: false }).logits;
        // what the calls prepared, read back through the model's memo
        const plan = qm.memo(qm.ops, `plan:${NATIVE_PROVIDER}:weights`, () => undefined) as
          | { plan: { run(a: unknown): unknown } }
          | undefined;
        expect(plan).toBeDefined();
        const last = qm.layers[qm.layers.length - 1];
        const packs =
          p === 'none'
            ? [qm.memo(last.weights, `pack:${NATIVE_PROVIDER}`, () => undefined)]
            : [
                qm.memo(last, `local-mu:${NATIVE_PROVIDER}`, () => undefined),
                (qm.memo(last.weights, `sample-out:${NATIVE_PROVIDER}`, () => undefined) as { pack: unknown })
                  .pack,
              ];
        for (const pk of packs) expect((pk as { disposed: boolean }).disposed).toBe(false);
        qm.dispose();
        for (const pk of packs) expect((pk as { disposed: boolean }).disposed).toBe(true);
        const run = {
          x: new Float64Array(x),
          batch: 4,
          samples: 1,
          keys: new Uint32Array(0),
          scalars: new Float64Array(0),
        };
        expect(() => plan!.plan.run(run)).toThrow(/disposed/);
        qm.dispose(); // twice is fine
        same(qm.forward(x, opts).logits, before, `${p}: plan after dispose`);
        same(qm.forward(x, { ...opts, plan: false }).logits, kernels, `${p}: kernels after dispose`);
        if (local) same(qm.forward(x, { ...opts, mode: 'local' }).logits, local, `${p}: local after dispose`);
      }
    },
  );

  it.skipIf(!runNative)('plan: false and QBNN_PLAN=0 run kernel by kernel', async () => {
    const qm = await quantised('mlp', 'gaussian');
    expect(qm.planned({ provider: NATIVE_PROVIDER, plan: false })).toBe(false);
    expect(qm.planned({ provider: JS_PROVIDER })).toBe(false);
    const saved = process.env.QBNN_PLAN;
    process.env.QBNN_PLAN = '0';
    try {
      expect(qm.planned({ provider: NATIVE_PROVIDER })).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.QBNN_PLAN;
      else process.env.QBNN_PLAN = saved;
    }
    expect(() => qm.forward(new Float32Array(784), { plan: 'yes' as never })).toThrow(
      /opts.plan must be a boolean/,
    );
  });

  it.skipIf(!runNative)(
    'Conv1d and transposed convolutions (2-D, 1-D, cropping, output padding, dilation) run as plans',
    async () => {
      const models: [() => Module, number[]][] = [
        [
          () =>
            new Sequential(
              new Conv1d(2, 4, 3, { stride: 2, padding: 1, seed: 1 }),
              new ReLU(),
              new Conv1d(4, 4, 3, { dilation: 2, seed: 2 }),
              new ReLU(),
              new Flatten(),
              new Linear(16, 3, { seed: 3 }),
            ),
          [2, 16],
        ],
        [
          () =>
            new Sequential(
              // a layer first: MC Dropout masks the inputs of layers after the network input
              new Conv2d(2, 2, 1, { seed: 9 }),
              new ReLU(),
              new ConvTranspose2d(2, 3, 3, { stride: 2, seed: 1 }),
              new ReLU(),
              new Flatten(),
              new Linear(3 * 11 * 11, 3, { seed: 3 }),
            ),
          [2, 5, 5],
        ],
        [
          // padding that crops, output padding, dilation, unequal strides
          () =>
            new Sequential(
              new Conv2d(2, 2, 1, { seed: 9 }),
              new ReLU(),
              new ConvTranspose2d(2, 3, [3, 2], {
                stride: [2, 3],
                padding: [5, 1],
                outputPadding: [1, 2],
                dilation: [2, 1],
                seed: 4,
              }),
              new ReLU(),
              new Flatten(),
              new Linear(3 * 4 * 14, 3, { seed: 5 }),
            ),
          [2, 5, 5],
        ],
        [
          () =>
            new Sequential(
              new Conv1d(2, 2, 1, { seed: 9 }),
              new ReLU(),
              new ConvTranspose1d(2, 4, 3, { stride: 2, padding: 1, seed: 6 }),
              new ReLU(),
              new Flatten(),
              new Linear(4 * 15, 3, { seed: 7 }),
            ),
          [2, 8],
        ],
      ];
      // MC Dropout masks a transposed convolution's input before the spread, as the engine does
      for (const [build, shape] of models)
        for (const posterior of ['gaussian', 'mcdropout'] as const) {
          const r = lcg(3);
          const qm = await quantizedNet(build, posterior, shape, r);
          const per = shape.reduce((a, b) => a * b, 1);
          const x = Float32Array.from({ length: 3 * per }, () => r());
          for (const mode of ['weights', 'local'] as const) {
            expect(qm.planned({ mode, provider: NATIVE_PROVIDER })).toBe(true);
            for (const [B, L] of [
              [3, 2],
              [1, 3],
            ]) {
              const opts = { samples: L, seed: 11, mode };
              same(
                qm.forward(x.subarray(0, B * per), { ...opts, provider: NATIVE_PROVIDER }).logits,
                qm.forward(x.subarray(0, B * per), { ...opts, provider: JS_PROVIDER }).logits,
                `${shape} ${posterior} ${mode} B=${B} L=${L}`,
              );
            }
          }
        }
    },
  );
});
