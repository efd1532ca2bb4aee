import { QbnnError, RELU_GRAD } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../module.js';
import { Identity, ReLU } from './basic.js';
import { nativeFloatKernels } from './native-float.js';
import { MaxPool2d } from './pool.js';

/**
 * Applies its children in order. Children are named `'0'`, `'1'`, ... (torch style), by
 * `[name, module]` pairs in order, or by the keys of an object; replacing one with
 * {@link Module.setModule} keeps its place.
 */
export class Sequential extends Module {
  constructor(...modules: Module[] | [Record<string, Module>] | [ReadonlyArray<readonly [string, Module]>]) {
    super();
    const first = modules[0];
    if (modules.length === 1 && Array.isArray(first)) {
      first.forEach((pair: unknown, i) => {
        if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') {
          throw new QbnnError(
            'ERR_ARG',
            `Sequential: an array argument must hold [name, module] pairs; entry ${i} is ${pair instanceof Module ? `a ${pair.constructor.name} (pass modules as arguments: new Sequential(a, b))` : String(pair)}`,
          );
        }
        this.registerModule(pair[0], pair[1]);
      });
    } else if (modules.length === 1 && !(first instanceof Module)) {
      if (first === null || typeof first !== 'object') {
        throw new QbnnError(
          'ERR_ARG',
          `Sequential: takes modules, [name, module] pairs or an object of named modules; got ${String(first)}`,
        );
      }
      const names = Object.keys(first as Record<string, Module>);
      // JavaScript lists integer-like keys first, whatever order they were written in
      const indexLike = names.filter((n) => /^(0|[1-9][0-9]*)$/.test(n));
      if (indexLike.length > 0 && indexLike.length < names.length) {
        throw new QbnnError(
          'ERR_ARG',
          `Sequential: an object mixing index names [${indexLike}] with other names cannot keep its order (JavaScript puts integer keys first); pass [name, module] pairs instead`,
        );
      }
      for (const [n, m] of Object.entries(first as Record<string, Module>)) this.registerModule(n, m);
    } else {
      (modules as Module[]).forEach((m, i) => {
        this.registerModule(String(i), m);
      });
    }
  }

  /** Appends a module named by its position. */
  append(module: Module): this {
    this.registerModule(String(this.children().length), module);
    return this;
  }

  /** Number of children. */
  get length(): number {
    return this.children().length;
  }

  /** The i-th child. */
  at<M extends Module = Module>(i: number): M {
    const c = this.children()[i];
    if (!c) throw new QbnnError('ERR_ARG', `Sequential.at(${i}): out of range (length ${this.length})`);
    return c as M;
  }

  forward(x: tf.Tensor): tf.Tensor {
    const modules = this.children();
    let y = x;
    for (let i = 0; i < modules.length; i++) {
      const layer = modules[i];
      const fused = reluMaxPoolFusable(layer, modules[i + 1], modules[i + 2])
        ? layer.forwardReluMaxPool(y)
        : null;
      if (fused) {
        y = fused;
        i += 2;
        continue;
      }
      const pool = modules[i + 1];
      if (pool !== undefined && reluThenMaxPool(modules[i], pool)) {
        y = tf.relu(pool.apply(y));
        i++;
      } else {
        y = modules[i].apply(y);
      }
    }
    return y;
  }
}

/**
 * Whether `relu` then `pool` may run as the max pool then the ReLU: a plain ReLU followed by a
 * plain MaxPool2d that nothing observes, on the native fp32 kernels. Both are monotone, so
 * relu(max(window)) = max(relu(window)): the same values (a zero may differ in sign; a window of
 * NaN only pools to 0 instead of -inf), while the ReLU and its gradient run on the pooled
 * quarter of the activations (LeNet-5's conv layers). The gradient reaches the same input:
 * the window's first maximum when it is positive, nothing otherwise. Without the native kernels
 * the modules run as they are.
 */
