import { QbnnError, Rng } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';
import { checkFiniteTensor } from './inputs.js';

/** A named tensor map, as returned by {@link Module.stateDict}. */
export type StateDict = Record<string, tf.Tensor>;

/** Options of {@link Module.registerParameter}. */
export interface ParameterOptions {
  /** Whether optimisers update it (default true). Frozen parameters still load and save. */
  trainable?: boolean;
}

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateOptions {
  /**
   * Strict (default): every parameter and persistent buffer of the module must be in the dict
   * and the dict must hold nothing else. Shapes and dtypes are checked in both modes.
   */
  strict?: boolean;
}

/** Called after a module's forward with its input and output (see {@link Module.registerForwardHook}). */
export type ForwardHook = (module: Module, input: tf.Tensor, output: tf.Tensor) => void;

interface BufferEntry {
  value: tf.Variable;
  persistent: boolean;
}

/** A short description of a value that is not what was expected, for error messages. */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? (v.constructor?.name ?? 'an object') : typeof v;
}

const NAME_RE = /^[A-Za-z0-9_]+$/;

function checkName(kind: string, name: string): void {
  if (!NAME_RE.test(name)) {
    throw new QbnnError('ERR_ARG', `${kind} name must match ${NAME_RE}, got '${name}'`);
  }
}

/**
 * The base of every layer and model, in the spirit of `torch.nn.Module`.
 *
 * A module owns named parameters (tfjs `Variable`s, trainable or frozen), named buffers
 * (non-trainable state such as BatchNorm running statistics, also `Variable`s so they can be
 * updated in place) and named child modules. Names are joined with dots into paths exactly
 * like PyTorch (`features.0.weight`), which is also the key format of {@link stateDict} and of
 * checkpoints.
 *
 * Conventions for subclasses:
 * - implement {@link forward}; call modules through {@link apply} (which runs forward hooks);
 * - `forward` allocates tensors but never disposes its input, and it is not wrapped in
 *   `tf.tidy`: the caller is (fit, evaluate, or a user's `tf.tidy`);
 * - look child modules up by name at forward time with {@link child} (not through a field set
 *   in the constructor), so {@link setModule} can replace them (quantisation wrappers,
 *   Bayesian layers);
 * - stochastic modules override {@link reseed} so {@link seedAll} makes a whole model
 *   deterministic.
 */
export abstract class Module {
  /** Training mode flag; change it with {@link train} / {@link eval}, which propagate it. */
  training = true;
  private readonly _params = new Map<string, tf.Variable>();
  private readonly _buffers = new Map<string, BufferEntry>();
  private readonly _modules = new Map<string, Module>();
  private readonly _hooks = new Set<ForwardHook>();
  private _disposed = false;

  /** The computation; see the class notes for the memory conventions. */
  abstract forward(x: tf.Tensor): tf.Tensor;

  /** Runs {@link forward} then the forward hooks. Use this to call a module. */
  apply(x: tf.Tensor): tf.Tensor {
    if (this._disposed) throw new QbnnError('ERR_ARG', `${this.constructor.name}: module was disposed`);
    const y = this.forward(x);
    for (const h of this._hooks) h(this, x, y);
    return y;
  }

  /**
   * Adds a hook called after each forward (inside the caller's tidy scope: keep() what you
   * retain). Returns a function removing it. Observers for quantisation use this.
   */
  registerForwardHook(hook: ForwardHook): () => void {
    this._hooks.add(hook);
    return () => {
      this._hooks.delete(hook);
    };
  }

  /** Whether a forward hook is registered (containers fuse only modules nothing observes). */
  hasForwardHooks(): boolean {
    return this._hooks.size > 0;
  }

  /** A short description used by {@link toString}; layers override it. */
  extraRepr(): string {
    return '';
  }

  // ---- registration -------------------------------------------------------------------------

