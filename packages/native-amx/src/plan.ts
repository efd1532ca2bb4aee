import {
  checkGaussianSampleArgs,
  checkPlanRunArgs,
  type ExecutionPlan,
  type KernelLimits,
  nonFiniteLogit,
  type PackedWeights,
  type PlanDescription,
  type PlanRunArgs,
  type PlanWeights,
  QbnnError,
} from '@qbnn/core';
import type { NativeAddon } from './binding.js';
import { rawInts } from './raw-ints.js';

/** The addon's view of a description: packed weights replaced by their native handles. */
function rawWeights(
  w: PlanWeights,
  n: number,
  k: number,
  handleOf: (p: PackedWeights, name: string) => unknown,
  limits: KernelLimits,
  at: string,
): unknown {
  const packed = (p: PackedWeights, name: string) => ({ handle: handleOf(p, name) });
  if (w.kind === 'sets') {
    return {
      ...w,
      sets: w.sets.map((s, i) => ({ ...s, packed: packed(s.packed, `${at}.sets[${i}].packed`) })),
    };
  }
  if (w.kind === 'gaussian') {
    // the sampler's arguments pass the kernel contract's own checks
    checkGaussianSampleArgs({ ...w.args, n, k, key: [0, 0], position: 0 }, limits);
    // packed mu / sigma go as their bytes and bits, as to the addon's sampler
    const [mu, muBits] = rawInts(w.args.mu, true);
    const [sigma, sigmaBits] = rawInts(w.args.sigma, false);
    return { ...w, args: { ...w.args, mu, muBits, sigma, sigmaBits } };
  }
  return { ...w, mean: packed(w.mean, `${at}.mean`), variance: packed(w.variance, `${at}.variance`) };
}

/**
 * A native execution plan (native/src/plan.cc): the description checked and copied into native
 * memory once; `run` executes every sample of a forward in one call. The description (and so
 * the packed weights it names) stays referenced by the plan.
 */
export function createNativePlan(
  addon: NativeAddon,
  desc: PlanDescription,
  handleOf: (p: PackedWeights, name: string) => unknown,
  limits: KernelLimits,
): ExecutionPlan {
  if (desc === null || typeof desc !== 'object' || !Array.isArray(desc.layers))
    throw new QbnnError('ERR_ARG', 'createPlan: desc must be a PlanDescription (an object with layers)');
  desc.layers.forEach((l, i) => {
    if (l === null || typeof l !== 'object' || l.weights === null || typeof l.weights !== 'object')
      throw new QbnnError('ERR_ARG', `createPlan: desc.layers[${i}] must be a layer with weights`);
  });
  // the addon keeps each pack's native pointer: a pack disposed while the plan lives must stop
  // the plan's run (it read freed memory: a segfault), so the plan remembers which packs it uses
  const packs: { p: PackedWeights; name: string }[] = [];
  const track = (p: PackedWeights, name: string) => {
    const h = handleOf(p, name);
    packs.push({ p, name });
    return h;
  };
  const raw = {
    ...desc,
    layers: desc.layers.map((l, i) => ({
      ...l,
      weights: rawWeights(l.weights, l.n, l.k, track, limits, `plan: layers[${i}].weights`),
    })),
  };
  let handle: unknown;
  try {
    handle = addon.plan.create(raw);
  } catch (e) {
    // the addon checks every field of the description (untyped RangeError / TypeError)
    throw new QbnnError('ERR_ARG', `createPlan: ${(e as Error).message}`);
  }
  const keep = desc;
  return {
    run(args: PlanRunArgs): Float32Array {
      if (handle === undefined) throw new QbnnError('ERR_ARG', 'plan: the plan was disposed');
      checkPlanRunArgs(args, keep);
      for (const { p, name } of packs)
        if ((p as { disposed?: boolean }).disposed === true)
          throw new QbnnError(
            'ERR_ARG',
            `${name} was disposed while the plan uses it (dispose the plan first, or create it again)`,
          );
      const reduce = args.reduce === 'meanSoftmax';
      const out = new Float32Array((reduce ? 1 : args.samples) * args.batch * keep.classes);
      const bad = addon.plan.run(
        handle,
        args.x,
        args.batch,
        args.samples,
        args.keys,
        args.scalars,
        out,
        reduce,
      );
      if (bad >= 0) throw new QbnnError('ERR_NAN', `x[${bad}] must be a finite number, got ${args.x[bad]}`);
      if (bad <= -2) throw nonFiniteLogit(-2 - bad, out[0]);
      return out;
    },
    dispose(): void {
      if (handle !== undefined) addon.plan.dispose(handle);
      handle = undefined;
    },
  };
}
