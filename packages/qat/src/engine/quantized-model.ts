import '../forms/builtins.js';
import { meanSoftmax, QbnnError, Rng } from '@qbnn/core';
import { getIntegerForm } from '../forms/registry.js';
import { restoreWeights, type StoredWeights, storeWeights } from '../forms/stored.js';
import type { IntegerWeights } from '../forms/types.js';
import { checkQuantizedModel } from './check-model.js';
import { type IntState, integerOps, type Memo } from './int-ops.js';
import { type EngineMode, layersOf, type QLayerSpec, type QOp, type QuantizedOutput, sizeOf } from './ir.js';
import { type CompiledPlan, compilePlan, planCallArgs } from './plan.js';
import { getKernelProvider } from './provider.js';
import { checkCallOptions, checkFiniteValues, checkForward, checkLogits } from './validate-input.js';
import { walk } from './walker.js';

/** Whether loaded weights still refer to packed tensors (a form keeping them for its kernels). */
function keepsPacked(w: IntegerWeights): boolean {
  return (w as { packed?: unknown }).packed !== undefined;
}

/** Options of {@link QuantizedModel.forward}. */
export interface QuantizedForwardOptions {
  /** Monte Carlo samples L (default 1). */
  samples?: number;
  /** Seed of every random draw of this call (default: a counter advanced per call). */
  seed?: number;
  /** `weights` (sample a weight tensor per MC sample, default) or `local` (local reparameterisation of Gaussian layers). */
  mode?: EngineMode;
  /** Kernel provider name (default: the registry's highest priority). */
  provider?: string;
  /**
   * Run the whole forward as one execution plan when the provider supports it (default true;
   * the environment variable QBNN_PLAN=0 turns plans off everywhere). Results are identical
   * either way; false calls the kernels one by one (for comparisons and debugging).
   */
  plan?: boolean;
}

/** A float input batch: a flat row-major array, or anything with `dataSync()` (a tfjs tensor). */
export type EngineInput = ArrayLike<number> | { dataSync(): ArrayLike<number> };

/** One layer as {@link QuantizedModel.describe} reports it. */
export interface LayerDescription {
  path: string;
  op: QLayerSpec['op'];
  /** The integer form of its weights (`gaussian`, `radial`, `mcdropout`, `ensemble`, `fixed`, or a plugin's). */
  form: string;
  /** Whether every Monte Carlo sample draws new weights. */
  stochastic: boolean;
  /** MC Dropout probability on its input, if any. */
  dropout?: number;
  weightBits: number;
  inputBits: number;
  /** Bits of the output grid, or null for the float logits of the last layer. */
  outputBits: number | null;
  /** Output channels and reduction length. */
  n: number;
  k: number;
  sizeBytes: number;
}

/** What {@link QuantizedModel.describe} returns. */
export interface ModelDescription {
  inputShape: number[];
  classes: number;
  layers: LayerDescription[];
  sizeBytes: number;
}

/**
 * A quantised (Bayesian) network that computes in integers (DESIGN.md sections 2 and 3).
 *
 * Its {@link QOp} list (the IR) holds every layer's weights in a registered integer form
 * (mu_q and sigma_q of Gaussian and Radial layers, the members of ensembles, fixed weights, or a
 * plugin's form), float biases, and the quantisation parameters of every tensor. Per MC sample
 * each stochastic layer's form draws its weights in integers (Gaussian: eps_q from the exact
 * quantised normal, n = Q(eps sigma), w = Q(mu + n) through the kernel provider's fused
 * sampler); every linear and convolution runs through the kernel registry of @qbnn/core (the JS
 * reference, or a native provider once registered). Activations stay u8 between layers; the
 * last layer returns float logits (the f32 output of its GEMM).
 *
 * The float64 reference of the same model (fake quantisation at every point, brute-force linear
 * algebra, the same random draws) is `simulate` in `@qbnn/qat/testing`, a test oracle.
 */
