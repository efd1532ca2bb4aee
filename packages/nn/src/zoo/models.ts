import { QbnnError } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { Flatten, Identity } from '../layers/basic.js';
import { type ResidualBlock, Sequential } from '../layers/container.js';
import { GlobalAvgPool2d, MaxPool2d } from '../layers/pool.js';
import { Module } from '../module.js';
import { Builder, type BuildOptions } from './factory.js';

function posInt(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new QbnnError('ERR_ARG', `${what} must be a positive integer, got ${n}`);
  return n;
}

// ---- regression MLP -------------------------------------------------------------------------

/** Configuration of {@link regressionMlp} (JSON-serialisable: it goes into checkpoints). */
export interface RegressionMlpConfig {
  inFeatures: number;
  /** Outputs per head (default 1). */
  outFeatures?: number;
  /** Hidden width (default 100). */
  hidden?: number;
  /** Hidden layers (default 3). */
  depth?: number;
}

/**
 * The regression network of the Ferianc study: `depth` x [Linear(hidden) + ReLU] then two
 * linear heads, `mean` and `logvar`. `forward` returns `[N, 2 * outFeatures]`: the means in the
 * first `outFeatures` columns, the log-variances in the rest; {@link RegressionMLP.heads} splits.
 */
export class RegressionMLP extends Module {
  readonly outFeatures: number;

  constructor(cfg: RegressionMlpConfig, opts: BuildOptions = {}) {
    super();
    const inF = posInt('inFeatures', cfg.inFeatures);
    const outF = posInt('outFeatures', cfg.outFeatures ?? 1);
    const hidden = posInt('hidden', cfg.hidden ?? 100);
    const depth = posInt('depth', cfg.depth ?? 3);
    this.outFeatures = outF;
    const b = new Builder(opts);
    const body = new Sequential();
    for (let i = 0; i < depth; i++) {
      body.append(b.linear(`body.${2 * i}`, i === 0 ? inF : hidden, hidden));
      body.append(b.relu(`body.${2 * i + 1}`));
    }
    this.registerModule('body', body);
    this.registerModule('mean', b.linear('mean', hidden, outF));
    this.registerModule('logvar', b.linear('logvar', hidden, outF));
  }

  /** Mean and log-variance heads, each `[N, outFeatures]`. */
  heads(x: tf.Tensor): { mean: tf.Tensor; logVar: tf.Tensor } {
    const h = this.child('body').apply(x);
    return { mean: this.child('mean').apply(h), logVar: this.child('logvar').apply(h) };
  }

  forward(x: tf.Tensor): tf.Tensor {
    const { mean, logVar } = this.heads(x);
    return tf.concat([mean, logVar], 1);
  }
}

/** Builds the regression MLP (see {@link RegressionMLP}). */
export function regressionMlp(cfg: RegressionMlpConfig, opts: BuildOptions = {}): RegressionMLP {
  return new RegressionMLP(cfg, opts);
}

// ---- LeNet-5 --------------------------------------------------------------------------------

/** Configuration of {@link lenet5}. */
export interface LeNet5Config {
  /** Input channels (default 1). */
  inChannels?: number;
  /** Classes (default 10). */
  numClasses?: number;
  /** Square input side, a multiple of 4 (default 28). */
  imageSize?: number;
}

/**
 * LeNet-5 as the Ferianc study defines it, NCHW input `[N, 1, 28, 28]`:
 * conv1 (20, 5x5, pad 2) - relu1 - pool1 (2) - conv2 (50, 5x5, pad 2) - relu2 - pool2 (2) -
 * flatten (2450) - fc1 (500) - relu3 - fc2 (10). Returns logits.
 */
export function lenet5(cfg: LeNet5Config = {}, opts: BuildOptions = {}): Sequential {
  const inC = posInt('inChannels', cfg.inChannels ?? 1);
  const classes = posInt('numClasses', cfg.numClasses ?? 10);
  const size = posInt('imageSize', cfg.imageSize ?? 28);
  if (size % 4 !== 0) throw new QbnnError('ERR_ARG', `imageSize must be a multiple of 4, got ${size}`);
  const b = new Builder(opts);
  const flat = 50 * (size / 4) ** 2;
  return new Sequential({
    conv1: b.conv2d('conv1', inC, 20, 5, { padding: 2 }),
    relu1: b.relu('relu1'),
    pool1: new MaxPool2d(2),
    conv2: b.conv2d('conv2', 20, 50, 5, { padding: 2 }),
    relu2: b.relu('relu2'),
    pool2: new MaxPool2d(2),
    flatten: new Flatten(),
    fc1: b.linear('fc1', flat, 500),
    relu3: b.relu('relu3'),
    fc2: b.linear('fc2', 500, classes),
  });
}

