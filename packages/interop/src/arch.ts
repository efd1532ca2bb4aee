import { QbnnError } from '@qbnn/core';
import {
  AvgPool2d,
  BatchNorm1d,
  BatchNorm2d,
  buildModel,
  type CheckpointContents,
  Conv1d,
  Conv2d,
  Conv3d,
  ConvTranspose1d,
  ConvTranspose2d,
  ConvTranspose3d,
  Dropout,
  Flatten,
  Identity,
  Linear,
  LSTM,
  MaxPool2d,
  type Module,
  ReLU,
  Sequential,
  Sigmoid,
  Tanh,
} from '@qbnn/nn';
import { checkLayersFit, type FitCheck } from './arch-fits.js';

/**
 * One layer of an architecture description, with PyTorch's constructor argument names so a
 * description reads like the torch model it mirrors. `name` is the module's attribute name in
 * torch (its state-dict prefix); unnamed layers of a Sequential take their index, as in torch.
 */
export type LayerSpec = { name?: string } & (
  | { type: 'Linear'; in_features: number; out_features: number; bias?: boolean }
  | {
      type: 'Conv2d';
      in_channels: number;
      out_channels: number;
      kernel_size: number | [number, number];
      stride?: number | [number, number];
      padding?: number | [number, number];
      dilation?: number | [number, number];
      groups?: number;
      bias?: boolean;
    }
  | {
      type: 'Conv1d' | 'ConvTranspose1d';
      in_channels: number;
      out_channels: number;
      kernel_size: number;
      stride?: number;
      padding?: number;
      /** ConvTranspose1d only. */
      output_padding?: number;
      dilation?: number;
      groups?: number;
      bias?: boolean;
    }
  | {
      type: 'Conv3d' | 'ConvTranspose3d';
      in_channels: number;
      out_channels: number;
      kernel_size: number | [number, number, number];
      stride?: number | [number, number, number];
      padding?: number | [number, number, number];
      /** ConvTranspose3d only. */
      output_padding?: number | [number, number, number];
      dilation?: number | [number, number, number];
      groups?: number;
      bias?: boolean;
    }
  | {
      type: 'ConvTranspose2d';
      in_channels: number;
      out_channels: number;
      kernel_size: number | [number, number];
      stride?: number | [number, number];
      padding?: number | [number, number];
      output_padding?: number | [number, number];
      dilation?: number | [number, number];
      groups?: number;
      bias?: boolean;
    }
  | {
      type: 'BatchNorm1d' | 'BatchNorm2d';
      num_features: number;
      eps?: number;
      momentum?: number;
      affine?: boolean;
    }
  | { type: 'ReLU' | 'Tanh' | 'Sigmoid' | 'Flatten' | 'Identity' }
  | { type: 'Dropout'; p?: number }
  | {
      type: 'MaxPool2d' | 'AvgPool2d';
      kernel_size: number | [number, number];
      stride?: number | [number, number];
      padding?: number | [number, number];
    }
  | {
      type: 'LSTM';
      input_size: number;
      hidden_size: number;
      num_layers?: number;
      bias?: boolean;
      batch_first?: boolean;
      /** qbnn's choice of output: every step's hidden state (`sequence`, torch's `output`) or the last. */
      output?: 'sequence' | 'last';
    }
  | { type: 'Sequential'; layers: LayerSpec[] }
);

/**
 * A model architecture: a registered zoo architecture with its config (`{ "zoo": "lenet5" }`),
 * or a sequence of layers applied in order (`{ "layers": [...] }`).
 */
export type ArchSpec = { zoo: string; config?: Record<string, unknown> } | { layers: LayerSpec[] };

type Builder = (s: Record<string, unknown>, at: string) => Module;

function fail(at: string, msg: string): never {
  throw new QbnnError('ERR_ARG', `architecture ${at}: ${msg}`);
}

function num(s: Record<string, unknown>, key: string, at: string, optional = false): number | undefined {
  const v = s[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    fail(`${at}.${key}`, `expected a number, got ${JSON.stringify(v)}`);
  return v;
}

const AXES_WORDS = { 2: 'a pair of numbers', 3: 'three numbers' } as const;

/** A size of one or several spatial axes: a number, or (for 2 or 3 axes) an array of that many. */
function sizeOf(
  s: Record<string, unknown>,
  key: string,
  at: string,
  axes: 1 | 2 | 3,
): number | number[] | undefined {
  const v = s[key];
  if (v === undefined) return undefined;
  if (axes === 1) return num(s, key, at);
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && v.length === axes && v.every((x) => typeof x === 'number')) return [...v];
  return fail(`${at}.${key}`, `expected a number or ${AXES_WORDS[axes]}, got ${JSON.stringify(v)}`);
}

function bool(s: Record<string, unknown>, key: string, at: string): boolean | undefined {
  const v = s[key];
  if (v === undefined || typeof v === 'boolean') return v;
  return fail(`${at}.${key}`, `expected true or false, got ${JSON.stringify(v)}`);
}

function batchNormOptions(s: Record<string, unknown>, at: string) {
  return {
    eps: num(s, 'eps', at, true),
    momentum: num(s, 'momentum', at, true),
    affine: bool(s, 'affine', at),
  };
}

/**
 * A convolution built from torch's constructor arguments, each size of `axes` spatial axes
 * (the layer checks the values; transposed kinds also read `output_padding`).
 */
