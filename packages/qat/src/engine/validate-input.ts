import { MAX_FORWARD_ELEMENTS, nonFiniteLogit, QbnnError } from '@qbnn/core';
import type { EngineMode } from './ir.js';
import { getKernelProvider } from './provider.js';

// The checks of a forward call's arguments, shared by the integer engine (forward, trace,
// predictProba) and its float twin (simulate), so both accept and reject exactly the same calls.

/** The engine's modes, in the order error messages list them. */
export const ENGINE_MODES: readonly EngineMode[] = Object.freeze(['weights', 'local']);

/** Memory budget of one forward call, in activation elements (core's, which plan runs check too). */
export { MAX_FORWARD_ELEMENTS };

/** The checked options of a forward call. */
export interface CheckedForward {
  values: ArrayLike<number>;
  batch: number;
  samples: number;
  mode: EngineMode;
  seed: number | undefined;
  provider: string | undefined;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : (v.constructor?.name ?? 'an object');
  return `${typeof v} ${String(v)}`;
}

/** The numbers of an input: an array, a numeric typed array, or a tensor's dataSync(). */
function inputValues(x: unknown): ArrayLike<number> {
  let v = x;
  if (v !== null && typeof v === 'object' && typeof (v as { dataSync?: unknown }).dataSync === 'function') {
    if ((v as { isDisposed?: unknown }).isDisposed === true)
      throw new QbnnError('ERR_ARG', 'x is a disposed tensor');
    v = (v as { dataSync(): unknown }).dataSync();
  }
  if (Array.isArray(v)) return v;
  if (
    ArrayBuffer.isView(v) &&
    !(v instanceof DataView) &&
    !(v instanceof BigInt64Array || v instanceof BigUint64Array)
  )
    return v as unknown as ArrayLike<number>;
  throw new QbnnError(
    'ERR_ARG',
    `x must be an array or typed array of numbers, or a tensor with dataSync(); got ${describe(x)}`,
  );
}

/** Throws at the first entry of `v` that is not a finite number, naming its index. */
export function checkFiniteValues(name: string, v: ArrayLike<number>): void {
  const typed = ArrayBuffer.isView(v);
  for (let i = 0; i < v.length; i++) {
    const e = v[i];
    if (typed ? Number.isFinite(e) : typeof e === 'number' && Number.isFinite(e)) continue;
    if (typeof e !== 'number')
      throw new QbnnError('ERR_ARG', `${name}[${i}] must be a number, got ${describe(e)}`);
    throw new QbnnError('ERR_NAN', `${name}[${i}] must be a finite number, got ${e}`);
  }
}

function checkSamples(v: unknown): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new QbnnError('ERR_ARG', `opts.samples must be an integer >= 1, got ${describe(v)}`);
  return v;
}

function checkMode(v: unknown): EngineMode {
  if (v === undefined) return 'weights';
  if (!ENGINE_MODES.includes(v as EngineMode)) {
    throw new QbnnError(
      'ERR_ARG',
      `opts.mode must be one of ${ENGINE_MODES.map((m) => `'${m}'`).join(', ')}; got ${describe(v)}`,
    );
  }
  return v as EngineMode;
}

/**
 * The options a forward call shares with `planned`: `opts` an object (or undefined), a known
 * mode, `provider` a string, `plan` a boolean. A QbnnError ERR_ARG names the one that is not.
 */
export function checkCallOptions(opts: unknown): { mode: EngineMode; provider?: string; plan?: boolean } {
  if (opts === null || (opts !== undefined && typeof opts !== 'object'))
    throw new QbnnError('ERR_ARG', `opts must be an object of forward options, got ${describe(opts)}`);
  const o = (opts ?? {}) as Record<string, unknown>;
  const mode = checkMode(o.mode);
  if (o.provider !== undefined && typeof o.provider !== 'string')
    throw new QbnnError(
      'ERR_ARG',
      `opts.provider must be a provider name (string), got ${describe(o.provider)}`,
    );
  if (o.plan !== undefined && typeof o.plan !== 'boolean')
    throw new QbnnError('ERR_ARG', `opts.plan must be a boolean, got ${describe(o.plan)}`);
  return { mode, provider: o.provider as string | undefined, plan: o.plan as boolean | undefined };
}