// ---- ResNet-18 ------------------------------------------------------------------------------

/**
 * The ResNet BasicBlock: `post(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))`, with 3x3
 * convolutions without bias, a 1x1 strided conv + BN shortcut when the shape changes, and
 * `post` a ReLU (a child, so quantisation can observe the output of the residual add).
 */
export class BasicBlock extends Module implements ResidualBlock {
  constructor(b: Builder, path: string, inC: number, outC: number, stride: number) {
    super();
    this.registerModule(
      'conv1',
      b.conv2d(`${path}.conv1`, inC, outC, 3, { stride, padding: 1, bias: false }),
    );
    this.registerModule('bn1', b.batchNorm2d(`${path}.bn1`, outC));
    this.registerModule('relu1', b.relu(`${path}.relu1`));
    this.registerModule('conv2', b.conv2d(`${path}.conv2`, outC, outC, 3, { padding: 1, bias: false }));
    this.registerModule('bn2', b.batchNorm2d(`${path}.bn2`, outC));
    const shortcut =
      stride !== 1 || inC !== outC
        ? new Sequential(
            b.conv2d(`${path}.shortcut.0`, inC, outC, 1, { stride, bias: false }),
            b.batchNorm2d(`${path}.shortcut.1`, outC),
          )
        : new Identity();
    this.registerModule('shortcut', shortcut);
    this.registerModule('post', b.relu(`${path}.post`));
  }

  residualParts() {
    return { body: ['conv1', 'bn1', 'relu1', 'conv2', 'bn2'], shortcut: 'shortcut', post: 'post' };
  }

  forward(x: tf.Tensor): tf.Tensor {
    let h = this.child('conv1').apply(x);
    h = this.child('relu1').apply(this.child('bn1').apply(h));
    h = this.child('bn2').apply(this.child('conv2').apply(h));
    return this.child('post').apply(tf.add(h, this.child('shortcut').apply(x)));
  }
}

/** Configuration of {@link resnet18}. */
export interface ResNet18Config {
  /** Input channels (default 3). */
  inChannels?: number;
  /** Classes (default 10). */
  numClasses?: number;
  /** Stage widths before the multiplier (default the study's [24, 48, 96, 192]). */
  widths?: [number, number, number, number];
  /** Scales every width, rounded, at least 1 (default 1). */
  widthMultiplier?: number;
  /** BasicBlocks per stage (default [2, 2, 2, 2]). */
  blocks?: [number, number, number, number];
}

/**
 * ResNet-18 for small (CIFAR-sized) NCHW images, as in the Ferianc study: a 3x3 stride-1 stem
 * conv (no max pool) + BN + ReLU, four stages of BasicBlocks (strides 1, 2, 2, 2), global
 * average pooling and a linear classifier. Paths are torch-like: `layer2.0.conv1.weight`.
 */
export function resnet18(cfg: ResNet18Config = {}, opts: BuildOptions = {}): Sequential {
  const inC = posInt('inChannels', cfg.inChannels ?? 3);
  const classes = posInt('numClasses', cfg.numClasses ?? 10);
  const mult = cfg.widthMultiplier ?? 1;
  if (!(mult > 0)) throw new QbnnError('ERR_ARG', `widthMultiplier must be > 0, got ${mult}`);
  const widths = (cfg.widths ?? [24, 48, 96, 192]).map((w) =>
    Math.max(1, Math.round(posInt('width', w) * mult)),
  );
  const blocks = (cfg.blocks ?? [2, 2, 2, 2]).map((n) => posInt('blocks', n));
  const b = new Builder(opts);
  const parts: Record<string, Module> = {
    conv1: b.conv2d('conv1', inC, widths[0], 3, { padding: 1, bias: false }),
    bn1: b.batchNorm2d('bn1', widths[0]),
    relu: b.relu('relu'),
  };
  let c = widths[0];
  widths.forEach((w, s) => {
    const stage = new Sequential();
    for (let i = 0; i < blocks[s]; i++) {
      const stride = i === 0 && s > 0 ? 2 : 1;
      stage.append(new BasicBlock(b, `layer${s + 1}.${i}`, c, w, stride));
      c = w;
    }
    parts[`layer${s + 1}`] = stage;
  });
  parts.pool = new GlobalAvgPool2d();
  parts.fc = b.linear('fc', c, classes);
  return new Sequential(parts);
}
