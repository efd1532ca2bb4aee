import {
  accumulatorScales,
  bernoulliThreshold,
  type ExecutionPlan,
  type KernelProvider,
  type PlanDescription,
  type PlanLayer,
  type PlanSlot,
  type PlanStep,
  type PlanWeights,
  QNORMAL_SCALE,
  type Rng,
  requantMultipliers,
} from '@qbnn/core';
import { getIntegerForm } from '../forms/registry.js';
import { layerStreams } from '../forms/streams.js';
import type { IntegerForm, LayerStreams, PlanSampler } from '../forms/types.js';
import { dropoutTable } from './dropout.js';
import { convImage, convOutput, type EngineMode, type QLayerSpec, type QOp, sizeOf } from './ir.js';
import { LOCAL_EPS_SCALE, localConstants } from './local.js';
import { qmaxOf, quantizeBias } from './requant.js';
import { type OpTable, walk } from './walker.js';

/**
 * Native execution plans: the IR compiled, once per (model, provider, mode), into a
 * {@link PlanDescription} that a provider with `createPlan` runs in one call per forward.
 * The compiler is a third op table over the same walker: its state is a symbolic register
 * (a value's size and whether every sample shares it), and each op emits a plan step with the
 * same arithmetic as the integer engine's table (engine/int-ops.ts), which stays the reference.
 * Anything the plan cannot express (a form without a plan hook, grouped convolutions, ops
 * added later) makes the compile fail: the model then runs kernel by kernel, never half and half.
 */

/** A model the plan cannot run (the engine runs it kernel by kernel instead). */
class PlanUnsupported extends Error {}

interface Reg {
  v: number;
  /** Per-example shape. */
  shape: number[];
  shared: boolean;
}

interface RegInfo {
  bytes: number;
  shared: boolean;
}

/** What a compiled plan needs per call beyond the input: each layer's streams and scalars. */
interface LayerCall {
  scalars?: (streams: LayerStreams, l: number) => readonly [number, number];
}

/** A compiled model: the provider's plan and the per-layer call hooks. */
export interface CompiledPlan {
  plan: ExecutionPlan;
  layers: LayerCall[];
  classes: number;
}

type Memo = <T>(key: object, tag: string, make: () => T) => T;

/** Steps with registers where the slots go, before slot assignment. */
type RegStep = PlanStep & { reads: number[]; writes: number[] };

function unsupported(why: string): never {
  throw new PlanUnsupported(why);
}

