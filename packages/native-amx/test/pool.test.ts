import { referenceKernels as js, type Pool2dSpec, qconv2dPool, qpool2d } from '@qbnn/core';
import { afterAll, describe, expect, test } from 'vitest';
import { int, rng, sameBytes } from '../../core/test/kernel-cases.js';
import { addon } from '../src/binding.js';
import { nativeKernels as nat, nativeAvailable, setIsa, setThreads } from '../src/index.js';
import { paths } from './helpers.js';

function poolSpec(r: () => number): Pool2dSpec {
  const kh = int(r, 1, 3);
  const kw = int(r, 1, 3);
  return {
    kind: r() < 0.5 ? 'max' : 'avg',
    kernel: [kh, kw],
    stride: r() < 0.3 ? undefined : [int(r, 1, 3), int(r, 1, 3)],
    padding: [int(r, 0, kh >> 1), int(r, 0, kw >> 1)],
  };
}

describe.skipIf(!nativeAvailable)('u8 pooling and fused conv + pool match the JS reference', () => {
  afterAll(() => {
    setIsa('best');
    setThreads(2);
  });

  test('qpool2d: random geometries, kinds and zero points', () => {
    const r = rng(3);
    for (let s = 0; s < 200; s++) {
      const pool = poolSpec(r);
      const xShape: [number, number, number, number] = [
        int(r, 1, 3),
        int(r, 1, 4),
        int(r, 3, 13),
        int(r, 3, 13),
      ];
      const x = Uint8Array.from({ length: xShape.reduce((a, b) => a * b) }, () => int(r, 0, 255));
      const args = { x, xShape, zeroPoint: int(r, 0, 255), pool };
      sameBytes(nat.qpool2d?.(args) as Uint8Array, qpool2d(args), `case ${s} ${JSON.stringify(pool)}`);
    }
  });

  test('qpool2d: 2x2 / stride 2 max (the vectorised path) on odd and even sizes, rows of 1 to 70 outputs', () => {
    const r = rng(5);
    // widths around the 32-output steps of the vector kernel, odd heights and widths (a row
    // or column left out), planes of one example and several
    for (const w of [2, 3, 5, 28, 29, 63, 64, 65, 66, 127, 140, 141]) {
      const xShape: [number, number, number, number] = [int(r, 1, 3), int(r, 1, 3), int(r, 2, 7), w];
      const x = Uint8Array.from({ length: xShape.reduce((a, b) => a * b) }, () => int(r, 0, 255));
      const args = { x, xShape, zeroPoint: int(r, 0, 255), pool: { kind: 'max', kernel: [2, 2] } } as const;
      sameBytes(nat.qpool2d?.(args) as Uint8Array, qpool2d(args), `w ${w} shape ${xShape}`);
    }
  });

  for (const path of paths()) {
    test(`qconv2dPool: random convolutions then pooling; LeNet-5's conv + 2x2 max (${path})`, () => {
      setIsa(path as never);
      const r = rng(11 + path.length);
      const cases: {
        c: number;
        o: number;
        h: number;
        k: number;
        pad: number;
        batch: number;
        pool: Pool2dSpec;
      }[] = [
        { c: 1, o: 20, h: 28, k: 5, pad: 2, batch: 3, pool: { kind: 'max', kernel: [2, 2] } },
        { c: 20, o: 50, h: 14, k: 5, pad: 2, batch: 7, pool: { kind: 'max', kernel: [2, 2] } },
        { c: 20, o: 50, h: 14, k: 5, pad: 2, batch: 2, pool: { kind: 'avg', kernel: [2, 2] } },
      ];
      for (let s = 0; s < 25; s++) {
        const k = int(r, 1, 3);
        cases.push({
          c: int(r, 1, 30),
          o: int(r, 1, 40),
          h: int(r, 4, 12),
          k,
          pad: int(r, 0, 1),
          batch: int(r, 1, 5),
          pool: poolSpec(r),
        });
      }
      for (const [s, cs] of cases.entries()) {
        const kg = cs.c * cs.k * cs.k;
        const w = Int8Array.from({ length: cs.o * kg }, () => int(r, -128, 127));
        const zw = Int32Array.from({ length: cs.o }, () => (s % 2 ? 0 : int(r, -4, 4)));
        const args = {
          x: Uint8Array.from({ length: cs.batch * cs.c * cs.h * cs.h }, () => int(r, 0, 255)),
          xShape: [cs.batch, cs.c, cs.h, cs.h] as [number, number, number, number],
          xScale: 0.02,
          xZeroPoint: int(r, 0, 255),
          wShape: [cs.o, cs.c, cs.k, cs.k] as [number, number, number, number],
          wScale: 0.004,
          bias: Int32Array.from({ length: cs.o }, () => int(r, -5000, 5000)),
          padding: [cs.pad, cs.pad] as [number, number],
          output: { kind: 'u8' as const, scale: 5 + r() * 100, zeroPoint: int(r, 0, 50), relu: r() < 0.7 },
          pool: cs.pool,
        };
        const want = qconv2dPool({ ...args, w: js.packWeights(w, cs.o, kg, zw) });
        const got = nat.qconv2dPool?.({ ...args, w: nat.packWeights(w, cs.o, kg, zw) }) as Uint8Array;
        sameBytes(got, want, `${path} case ${s} ${JSON.stringify(cs)}`);
      }
    });
  }

  test('qconv2dPool does not depend on the thread count', () => {
    setIsa('best');
    const r = rng(77);
    const w = nat.packWeights(
      Int8Array.from({ length: 50 * 500 }, () => int(r, -128, 127)),
      50,
      500,
      0,
    );
    const args = {
      x: Uint8Array.from({ length: 9 * 20 * 196 }, () => int(r, 0, 255)),
      xShape: [9, 20, 14, 14] as [number, number, number, number],
      xScale: 0.02,
      xZeroPoint: 7,
      w,
      wShape: [50, 20, 5, 5] as [number, number, number, number],
      wScale: 0.003,
      padding: [2, 2] as [number, number],
      output: { kind: 'u8' as const, scale: 40, zeroPoint: 3, relu: true },
      pool: { kind: 'max', kernel: [2, 2] } as Pool2dSpec,
    };
    const outs = [1, 2, 3].map((t) => {
      setThreads(t);
      return nat.qconv2dPool?.(args) as Uint8Array;
    });
    for (const o of outs) sameBytes(o, outs[0], 'threads');
  });

  test('validation: the wrapper (QbnnError) and the raw addon (RangeError)', () => {
    const x = new Uint8Array(16);
    const xShape = [1, 1, 4, 4] as [number, number, number, number];
    expect(() =>
      nat.qpool2d?.({ x, xShape, zeroPoint: 0, pool: { kind: 'max', kernel: [2, 2], padding: [2, 0] } }),
    ).toThrow(/padding/);
    expect(() =>
      nat.qpool2d?.({
        x,
        xShape,
        zeroPoint: 0,
        pool: { kind: 'max', kernel: [2, 2] },
        out: new Uint8Array(5),
      }),
    ).toThrow(/length/);
    const raw = addon as NonNullable<typeof addon>;
    const shape = Int32Array.of(1, 1, 4, 4);
    expect(() => raw.qpool2d(x, shape, 0, Int32Array.of(0, 2, 2, 2, 2, 2, 0), new Uint8Array(4))).toThrow(
      RangeError,
    );
    expect(() => raw.qpool2d(x, shape, 0, Int32Array.of(2, 2, 2, 2, 2, 0, 0), new Uint8Array(4))).toThrow(
      RangeError,
    );
    expect(() => raw.qpool2d(x, shape, 0, Int32Array.of(0, 2, 2, 2, 2, 0, 0), new Uint8Array(5))).toThrow(
      RangeError,
    );
    expect(() => raw.qpool2d(x, shape, 0, Int32Array.of(0, 9, 2, 2, 2, 0, 0), new Uint8Array(4))).toThrow(
      RangeError,
    );
    expect(() =>
      raw.qpool2d(new Uint8Array(15), shape, 0, Int32Array.of(0, 2, 2, 2, 2, 0, 0), new Uint8Array(4)),
    ).toThrow(RangeError);
  });
});
