// Finite-difference gradient checking, for tests of code that differentiates with tfjs.
import { QbnnError } from '../errors.js';

/**
 * Central-difference gradient of a scalar function of a vector, in float64:
 * `g[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h)`, with `h` scaled by `max(1, |x[i]|)`.
 * Error O(h^2) plus rounding O(eps / h): the default h = 1e-5 gives about 1e-9 relative
 * accuracy on smooth float64 functions. `f` must not keep or modify its argument.
 *
 * Write `f` independently of the code under test (plain JS in float64) and compare with the
 * tfjs gradient using {@link gradientError}.
 */
export function numericGradient(
  f: (x: Float64Array) => number,
  x: ArrayLike<number>,
  h = 1e-5,
): Float64Array {
  if (!(h > 0) || !Number.isFinite(h))
    throw new QbnnError('ERR_ARG', `numericGradient: h must be > 0, got ${h}`);
  const xs = Float64Array.from(x);
  const g = new Float64Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const xi = xs[i];
    const step = h * Math.max(1, Math.abs(xi));
    xs[i] = xi + step;
    const fp = f(xs);
    xs[i] = xi - step;
    const fm = f(xs);
    xs[i] = xi;
    const gi = (fp - fm) / (2 * step);
    if (!Number.isFinite(gi)) {
      throw new QbnnError('ERR_NAN', `numericGradient: f is not finite around coordinate ${i} (x = ${xi})`);
    }
    g[i] = gi;
  }
  return g;
}

/**
 * Largest absolute difference between two gradients, relative to the largest magnitude of the
 * reference (`numeric`), floored at `floor` so an all-zero reference does not divide by zero.
 * A float32 tfjs gradient typically agrees with a float64 reference to 1e-5..1e-4.
 */
export function gradientError(analytic: ArrayLike<number>, numeric: ArrayLike<number>, floor = 1e-6): number {
  if (analytic.length !== numeric.length) {
    throw new QbnnError(
      'ERR_SHAPE',
      `gradientError: analytic has ${analytic.length} entries, numeric has ${numeric.length}`,
    );
  }
  let scale = floor;
  let err = 0;
  for (let i = 0; i < numeric.length; i++) {
    scale = Math.max(scale, Math.abs(numeric[i]));
    const d = Math.abs(analytic[i] - numeric[i]);
    err = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(err, d);
  }
  return err / scale;
}