/** The compiler's op table: emits steps over registers. */
function planOps(
  inputShape: readonly number[],
  mode: EngineMode,
  provider: KernelProvider,
  memo: Memo,
  out: { regs: RegInfo[]; steps: RegStep[]; layers: PlanLayer[]; calls: LayerCall[] },
): OpTable<Reg> {
  const reg = (shape: number[], shared: boolean, bytesPerValue = 1): Reg => {
    out.regs.push({ bytes: sizeOf(shape) * bytesPerValue, shared });
    return { v: out.regs.length - 1, shape, shared };
  };
  // a slot placeholder: the register number, replaced by a slot when registers are assigned
  const ref = (r: Reg): PlanSlot => ({ shared: r.shared, index: r.v });
  const emit = (step: PlanStep, reads: Reg[], writes: Reg[]) =>
    out.steps.push({ ...step, reads: reads.map((r) => r.v), writes: writes.map((r) => r.v) } as RegStep);

  const samplerWeights = (
    layer: QLayerSpec,
    s: PlanSampler,
    aScale: number,
    isLast: boolean,
  ): PlanWeights => {
    const n = layer.n;
    const mult = (wScale: Float64Array) =>
      isLast
        ? accumulatorScales(aScale, wScale, n)
        : requantMultipliers(aScale, wScale, layer.output!.scale, n);
    if (s.kind === 'sets') {
      return {
        kind: 'sets',
        cycle: s.cycle,
        sets: s.sets.map((set) => ({
          packed: set.packed,
          mult: mult(set.wScale),
          bias: set.bias ? quantizeBias(set.bias, aScale, set.wScale) : undefined,
        })),
      };
    }
    const b = s.bias;
    return {
      kind: 'gaussian',
      args: s.args,
      direction: s.direction,
      epsScale: QNORMAL_SCALE,
      mult: mult(s.wScale),
      bias: b
        ? {
            mu: Float64Array.from(b.mu),
            sigma: Float64Array.from(b.sigma),
            // quantizeBias divides by aScale * wScale[c]: the same product
            scale: Float64Array.from(s.wScale, (w) => aScale * w),
          }
        : undefined,
    };
  };

  const localWeights = (form: IntegerForm, layer: QLayerSpec, isLast: boolean): PlanWeights => {
    const lf = form.local;
    if (typeof lf !== 'function') unsupported(`form '${form.kind}' has no local moments`);
    // the same memo entries as the integer engine's table: one copy of the constants and packs
    const lc = memo(layer, 'local', () => localConstants(layer, lf(layer.weights, layer)));
    const mean = memo(layer, `local-mu:${provider.name}`, () =>
      provider.packWeights(lc.mu, layer.n, layer.k, lc.muZ),
    );
    const variance = memo(layer, `local-s2:${provider.name}`, () =>
      provider.packWeights(lc.s2, layer.n, layer.k, 0),
    );
    return {
      kind: 'local',
      mean,
      meanBias: lc.bMu,
      variance,
      varianceBias: lc.bVar,
      // float32 values (the combine's form, engine/local.ts), exact in float64
      meanMult: Float64Array.from(lc.meanMult),
      varMult: Float64Array.from(lc.varMult),
      square: lc.square,
      outScale: isLast ? 1 : Math.fround(layer.output!.scale),
      epsScale: LOCAL_EPS_SCALE,
    };
  };

  return {
    quantize(op) {
      const r = reg([...inputShape], true);
      emit(
        { op: 'quantize', out: ref(r), scale: op.q.scale, zeroPoint: op.q.zeroPoint, qmax: qmaxOf(op.q) },
        [],
        [r],
      );
      return r;
    },

    layer(layer, input, index) {
      if (index !== out.layers.length) unsupported('layers out of order');
      // the layer's input (a transposed convolution's spread input)
      let s = input;
      const form = getIntegerForm(layer.weights.kind);
      if (!form.plan) unsupported(`form '${form.kind}' has no plan hook`);
      const groups = layer.groups ?? 1;
      const isLast = layer.output === null;
      const stochastic = form.stochastic(layer.weights);
      let local = false;
      if (mode === 'local' && stochastic && form.local !== 'weights') {
        if (!form.local) unsupported(`form '${form.kind}' has no local reparameterisation`);
        local = true;
      }
      let conv: PlanLayer['conv'];
      let outShape: number[];
      const d = layer.dropout;
      let maskedBySpread = false;
      if (layer.op === 'conv2d' || layer.op === 'convTranspose2d') {
        // [C, H, W], or a Conv1d's [C, L] as a 1 x L image
        const image = convImage(s.shape);
        if (!image) unsupported('conv input is not [C, H, W] or [C, L]');
        outShape = convOutput(layer, s.shape);
        let [c, h, w] = image;
        let stride = layer.stride ?? [1, 1];
        let padding = layer.padding ?? [0, 0];
        if (layer.op === 'convTranspose2d') {
          // the stride-1 convolution over the input spread by the stride, as the engine runs it
          // (engine/u8-ops.ts transposedConvInputU8). MC Dropout masks the input before the
          // spread, as the engine does; the spread then fills with the masked zero point (the
          // engine's local GEMMs run on the input's grid, so those keep the input's)
          const sp = spreadGeometry(layer, h, w);
          const r = reg([c, sp.spread[0], sp.spread[1]], s.shared && !d);
          const masked = d ? reg(s.shape, false) : undefined;
          emit(
            {
              op: 'spread',
              in: ref(s),
              out: ref(r),
              shape: [c, h, w],
              ...sp,
              zeroPoint: d && !local ? d.masked.zeroPoint : layer.input.zeroPoint,
              ...(masked ? { dropout: index, scratch: ref(masked) } : {}),
            },
            [s],
            masked ? [r, masked] : [r],
          );
          maskedBySpread = d !== undefined;
          s = r;
          [h, w] = sp.spread;
          stride = [1, 1];
          padding = [0, 0];
        }
        conv = {
          input: [c, h, w],
          wShape: layer.wShape!,
          stride,
          padding,
          dilation: layer.dilation ?? [1, 1],
          ...(groups !== 1 ? { groups } : {}),
        };
      } else {
        if (sizeOf(s.shape) !== layer.k) unsupported('linear input size');
        outShape = [layer.n];
      }
      const aScale = d ? d.masked.scale : layer.input.scale;
      const sampler = local
        ? undefined
        : form.plan(layer.weights, { n: layer.n, k: layer.k, provider, memo });
      const weights = sampler
        ? samplerWeights(layer, sampler, aScale, isLast)
        : localWeights(form, layer, isLast);
      out.calls.push({ scalars: sampler?.kind === 'gaussian' ? sampler.scalars : undefined });
      out.layers.push({
        op: layer.op === 'linear' ? 'linear' : 'conv2d',
        n: layer.n,
        k: layer.k,
        conv,
        inSize: sizeOf(s.shape),
        outSize: sizeOf(outShape),
        inZeroPoint: layer.input.zeroPoint,
        dropout: d
          ? {
              threshold: bernoulliThreshold(d.p),
              table: memo(layer, 'dropout-table', () => dropoutTable(layer.input, d)),
              maskedZeroPoint: d.masked.zeroPoint,
            }
          : undefined,
        output: isLast
          ? { kind: 'f32' }
          : {
              kind: 'u8',
              zeroPoint: layer.output!.zeroPoint,
              relu: layer.relu,
              qmax: qmaxOf(layer.output!),
            },
        weights,
      });
      const valueBytes = isLast ? 4 : 1;
      if (local) {
        const gemmShared = s.shared && !d;
        const mean = reg(outShape, gemmShared, 4);
        const variance = reg(outShape, gemmShared, 4);
        // the input's squares, after the masked input under MC Dropout
        const scratch = reg(d && !maskedBySpread ? [2, ...s.shape] : s.shape, gemmShared);
        emit(
          {
            op: 'localGemm',
            layer: index,
            in: ref(s),
            mean: ref(mean),
            variance: ref(variance),
            scratch: ref(scratch),
          },
          [s],
          [mean, variance, scratch],
        );
        const r = reg(outShape, false, valueBytes);
        emit(
          { op: 'localCombine', layer: index, mean: ref(mean), variance: ref(variance), out: ref(r) },
          [mean, variance],
          [r],
        );
        return r;
      }
      const shared = s.shared && !stochastic && !d && !isLast;
      const r = reg(outShape, shared, valueBytes);
      if (d && !maskedBySpread) {
        const scratch = reg(s.shape, false);
        emit(
          { op: 'layer', layer: index, in: ref(s), out: ref(r), scratch: ref(scratch) },
          [s],
          [r, scratch],
        );
      } else {
        emit({ op: 'layer', layer: index, in: ref(s), out: ref(r) }, [s], [r]);
      }
      return r;
    },

    relu(op, s) {
      const r = reg(s.shape, s.shared);
      emit(
        { op: 'relu', in: ref(s), out: ref(r), size: sizeOf(s.shape), zeroPoint: op.q.zeroPoint },
        [s],
        [r],
      );
      return r;
    },

    pool(op, s) {
      if (s.shape.length !== 3) unsupported('pool input is not [C, H, W]');
      const [c, h, w] = s.shape;
      const [kh, kw] = op.kernel;
      const [sh, sw] = op.stride;
      const [ph, pw] = op.padding;
      const ho = Math.floor((h + 2 * ph - kh) / sh) + 1;
      const wo = Math.floor((w + 2 * pw - kw) / sw) + 1;
      const r = reg([c, ho, wo], s.shared);
      emit(
        {
          op: 'pool',
          in: ref(s),
          out: ref(r),
          kind: op.op === 'maxpool2d' ? 'max' : 'avg',
          shape: [c, h, w],
          kernel: op.kernel,
          stride: op.stride,
          padding: op.padding,
          zeroPoint: op.q.zeroPoint,
        },
        [s],
        [r],
      );
      return r;
    },

    globalAvgPool(op, s) {
      if (s.shape.length !== 3) unsupported('global pool input is not [C, H, W]');
      const [c, h, w] = s.shape;
      const r = reg([c], s.shared);
      emit(
        { op: 'globalAvgPool', in: ref(s), out: ref(r), channels: c, hw: h * w, zeroPoint: op.q.zeroPoint },
        [s],
        [r],
      );
      return r;
    },

    flatten: (s) => ({ ...s, shape: [sizeOf(s.shape)] }),

    // the recurrence has no plan step: models with an LSTM run kernel by kernel
    lstm: () => unsupported('LSTM'),

    residual(op, a, b) {
      const { bodyQ: qa, shortcutQ: qb, q } = op;
      const r = reg(a.shape, a.shared && b.shared);
      emit(
        {
          op: 'add',
          a: ref(a),
          b: ref(b),
          out: ref(r),
          size: sizeOf(a.shape),
          za: qa.zeroPoint,
          zb: qb.zeroPoint,
          ma: qa.scale / q.scale,
          mb: qb.scale / q.scale,
          z: q.zeroPoint,
          lo: op.relu ? q.zeroPoint : 0,
          hi: qmaxOf(q),
        },
        [a, b],
        [r],
      );
      return r;
    },
  };
}