/**
 * A tensor input (anything with a numeric `shape`) must hold examples of the model's input shape:
 * [batch, ...inputShape], flat [batch, values an example] or [values], or those with axes of size
 * 1 added or dropped. Another shape of the same size (channels last [B, 32, 32, 3] for a
 * [3, 32, 32] model) would be read as the wrong pixels: an ERR_SHAPE naming both shapes.
 */
function checkTensorShape(x: unknown, batch: number, inputShape: readonly number[]): void {
  const shape = (x as { shape?: unknown } | null)?.shape;
  if (!Array.isArray(shape) || shape.length <= 2 || inputShape.length <= 1) return;
  const squeeze = (s: readonly number[]) => s.filter((d) => d !== 1);
  const want = squeeze(inputShape);
  const got = squeeze(shape[0] === batch ? shape.slice(1) : shape);
  if (got.length === want.length && got.every((d, i) => d === want[i])) return;
  throw new QbnnError(
    'ERR_SHAPE',
    `x has shape [${shape}]; expected [batch, ${inputShape}] (the model's input shape; a flat [batch, ${inputShape.reduce((a, b) => a * b, 1)}] works too)`,
  );
}

/**
 * Checks a forward call: `x` a batch of finite numbers whose length is a positive multiple of
 * the per-example size `perExample`, the options (samples an integer >= 1, a known mode, seed
 * and provider), and the memory the call needs (samples x batch x `maxActivation` within
 * {@link MAX_FORWARD_ELEMENTS}). Every failure is a QbnnError naming the argument. `finite:
 * 'later'` leaves the finiteness of the values to the caller (an execution plan checks them
 * natively, with the same error).
 */
export function checkForward(
  x: unknown,
  opts: unknown,
  perExample: number,
  inputShape: readonly number[],
  maxActivation: number,
  finite: 'check' | 'later' = 'check',
): CheckedForward {
  const { mode } = checkCallOptions(opts);
  const o = (opts ?? {}) as Record<string, unknown>;
  const values = inputValues(x);
  if (values.length === 0 || values.length % perExample !== 0) {
    throw new QbnnError(
      'ERR_SHAPE',
      `x has ${values.length} values; expected a positive multiple of ${perExample} (a batch of [${inputShape}])`,
    );
  }
  const batch = values.length / perExample;
  checkTensorShape(x, batch, inputShape);
  const samples = checkSamples(o.samples);
  if (o.seed !== undefined && (typeof o.seed !== 'number' || !Number.isSafeInteger(o.seed) || o.seed < 0))
    throw new QbnnError('ERR_ARG', `opts.seed must be a non-negative safe integer, got ${describe(o.seed)}`);
  // looked up here so that the engine and its reference (which runs no kernel) refuse the same names
  if (o.provider !== undefined) getKernelProvider(o.provider as string);
  const need = samples * batch * maxActivation;
  if (need > MAX_FORWARD_ELEMENTS) {
    throw new QbnnError(
      'ERR_ARG',
      `opts.samples ${samples} x batch ${batch} x the largest activation (${maxActivation} values an example) = ${need} exceeds the forward budget of ${MAX_FORWARD_ELEMENTS} elements: use fewer samples or a smaller batch`,
    );
  }
  if (finite === 'check') checkFiniteValues('x', values);
  return {
    values,
    batch,
    samples,
    mode,
    seed: o.seed as number | undefined,
    provider: o.provider as string | undefined,
  };
}

/**
 * Throws when a call's logits are not all finite: valid but extreme parameters (a scale of
 * 1e308, say) can overflow float32, and such a result must not pass as a prediction.
 */
export function checkLogits(logits: Float32Array): Float32Array {
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i])) throw nonFiniteLogit(i, logits[i]);
  }
  return logits;
}