  /**
   * Registers `value` as a parameter (it is copied into a new Variable the module owns; the
   * caller keeps ownership of `value`). Returns the Variable.
   */
  registerParameter(name: string, value: tf.Tensor, opts: ParameterOptions = {}): tf.Variable {
    checkName('parameter', name);
    this.checkFree(name);
    const v = tf.variable(value, opts.trainable ?? true);
    this._params.set(name, v);
    return v;
  }

  /**
   * Registers a buffer: state that is not optimised (BatchNorm running statistics). Persistent
   * buffers (default) are part of the state dict. Copied into a module-owned Variable.
   */
  registerBuffer(name: string, value: tf.Tensor, persistent = true): tf.Variable {
    checkName('buffer', name);
    this.checkFree(name);
    const v = tf.variable(value, false);
    this._buffers.set(name, { value: v, persistent });
    return v;
  }

  /** Registers a child module under `name` and returns it. */
  registerModule<M extends Module>(name: string, module: M): M {
    checkName('module', name);
    this.checkFree(name);
    if (!(module instanceof Module)) {
      throw new QbnnError('ERR_ARG', `registerModule('${name}'): not a Module`);
    }
    this._modules.set(name, module);
    return module;
  }

  private checkFree(name: string): void {
    if (this._params.has(name) || this._buffers.has(name) || this._modules.has(name)) {
      throw new QbnnError('ERR_ARG', `${this.constructor.name}: name '${name}' is already registered`);
    }
  }

  /** The direct parameter `name` of this module (throws if absent). */
  param(name: string): tf.Variable {
    const v = this._params.get(name);
    if (!v) throw new QbnnError('ERR_UNKNOWN', `${this.constructor.name} has no parameter '${name}'`);
    return v;
  }

  /** Whether this module has a direct parameter `name`. */
  hasParam(name: string): boolean {
    return this._params.has(name);
  }

  /** The direct buffer `name` of this module (throws if absent). */
  buffer(name: string): tf.Variable {
    const b = this._buffers.get(name);
    if (!b) throw new QbnnError('ERR_UNKNOWN', `${this.constructor.name} has no buffer '${name}'`);
    return b.value;
  }

  /** The direct child `name` (throws if absent). */
  child<M extends Module = Module>(name: string): M {
    const m = this._modules.get(name);
    if (!m) throw new QbnnError('ERR_UNKNOWN', `${this.constructor.name} has no child module '${name}'`);
    return m as M;
  }

  /**
   * Replaces a parameter's Variable (disposing the old one unless `dispose` is false).
   * Bayesian conversions use this to swap storage; the name must already exist.
   */
  replaceParameter(
    name: string,
    value: tf.Tensor,
    opts: ParameterOptions & { dispose?: boolean } = {},
  ): tf.Variable {
    const old = this.param(name);
    const v = tf.variable(value, opts.trainable ?? old.trainable);
    this._params.set(name, v);
    if (opts.dispose ?? true) old.dispose();
    return v;
  }

  /** Removes and returns a direct parameter (the caller now owns the Variable). */
  deleteParameter(name: string): tf.Variable {
    const v = this.param(name);
    this._params.delete(name);
    return v;
  }

  // ---- traversal -----------------------------------------------------------------------------

  /** Direct children in registration order. */
  children(): Module[] {
    return [...this._modules.values()];
  }

  /** Direct children with their names. */
  namedChildren(): [string, Module][] {
    return [...this._modules.entries()];
  }

