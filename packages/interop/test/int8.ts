import type { QuantizedModel } from '@qbnn/qat';
import { simulateTrace } from '@qbnn/qat/testing';
import { expect } from 'vitest';

type Grid = { scale: number; zeroPoint: number };

/**
 * Runs `qm` in the integer engine and in the float64 reference of @qbnn/qat/testing (same seed,
 * same draws) and checks every u8 activation is within one quantisation step of the reference's
 * real value, fewer than 1% differ at all, and most logits agree to 1e-4. Returns the engine's logits.
 */
export function expectEngineMatchesReference(
  qm: QuantizedModel,
  x: Float32Array,
  opts: { samples: number; seed: number; mode?: 'weights' | 'local' },
): Float32Array {
  const it8 = qm.trace(x, opts);
  const ref = simulateTrace(qm, x, opts);
  expect(it8.states.length).toBe(ref.states.length);
  let grid: Grid | undefined;
  let differing = 0;
  let total = 0;
  qm.ops.forEach((op, i) => {
    if (op.op === 'layer') grid = op.layer.output ?? undefined;
    else if ('q' in op) grid = op.q;
    const si = it8.states[i];
    const sf = ref.states[i];
    if (!si || !grid) return;
    expect(si.data.length).toBe(sf.data.length);
    for (let j = 0; j < si.data.length; j++) {
      const d = Math.abs(grid.scale * (si.data[j] - grid.zeroPoint) - sf.data[j]);
      expect(d).toBeLessThanOrEqual(grid.scale * 1.0000001);
      if (d > grid.scale * 1e-6) differing++;
      total++;
    }
  });
  expect(total).toBeGreaterThan(0);
  expect(differing / total).toBeLessThan(0.01);
  const yi = it8.output.logits;
  const yf = ref.output.logits;
  let close = 0;
  for (let j = 0; j < yi.length; j++) if (Math.abs(yi[j] - yf[j]) < 1e-4) close++;
  expect(close / yi.length).toBeGreaterThan(0.9);
  return yi;
}
