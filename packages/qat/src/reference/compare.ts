import type { QOp } from '../engine/ir.js';
import type { EngineInput, QuantizedForwardOptions, QuantizedModel } from '../engine/quantized-model.js';
import { simulateTrace } from './simulate.js';

/** How far the integer engine is from its float64 reference on one call (see {@link compareWithReference}). */
export interface ReferenceComparison {
  /** Largest distance of a u8 activation's real value from the reference's, in steps of its grid. */
  maxSteps: number;
  /** Share of activations that differ at all (more than 1e-6 of a step). */
  differing: number;
  /** Activations compared. */
  activations: number;
  /** Share of logits within `logitTolerance` of the reference's. */
  logitsClose: number;
  /** The engine's logits. */
  logits: Float32Array;
}

/**
 * Runs a quantised model in the integer engine and in the float64 reference (same seed, same
 * draws) and measures the distance of every u8 activation after each top-level op from the
 * reference's real value, in quantisation steps of its grid. The engine's contract is at most
 * one step (rounding of a sum computed exactly in integers vs in float64), rarely reached.
 */
export function compareWithReference(
  model: QuantizedModel,
  x: EngineInput,
  opts: QuantizedForwardOptions = {},
  logitTolerance = 1e-4,
): ReferenceComparison {
  const it8 = model.trace(x, opts);
  const ref = simulateTrace(model, x, opts);
  let grid: { scale: number; zeroPoint: number } | undefined;
  let maxSteps = 0;
  let differing = 0;
  let activations = 0;
  model.ops.forEach((op: QOp, i) => {
    if (op.op === 'layer') grid = op.layer.output ?? undefined;
    else if ('q' in op) grid = op.q;
    const si = it8.states[i];
    const sf = ref.states[i];
    if (!si || !sf || !grid) return;
    if (si.data.length !== sf.data.length) {
      maxSteps = Number.POSITIVE_INFINITY;
      return;
    }
    for (let j = 0; j < si.data.length; j++) {
      const steps = Math.abs(grid.scale * (si.data[j] - grid.zeroPoint) - sf.data[j]) / grid.scale;
      if (steps > maxSteps) maxSteps = steps;
      if (steps > 1e-6) differing++;
      activations++;
    }
  });
  const yi = it8.output.logits;
  const yf = ref.output.logits;
  let close = 0;
  for (let j = 0; j < yi.length; j++) if (Math.abs(yi[j] - yf[j]) <= logitTolerance) close++;
  return {
    maxSteps,
    differing: activations > 0 ? differing / activations : 0,
    activations,
    logitsClose: yi.length === yf.length ? close / yi.length : 0,
    logits: yi,
  };
}