export class QuantizedModel {
  readonly ops: QOp[];
  /** Per-example input shape, e.g. [1, 28, 28]. */
  readonly inputShape: number[];
  private calls = 0;
  /** Largest per-example activation (elements): bounds a forward call's memory. */
  private readonly maxActivation: number;
  private readonly memoStore = new WeakMap<object, Map<string, unknown>>();
  /** Every memo entry in the order made, for {@link dispose}. */
  private memoEntries: { entries: Map<string, unknown>; tag: string }[] = [];
  /**
   * Layers with packed tensors: their form, and the packed weights until the layer is first used
   * (then its unpacked weights, kept with the prepared values, replace them).
   */
  private readonly packedLayers = new WeakMap<QLayerSpec, { kind: string; stored?: StoredWeights }>();
  /** Per layer, computed from the weights as given (describe() unpacks nothing). */
  private readonly descriptions: LayerDescription[];

  constructor(ops: QOp[], inputShape: readonly number[]) {
    this.maxActivation = checkQuantizedModel(ops, inputShape).maxActivation;
    if (ops.length === 0 || ops[0].op !== 'quantize') {
      throw new QbnnError('ERR_ARG', 'QuantizedModel: the first op must quantize the input');
    }
    const layers = ops.filter((o) => o.op === 'layer' || o.op === 'residual');
    if (layers.length === 0) throw new QbnnError('ERR_ARG', 'QuantizedModel: no linear or conv layer');
    const last = ops[ops.length - 1];
    if (last.op !== 'layer' || last.layer.output !== null) {
      throw new QbnnError('ERR_ARG', 'QuantizedModel: the last op must be a layer with float output');
    }
    for (const l of layersOf(ops)) getIntegerForm(l.weights.kind);
    this.descriptions = layersOf(ops).map(describeLayer);
    this.ops = this.keepPacked(ops);
    this.inputShape = [...inputShape];
  }

  /**
   * The ops as this model keeps them: a layer whose form declares integer tensors of fewer than
   * 8 bits becomes a copy holding them packed, its `weights` read through {@link layerWeights}.
   * Other layers are kept as given.
   */
  private keepPacked(ops: QOp[]): QOp[] {
    return ops.map((op): QOp => {
      if (op.op === 'residual')
        return { ...op, body: this.keepPacked(op.body), shortcut: this.keepPacked(op.shortcut) };
      if (op.op !== 'layer') return op;
      const l = op.layer;
      const stored = storeWeights(getIntegerForm(l.weights.kind), l.weights, l);
      if (!stored.packed) return op;
      const { weights: _unpacked, ...rest } = l;
      const spec = rest as QLayerSpec;
      this.packedLayers.set(spec, { kind: stored.kind, stored });
      Object.defineProperty(spec, 'weights', { enumerable: true, get: () => this.layerWeights(spec) });
      return { ...op, layer: spec };
    });
  }

  /**
   * A layer's weights as the forms and kernels use them: for a layer kept packed, its form's
   * load over the packed tensors on first use, kept with the model's prepared values (the one
   * place every interpretation of the IR, the JS walker, the float64 reference or a native plan,
   * gets weights from). `layer.weights` of this model's ops reads this. A form may keep tensors
   * packed for kernels that read packed input (the Gaussian and Radial forms keep mu and sigma
   * packed for the fused sampler and unpack them only when read one value a byte: the float64
   * reference, local mode, plans); the packed copy is then kept. Otherwise it is dropped, so a
   * model in use holds its weights once.
   */
  layerWeights(layer: QLayerSpec): IntegerWeights {
    const p = this.packedLayers.get(layer);
    if (!p) return layer.weights;
    return this.memo(layer, 'unpacked-weights', () => {
      const w = restoreWeights(getIntegerForm(p.kind), p.stored!, layer, layer.path);
      if (!keepsPacked(w)) p.stored = undefined;
      return w;
    });
  }

  /** A layer's weights at rest (packed below 8 bits): what a saved file holds. */
  storedWeights(layer: QLayerSpec): StoredWeights {
    const stored = this.packedLayers.get(layer)?.stored;
    if (stored) return stored;
    return storeWeights(getIntegerForm(layer.weights.kind), this.layerWeights(layer), layer);
  }