/** Where a transposed convolution's input pixels go (engine/u8-ops.ts transposedConvInputU8). */
function spreadGeometry(layer: QLayerSpec, h: number, w: number) {
  const [, , kh, kw] = layer.wShape!;
  const stride = layer.stride ?? [1, 1];
  const padding = layer.padding ?? [0, 0];
  const outPad = layer.outputPadding ?? [0, 0];
  const dil = layer.dilation ?? [1, 1];
  const before: [number, number] = [dil[0] * (kh - 1) - padding[0], dil[1] * (kw - 1) - padding[1]];
  const spread: [number, number] = [
    (h - 1) * stride[0] + 1 + 2 * before[0] + outPad[0],
    (w - 1) * stride[1] + 1 + 2 * before[1] + outPad[1],
  ];
  return { spread, stride: [stride[0], stride[1]] as [number, number], before };
}

/** The slot fields of a step (what the register placeholders are in). */
const SLOT_FIELDS = ['in', 'out', 'scratch', 'mean', 'variance', 'a', 'b'] as const;

/**
 * Registers to slots: every shared register its own slot (computed once per call); task
 * registers share slots when their lifetimes (first write to last read) do not overlap.
 */
function assignSlots(regs: RegInfo[], steps: RegStep[], output: number) {
  const last = new Array<number>(regs.length).fill(-1);
  steps.forEach((s, i) => {
    for (const v of [...s.reads, ...s.writes]) last[v] = Math.max(last[v], i);
  });
  last[output] = steps.length;
  const slotOf = new Array<number>(regs.length).fill(-1);
  const taskSlots: number[] = [];
  const sharedSlots: number[] = [];
  const free: number[] = [];
  steps.forEach((s, i) => {
    for (const v of s.writes) {
      if (slotOf[v] >= 0) continue;
      if (regs[v].shared) {
        slotOf[v] = sharedSlots.push(regs[v].bytes) - 1;
        continue;
      }
      const slot = free.length > 0 ? free.pop()! : taskSlots.push(0) - 1;
      taskSlots[slot] = Math.max(taskSlots[slot], regs[v].bytes);
      slotOf[v] = slot;
    }
    for (const v of new Set([...s.reads, ...s.writes])) {
      if (!regs[v].shared && last[v] === i) free.push(slotOf[v]);
    }
  });
  return { slotOf, taskSlots, sharedSlots };
}