function reluThenMaxPool(relu: Module, pool: Module): boolean {
  return (
    Object.getPrototypeOf(relu) === ReLU.prototype &&
    Object.getPrototypeOf(pool) === MaxPool2d.prototype &&
    !relu.hasForwardHooks() &&
    !pool.hasForwardHooks() &&
    nativeFloatKernels('MaxPool', 'MaxPoolGrad', RELU_GRAD)
  );
}

/**
 * A module that can run itself followed by a ReLU and a 2 x 2 stride-2 max pool as one pass
 * (e.g. a convolution with the pool in its epilogue, so that its output never goes to memory).
 */
export interface ReluMaxPoolFusable {
  /** relu(maxPool2x2(this.forward(x))), or null when this input or mode cannot run fused. */
  forwardReluMaxPool(x: tf.Tensor): tf.Tensor | null;
}

/**
 * Whether `layer`, `relu`, `pool` may run as `layer.forwardReluMaxPool`: a fusable layer, a plain
 * ReLU and a plain 2 x 2 stride-2 unpadded MaxPool2d, none observed by a forward hook.
 */
function reluMaxPoolFusable(
  layer: Module,
  relu: Module | undefined,
  pool: Module | undefined,
): layer is Module & ReluMaxPoolFusable {
  return (
    typeof (layer as Partial<ReluMaxPoolFusable>).forwardReluMaxPool === 'function' &&
    relu !== undefined &&
    pool !== undefined &&
    Object.getPrototypeOf(relu) === ReLU.prototype &&
    Object.getPrototypeOf(pool) === MaxPool2d.prototype &&
    [...(pool as MaxPool2d).kernelSize, ...(pool as MaxPool2d).stride].every((v) => v === 2) &&
    (pool as MaxPool2d).padding.every((v) => v === 0) &&
    !layer.hasForwardHooks() &&
    !relu.hasForwardHooks() &&
    !pool.hasForwardHooks()
  );
}

/** Options of {@link Residual}. */
export interface ResidualOptions {
  /** Applied to the input on the skip path (default identity; e.g. a strided 1x1 conv + BN). */
  shortcut?: Module;
  /** Applied after the addition (default identity; ReLU in a ResNet BasicBlock). */
  post?: Module;
}

/**
 * A module computing `post(body(x) + shortcut(x))` whose parts are its children, marked as such
 * for passes that rewrite a model (quantisation folds, observes and converts each part): the
 * names of the body's children in execution order, and the names of the shortcut and post
 * children.
 */
export interface ResidualBlock {
  residualParts(): { body: readonly string[]; shortcut: string; post: string };
}

/** Whether a module declares itself a {@link ResidualBlock}. */
export function isResidualBlock(m: Module): m is Module & ResidualBlock {
  return typeof (m as Partial<ResidualBlock>).residualParts === 'function';
}

/**
 * Residual add: `post(body(x) + shortcut(x))`. The three parts are children named `body`,
 * `shortcut` and `post`, so a quantisation pass can put an observer or fake-quant after the
 * add by replacing `post`.
 */
export class Residual extends Module implements ResidualBlock {
  constructor(body: Module, opts: ResidualOptions = {}) {
    super();
    this.registerModule('body', body);
    this.registerModule('shortcut', opts.shortcut ?? new Identity());
    this.registerModule('post', opts.post ?? new Identity());
  }

  residualParts() {
    return { body: ['body'], shortcut: 'shortcut', post: 'post' };
  }

  forward(x: tf.Tensor): tf.Tensor {
    const a = this.child('body').apply(x);
    const b = this.child('shortcut').apply(x);
    if (!tf.util.arraysEqual(a.shape, b.shape)) {
      throw new QbnnError('ERR_SHAPE', `Residual: body gives [${a.shape}], shortcut gives [${b.shape}]`);
    }
    return this.child('post').apply(tf.add(a, b));
  }
}