  /** The layers, in execution order. */
  get layers(): QLayerSpec[] {
    return layersOf(this.ops);
  }

  /** A value kept with this model across calls (packed weights, per-layer constants). */
  readonly memo: Memo = <T>(key: object, tag: string, make: () => T): T => {
    let m = this.memoStore.get(key);
    if (!m) {
      m = new Map();
      this.memoStore.set(key, m);
    }
    if (!m.has(tag)) {
      m.set(tag, make());
      this.memoEntries.push({ entries: m, tag });
    }
    return m.get(tag) as T;
  };

  /**
   * Frees now the native memory this model prepared: execution plans (their arenas and drawn
   * weights), packed weights and sampled-weight buffers of every provider, instead of when they
   * are garbage collected (a plan can hold 64 MB). The model stays usable: the next call
   * prepares what it needs again. Weights, unpacked or not, are kept.
   */
  dispose(): void {
    // newest first: a plan goes before the packed weights it was compiled from
    const kept: typeof this.memoEntries = [];
    for (const e of this.memoEntries.reverse()) {
      if (releaseNative(e.entries.get(e.tag))) e.entries.delete(e.tag);
      else kept.push(e);
    }
    this.memoEntries = kept.reverse();
  }

  /**
   * The seed, sample count and batch of one call, checked: what every interpretation of the IR
   * (this engine, the float64 reference) starts from.
   */
  prepareCall(input: EngineInput, opts: QuantizedForwardOptions, finite: 'check' | 'later' = 'check') {
    const c = checkForward(input, opts, sizeOf(this.inputShape), this.inputShape, this.maxActivation, finite);
    return {
      x: c.values,
      B: c.batch,
      L: c.samples,
      mode: c.mode,
      provider: c.provider,
      root: new Rng(c.seed ?? 0x51ab0000 + this.calls++),
    };
  }

  /**
   * Runs L Monte Carlo samples in integer arithmetic. `x` is a float batch [B, ...inputShape],
   * row-major. Returns the float logits of every sample.
   */
  forward(x: EngineInput, opts: QuantizedForwardOptions = {}): QuantizedOutput {
    return this.run(x, opts, false).output;
  }

  /** The integer activations after every op (for tests and debugging) and the output. */
  trace(x: EngineInput, opts: QuantizedForwardOptions = {}): { states: IntState[]; output: QuantizedOutput } {
    return this.run(x, opts, true);
  }

  /** Mean predictive probabilities over L samples, [B, classes] (softmax of each sample's logits). */
  predictProba(x: EngineInput, opts: QuantizedForwardOptions = {}): Float32Array {
    const r = this.run(x, opts, false, true);
    const o = r.output;
    return r.probs ?? meanSoftmax(o.logits, o.samples, o.batch, o.classes);
  }

  /**
   * Whether {@link forward} with these options runs as one execution plan of the provider
   * (a provider with plans, every layer's form with a plan hook, every op supported).
   */
  planned(opts: Pick<QuantizedForwardOptions, 'mode' | 'provider' | 'plan'> = {}): boolean {
    // the checks of forward's options: a mode forward refuses is not 'planned'
    const o = checkCallOptions(opts);
    return this.planFor(o.provider, o.mode, o.plan) !== undefined;
  }

  /** The compiled plan for (provider, mode), compiled once and kept; undefined when plans are off or unsupported. */
  private planFor(
    providerName: string | undefined,
    mode: EngineMode,
    wanted?: boolean,
  ): CompiledPlan | undefined {
    if (wanted === false || plansDisabled()) return undefined;
    const provider = getKernelProvider(providerName);
    if (!provider.createPlan) return undefined;
    return this.memo(this.ops, `plan:${provider.name}:${mode}`, () =>
      compilePlan(this.ops, this.inputShape, mode, provider, this.memo),
    );
  }