/** Compiles a model's ops for `provider`; undefined when the plan cannot run it. */
export function compilePlan(
  ops: readonly QOp[],
  inputShape: readonly number[],
  mode: EngineMode,
  provider: KernelProvider,
  memo: Memo,
): CompiledPlan | undefined {
  if (!provider.createPlan) return undefined;
  const acc = {
    regs: [] as RegInfo[],
    steps: [] as RegStep[],
    layers: [] as PlanLayer[],
    calls: [] as LayerCall[],
  };
  let output: Reg;
  try {
    output = walk(ops, planOps(inputShape, mode, provider, memo, acc)).output;
  } catch (e) {
    if (e instanceof PlanUnsupported) return undefined;
    throw e;
  }
  const { slotOf, taskSlots, sharedSlots } = assignSlots(acc.regs, acc.steps, output.v);
  const slot = (p: PlanSlot): PlanSlot => ({ shared: p.shared, index: slotOf[p.index] });
  const steps = acc.steps.map(({ reads: _r, writes: _w, ...step }) => {
    const s: Record<string, unknown> = { ...step };
    for (const f of SLOT_FIELDS) if (s[f] !== undefined) s[f] = slot(s[f] as PlanSlot);
    return s as PlanStep;
  });
  const sharedSteps = acc.steps.map((s) => s.writes.every((v) => acc.regs[v].shared));
  const desc: PlanDescription = {
    inputSize: sizeOf(inputShape),
    classes: sizeOf(output.shape),
    taskSlots,
    sharedSlots,
    steps,
    sharedSteps,
    layers: acc.layers,
    output: slot({ shared: output.shared, index: output.v }),
  };
  return { plan: provider.createPlan(desc), layers: acc.calls, classes: desc.classes };
}

/** Per-call plan arguments: each layer's stream keys and its per-sample scalars. */
export function planCallArgs(
  compiled: CompiledPlan,
  root: Rng,
  L: number,
): { keys: Uint32Array; scalars: Float64Array } {
  const n = compiled.layers.length;
  const keys = new Uint32Array(n * 8);
  const scalars = new Float64Array(n * L * 2);
  compiled.layers.forEach((layer, i) => {
    const s = layerStreams(root, i);
    keys.set([...s.weight, ...s.bias, ...s.mask, ...s.local], i * 8);
    if (layer.scalars) {
      for (let l = 0; l < L; l++) scalars.set(layer.scalars(s, l), (i * L + l) * 2);
    }
  });
  return { keys, scalars };
}
