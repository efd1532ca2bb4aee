import { QbnnError } from '@qbnn/core';
import type { QLayerSpec, QLstm, QOp, QPool, QResidual } from './ir.js';

/**
 * One interpretation of the IR: what each op does to the activation state `S` between ops.
 * The integer engine's table computes on u8 tensors (engine/int-ops.ts), the float64 reference's
 * on real values (@qbnn/qat/testing); a native plan compiler can use a symbolic `S` (a buffer
 * and its grid) and emit one instruction per op instead of computing.
 */
export interface OpTable<S> {
  /** The network input, quantised onto the first grid. */
  quantize(op: Extract<QOp, { op: 'quantize' }>): S;
  /**
   * A linear or conv layer. `index` is the layer's position in execution order (residual bodies
   * before shortcuts): its random streams are forked from the call's seed by it.
   */
  layer(layer: QLayerSpec, s: S, index: number): S;
  relu(op: Extract<QOp, { op: 'relu' }>, s: S): S;
  pool(op: QPool, s: S): S;
  globalAvgPool(op: Extract<QOp, { op: 'globalavgpool2d' }>, s: S): S;
  flatten(s: S): S;
  /** The residual add of the two branches' outputs (`shortcut` is the block's input for an identity). */
  residual(op: QResidual, body: S, shortcut: S): S;
  /**
   * An LSTM; its maps are layers `index` (ih) and `index + 1` (hh). Optional: a table without it
   * refuses models with an LSTM (ERR_UNSUPPORTED), so a compiler can leave it to the engine.
   */
  lstm?(op: QLstm, s: S, index: number): S;
}

/** What {@link walk} returns: the final layer's state and, when asked, the state after every top-level op. */
export interface Walked<S> {
  /** The state the last layer (float output) produced. */
  output: S;
  /** States after each top-level op before the last layer (when `trace` was set). */
  states: S[];
}

/**
 * Runs an op list through a table: ops in order, residual blocks as body then shortcut then the
 * add, layers numbered in execution order. The only place that knows the IR's control flow.
 */
export function walk<S>(ops: readonly QOp[], table: OpTable<S>, trace = false): Walked<S> {
  let index = 0;
  const states: S[] = [];
  const run = (list: readonly QOp[], input: S | undefined, top: boolean): S | undefined => {
    let st = input;
    for (const op of list) {
      const need = (): S => {
        if (st === undefined)
          throw new QbnnError('ERR_ARG', `QuantizedModel: '${op.op}' runs before the input is quantised`);
        return st;
      };
      switch (op.op) {
        case 'quantize':
          st = table.quantize(op);
          break;
        case 'layer':
          st = table.layer(op.layer, need(), index++);
          if (top && op.layer.output === null) return st;
          break;
        case 'residual': {
          const x = need();
          const body = run(op.body, x, false) as S;
          const shortcut = op.shortcut.length > 0 ? (run(op.shortcut, x, false) as S) : x;
          st = table.residual(op, body, shortcut);
          break;
        }
        case 'relu':
          st = table.relu(op, need());
          break;
        case 'maxpool2d':
        case 'avgpool2d':
          st = table.pool(op, need());
          break;
        case 'globalavgpool2d':
          st = table.globalAvgPool(op, need());
          break;
        case 'flatten':
          st = table.flatten(need());
          break;
        case 'lstm':
          if (!table.lstm)
            throw new QbnnError(
              'ERR_UNSUPPORTED',
              `QuantizedModel: this interpretation has no LSTM op ('${op.path}')`,
            );
          st = table.lstm(op, need(), index);
          index += 2;
          break;
      }
      if (top && trace && st !== undefined) states.push(st);
    }
    return st;
  };
  const output = run(ops, undefined, true);
  if (output === undefined) throw new QbnnError('ERR_ARG', 'QuantizedModel: no output layer');
  return { output, states };
}