  private run(
    input: EngineInput,
    opts: QuantizedForwardOptions,
    trace: boolean,
    reduce = false,
  ): { states: IntState[]; output: QuantizedOutput; probs?: Float32Array } {
    // a float typed array goes to a plan as it is, which checks its values natively
    const call = this.prepareCall(input, opts, 'later');
    const last = this.ops[this.ops.length - 1] as Extract<QOp, { op: 'layer' }>;
    const compiled = trace ? undefined : this.planFor(call.provider, call.mode, opts.plan);
    const floats = call.x instanceof Float64Array || call.x instanceof Float32Array;
    if (!compiled || !floats) checkFiniteValues('x', call.x);
    if (compiled) {
      const { keys, scalars } = planCallArgs(compiled, call.root, call.L);
      const x = floats ? (call.x as Float64Array | Float32Array) : Float64Array.from(call.x);
      const args = { x, batch: call.B, samples: call.L, keys, scalars };
      const shape = { samples: call.L, batch: call.B, classes: last.layer.n };
      // the MC predictive in the same native call (it checks the logits itself)
      if (reduce) {
        const probs = compiled.plan.run({ ...args, reduce: 'meanSoftmax' });
        return { states: [], output: { logits: new Float32Array(0), ...shape }, probs };
      }
      return { states: [], output: { logits: checkLogits(compiled.plan.run(args)), ...shape } };
    }
    const table = integerOps(
      { ...call, inputShape: this.inputShape, provider: getKernelProvider(call.provider) },
      this.memo,
    );
    const r = walk(this.ops, table, trace);
    return {
      states: r.states,
      output: {
        logits: checkLogits(r.output.data as Float32Array),
        samples: call.L,
        batch: call.B,
        classes: last.layer.n,
      },
    };
  }

  /** The model's layers, forms, bit widths and size, for reports (no engine internals). */
  describe(): ModelDescription {
    const layers = this.descriptions.map((d) => ({ ...d }));
    const last = layers[layers.length - 1];
    return {
      inputShape: [...this.inputShape],
      classes: last.n,
      layers,
      sizeBytes: layers.reduce((a, l) => a + l.sizeBytes, 0),
    };
  }

  /** Bytes of the integer model: each form's stored tensors, and 24 bytes of layer metadata. */
  sizeBytes(): number {
    return this.describe().sizeBytes;
  }
}

function describeLayer(l: QLayerSpec): LayerDescription {
  const form = getIntegerForm(l.weights.kind);
  return {
    path: l.path,
    op: l.op,
    form: form.kind,
    stochastic: form.stochastic(l.weights) || l.dropout !== undefined,
    ...(l.dropout ? { dropout: l.dropout.p } : {}),
    weightBits: form.weightBits(l.weights),
    inputBits: l.input.bits,
    outputBits: l.output?.bits ?? null,
    n: l.n,
    k: l.k,
    sizeBytes: form.sizeBytes(l.weights) + 24,
  };
}

/** Something with native memory to free now: an execution plan or packed weights. */
interface Disposable {
  dispose(): void;
}

function isDisposable(v: unknown): v is Disposable {
  return v !== null && typeof v === 'object' && typeof (v as Disposable).dispose === 'function';
}

/**
 * Disposes `v` if it holds native memory (itself disposable, or an object or array holding
 * disposables one level down: a compiled plan, a sampler's destination pack); true when it did.
 */
function releaseNative(v: unknown): boolean {
  if (isDisposable(v)) {
    v.dispose();
    return true;
  }
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return false;
  let any = false;
  // data properties only: a getter (weights unpacked on first read) is not run for this
  const values = Array.isArray(v)
    ? v
    : Object.values(Object.getOwnPropertyDescriptors(v)).map((d) => d.value);
  for (const inner of values) {
    if (isDisposable(inner)) {
      inner.dispose();
      any = true;
    }
  }
  return any;
}

/** QBNN_PLAN=0 in the environment (where there is one) turns execution plans off. */
function plansDisabled(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.QBNN_PLAN === '0';
}