  /**
   * This module and every descendant, depth first in registration order, with dotted paths
   * (the root has path `''`, or `prefix`). Each module object is listed once.
   */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const walk = (m: Module, path: string): void => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([path, m]);
      for (const [n, c] of m._modules) walk(c, path ? `${path}.${n}` : n);
    };
    walk(this, prefix);
    return out;
  }

  /** This module and all descendants (see {@link namedModules}). */
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** The module at a dotted path (`''` is this module). */
  getModule(path: string): Module {
    if (path === '') return this;
    let m: Module = this;
    for (const part of path.split('.')) {
      const c = m._modules.get(part);
      if (!c) throw new QbnnError('ERR_UNKNOWN', `no module at path '${path}' (missing '${part}')`);
      m = c;
    }
    return m;
  }

  /**
   * Replaces the module at a dotted path by `module` and returns the old one, which is NOT
   * disposed (a wrapper may hold it). The path must exist.
   */
  setModule(path: string, module: Module): Module {
    if (path === '') throw new QbnnError('ERR_ARG', 'setModule: cannot replace the root module');
    if (!(module instanceof Module)) throw new QbnnError('ERR_ARG', `setModule('${path}'): not a Module`);
    const dot = path.lastIndexOf('.');
    const parent = this.getModule(dot < 0 ? '' : path.slice(0, dot));
    const name = path.slice(dot + 1);
    const old = parent._modules.get(name);
    if (!old) throw new QbnnError('ERR_UNKNOWN', `setModule: no module at path '${path}'`);
    parent._modules.set(name, module);
    return old;
  }

  /**
   * Every parameter with its dotted path, PyTorch order (own parameters first, then children
   * in registration order). A Variable shared between modules is listed once.
   */
  namedParameters(opts: { trainableOnly?: boolean } = {}): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    const seen = new Set<tf.Variable>();
    for (const [path, m] of this.namedModules()) {
      for (const [n, v] of m._params) {
        if (seen.has(v) || (opts.trainableOnly && !v.trainable)) continue;
        seen.add(v);
        out.push([path ? `${path}.${n}` : n, v]);
      }
    }
    return out;
  }

  /** Every parameter (see {@link namedParameters}). */
  parameters(opts: { trainableOnly?: boolean } = {}): tf.Variable[] {
    return this.namedParameters(opts).map(([, v]) => v);
  }

  /** Trainable parameters: what an optimiser updates. */
  trainableParameters(): tf.Variable[] {
    return this.parameters({ trainableOnly: true });
  }

  /** Every buffer with its dotted path (non-persistent ones only if asked). */
  namedBuffers(opts: { includeNonPersistent?: boolean } = {}): [string, tf.Variable][] {
    const out: [string, tf.Variable][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [n, b] of m._buffers) {
        if (!b.persistent && !opts.includeNonPersistent) continue;
        out.push([path ? `${path}.${n}` : n, b.value]);
      }
    }
    return out;
  }

  /** Sets whether every parameter of this module tree is trainable. */
  requiresGrad(trainable = true): this {
    for (const v of this.parameters()) v.trainable = trainable;
    return this;
  }

  /** Total number of parameter elements. */
  numParameters(opts: { trainableOnly?: boolean } = {}): number {
    return this.parameters(opts).reduce((s, v) => s + v.size, 0);
  }

  // ---- modes ----------------------------------------------------------------------------------

  /** Sets training mode on this module and all descendants. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Evaluation mode (`train(false)`): dropout off, BatchNorm uses running statistics. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Reseeds every stochastic module of the tree from one seed: module i in
   * {@link namedModules} order gets `new Rng(seed).fork(i)` (or `seed.fork(i)` for an Rng).
   * Makes sampling reproducible.
   */
  seedAll(seed: number | Rng): this {
    const root = seed instanceof Rng ? seed : new Rng(seed);
    this.namedModules().forEach(([, m], i) => {
      m.reseed(root.fork(i));
    });
    return this;
  }

  /** Stochastic modules override this to take a new random stream; the default does nothing. */
  reseed(_rng: Rng): void {}

  // ---- state ----------------------------------------------------------------------------------

  /**
   * Parameters and persistent buffers by dotted name. The tensors are the module's own
   * Variables (not copies): do not dispose them; use `tf.clone` to snapshot.
   */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [n, v] of this.namedParameters()) out[n] = v;
    for (const [n, v] of this.namedBuffers()) out[n] = v;
    return out;
  }

  /**
   * Copies values from `state` into this module's parameters and buffers. Shapes and dtypes
   * must match exactly (ERR_SHAPE otherwise); in strict mode (default) missing or unexpected
   * keys are an ERR_FORMAT. A parameter's value must be finite: a NaN or infinity is an
   * ERR_NAN naming the key and the first bad flat index (it would spread through every forward
   * and gradient). Buffers are not checked: they may legitimately hold infinities (an additive
   * attention mask of -Infinity, a running minimum that starts at +Infinity). Nothing is
   * changed if any check fails. The caller keeps ownership of `state`. Returns the keys that
   * were missing and unexpected (non-strict mode).
   */
  loadStateDict(state: StateDict, opts: LoadStateOptions = {}): { missing: string[]; unexpected: string[] } {
    if (typeof state !== 'object' || state === null) {
      throw new QbnnError('ERR_ARG', `loadStateDict: state must be an object of tensors, got ${state}`);
    }
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const params = new Set(this.namedParameters().map(([n]) => n));
    const missing = Object.keys(own).filter((k) => !(k in state));
    const unexpected = Object.keys(state).filter((k) => !(k in own));
    if (strict && (missing.length > 0 || unexpected.length > 0)) {
      throw new QbnnError(
        'ERR_FORMAT',
        `loadStateDict: missing keys [${missing.join(', ')}], unexpected keys [${unexpected.join(', ')}]`,
      );
    }
    const pairs: [tf.Variable, tf.Tensor][] = [];
    for (const [k, v] of Object.entries(own)) {
      if (!(k in state)) continue;
      const t: unknown = state[k];
      if (!(t instanceof tf.Tensor)) {
        throw new QbnnError('ERR_ARG', `loadStateDict: '${k}' must be a tensor, got ${describe(t)}`);
      }
      if (t.isDisposed) throw new QbnnError('ERR_ARG', `loadStateDict: '${k}' is a disposed tensor`);
      if (!tf.util.arraysEqual(t.shape, v.shape)) {
        throw new QbnnError(
          'ERR_SHAPE',
          `loadStateDict: '${k}' has shape [${t.shape}], expected [${v.shape}]`,
        );
      }
      if (t.dtype !== v.dtype) {
        throw new QbnnError('ERR_FORMAT', `loadStateDict: '${k}' has dtype ${t.dtype}, expected ${v.dtype}`);
      }
      if (params.has(k)) checkFiniteTensor(`loadStateDict: parameter '${k}'`, t);
      pairs.push([v as tf.Variable, t]);
    }
    // Every check passed: now change. Sources are cloned first (a clone shares the data and
    // holds a reference), so a dict holding the module's own Variables (a self-load, or
    // values swapped between keys) reads the old values, not ones already overwritten or freed.
    const sources = pairs.map(([, t]) => tf.clone(t));
    pairs.forEach(([v], i) => {
      v.assign(sources[i]);
    });
    tf.dispose(sources);
    return { missing, unexpected };
  }

  /** Disposes every parameter and buffer of the tree. The module is unusable afterwards. */
  dispose(): void {
    for (const m of this.modules()) {
      if (m._disposed) continue;
      m._disposed = true;
      for (const v of m._params.values()) v.dispose();
      for (const b of m._buffers.values()) b.value.dispose();
    }
  }

  /** Whether {@link dispose} was called. */
  get isDisposed(): boolean {
    return this._disposed;
  }

  /** A torch-like printout of the tree. */
  toString(): string {
    const lines: string[] = [];
    const walk = (m: Module, name: string, indent: string): void => {
      const head = `${indent}${name ? `(${name}): ` : ''}${m.constructor.name}(${m.extraRepr()}`;
      if (m._modules.size === 0) {
        lines.push(`${head})`);
        return;
      }
      lines.push(head);
      for (const [n, c] of m._modules) walk(c, n, `${indent}  `);
      lines.push(`${indent})`);
    };
    walk(this, '', '');
    return lines.join('\n');
  }
}