function convBuilder(
  Layer: new (inChannels: number, outChannels: number, kernelSize: never, options: never) => Module,
  axes: 1 | 2 | 3,
  transposed = false,
): Builder {
  return (s, at) => {
    const size = (key: string) => sizeOf(s, key, at, axes);
    const options = {
      stride: size('stride'),
      padding: size('padding'),
      ...(transposed ? { outputPadding: size('output_padding') } : {}),
      dilation: size('dilation'),
      groups: num(s, 'groups', at, true),
      bias: bool(s, 'bias', at),
    };
    const kernelSize = size('kernel_size') ?? fail(`${at}.kernel_size`, 'required');
    return new Layer(
      num(s, 'in_channels', at) as number,
      num(s, 'out_channels', at) as number,
      kernelSize as never,
      options as never,
    );
  };
}

/** A 2-D pooling layer from torch's constructor arguments. */
function poolBuilder(Layer: new (kernelSize: never, options: never) => Module): Builder {
  return (s, at) => {
    const size = (key: string) => sizeOf(s, key, at, 2);
    const kernelSize = size('kernel_size') ?? fail(`${at}.kernel_size`, 'required');
    return new Layer(kernelSize as never, { stride: size('stride'), padding: size('padding') } as never);
  };
}

/** The layer kinds an architecture description may use, by torch class name. */
const LAYERS: Record<string, Builder> = {
  Linear: (s, at) =>
    new Linear(num(s, 'in_features', at) as number, num(s, 'out_features', at) as number, {
      bias: bool(s, 'bias', at),
    }),
  Conv2d: convBuilder(Conv2d, 2),
  Conv1d: convBuilder(Conv1d, 1),
  ConvTranspose1d: convBuilder(ConvTranspose1d, 1, true),
  Conv3d: convBuilder(Conv3d, 3),
  ConvTranspose2d: convBuilder(ConvTranspose2d, 2, true),
  ConvTranspose3d: convBuilder(ConvTranspose3d, 3, true),
  BatchNorm1d: (s, at) => new BatchNorm1d(num(s, 'num_features', at) as number, batchNormOptions(s, at)),
  BatchNorm2d: (s, at) => new BatchNorm2d(num(s, 'num_features', at) as number, batchNormOptions(s, at)),
  ReLU: () => new ReLU(),
  Tanh: () => new Tanh(),
  Sigmoid: () => new Sigmoid(),
  Identity: () => new Identity(),
  Flatten: () => new Flatten(),
  Dropout: (s, at) => new Dropout(num(s, 'p', at, true) ?? 0.5),
  MaxPool2d: poolBuilder(MaxPool2d),
  AvgPool2d: poolBuilder(AvgPool2d),
  LSTM: (s, at) => {
    const output = s.output ?? 'sequence';
    if (output !== 'sequence' && output !== 'last')
      fail(`${at}.output`, `expected 'sequence' or 'last', got ${JSON.stringify(output)}`);
    return new LSTM(num(s, 'input_size', at) as number, num(s, 'hidden_size', at) as number, {
      numLayers: num(s, 'num_layers', at, true),
      bias: bool(s, 'bias', at),
      batchFirst: bool(s, 'batch_first', at),
      output,
    });
  },
  Sequential: (s, at) => sequential(s.layers, `${at}.layers`),
};

/** Adds a layer kind to architecture descriptions (by torch class name). */
export function registerLayerSpec(
  type: string,
  build: (spec: Record<string, unknown>, at: string) => Module,
): void {
  LAYERS[type] = build;
}

/** The layer kinds architecture descriptions accept. */
export function layerSpecTypes(): string[] {
  return Object.keys(LAYERS).sort();
}

function sequential(layers: unknown, at: string): Sequential {
  if (!Array.isArray(layers) || layers.length === 0) fail(at, 'expected a non-empty array of layers');
  // pairs, not an object: an object would put unnamed (index) layers before named ones
  const parts: [string, Module][] = [];
  layers.forEach((raw, i) => {
    const here = `${at}[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(here, 'expected an object');
    const s = raw as Record<string, unknown>;
    const name = s.name === undefined ? String(i) : s.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9_]+$/.test(name))
      fail(`${here}.name`, `'${String(name)}' is not a torch attribute name`);
    if (parts.some(([n]) => n === name)) fail(`${here}.name`, `'${name}' is used twice`);
    const build = typeof s.type === 'string' ? LAYERS[s.type] : undefined;
    if (!build)
      fail(
        `${here}.type`,
        `unknown layer type ${JSON.stringify(s.type)} (known: ${layerSpecTypes().join(', ')})`,
      );
    try {
      parts.push([name, build(s, here)]);
    } catch (err) {
      if (err instanceof QbnnError && !err.message.startsWith('architecture')) fail(here, err.message);
      throw err;
    }
  });
  return new Sequential(parts);
}

/**
 * Builds the deterministic @qbnn/nn model an architecture describes (a zoo name, `{ zoo,
 * config }`, or `{ layers }`). Errors name the offending path (`layers[3].kernel_size`).
 * With `fit` (the tensors the model is to be loaded from, described as `source`), the sizes a
 * `{ layers }` description claims are checked against them before anything is allocated (see
 * {@link FitCheck}); a checkpoint's zoo config is checked by the zoo builder itself.
 */
export function buildArch(
  arch: ArchSpec | string,
  fit?: { contents: CheckpointContents; source: string; check: FitCheck },
): Module {
  const contents = fit?.check === 'exact' ? fit.contents : undefined;
  if (typeof arch === 'string') return buildModel(arch, {}, contents);
  if (typeof arch !== 'object' || arch === null) fail('', 'expected a zoo name or an object');
  if ('zoo' in arch) {
    if (typeof arch.zoo !== 'string') fail('.zoo', 'expected an architecture name');
    return buildModel(arch.zoo, arch.config ?? {}, contents);
  }
  if ('layers' in arch) {
    if (fit) checkLayersFit(arch.layers, fit.contents, fit.source, fit.check);
    return sequential(arch.layers, 'layers');
  }
  return fail('', 'expected { "zoo": name } or { "layers": [...] }');
}
