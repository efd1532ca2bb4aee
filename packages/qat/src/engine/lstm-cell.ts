import { roundHalfEven } from '@qbnn/core';
import type { QuantParams } from '../spec.js';
import { qmaxOf } from './requant.js';

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/**
 * One LSTM step of the integer engine from the two maps' float pre-activations `[B, 4H]` (gates
 * i, f, g, o): the cell state `c` is updated in float64 and h = o tanh(c) is quantised onto `q`
 * (round half to even, saturated), in place.
 */
export function lstmStepU8(
  gi: Float32Array,
  gh: Float32Array,
  c: Float64Array,
  h: Uint8Array,
  B: number,
  H: number,
  q: QuantParams,
): void {
  const hi = qmaxOf(q);
  for (let b = 0; b < B; b++) {
    const g = b * 4 * H;
    for (let j = 0; j < H; j++) {
      const at = (gate: number) => gi[g + gate * H + j] + gh[g + gate * H + j];
      const cell = sigmoid(at(1)) * c[b * H + j] + sigmoid(at(0)) * Math.tanh(at(2));
      c[b * H + j] = cell;
      const v = roundHalfEven((sigmoid(at(3)) * Math.tanh(cell)) / q.scale) + q.zeroPoint;
      h[b * H + j] = Math.min(hi, Math.max(0, v));
    }
  }
}
