// Adam with one fused pass per parameter (@qbnn/core's adamUpdate arithmetic: one pass over param,
// m, v and the gradient) instead of tfjs's 14 element-wise kernels. On tfjs-wasm every parameter
// goes to one call, its moments rewritten in place (@qbnn/core's adamStepMany, native with
// @qbnn/native-amx); any other by the 'QbnnAdam' kernel. Same state, weights format and
// learning-rate handling as tf.train.adam; the same update up to float32 rounding.
import { adamStepMany, FUSED_ADAM } from '@qbnn/core';
import * as tf from '@tensorflow/tfjs-core';

/** tfjs AdamOptimizer's state fields (private in its typings). */
interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/**
 * `tf.train.adam` with the fused update kernel where the active backend has it (wasm and cpu
 * through @qbnn/core, natively with @qbnn/native-amx); tfjs's own update otherwise.
 */
export class FusedAdamOptimizer extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (tf.getKernel(FUSED_ADAM, tf.getBackend()) === undefined) {
      super.applyGradients(variableGradients);
      return;
    }
    const s = this as unknown as AdamState;
    const list = Array.isArray(variableGradients)
      ? variableGradients.map((v) => [v.name, v.tensor] as const)
      : Object.entries(variableGradients as tf.NamedTensorMap);
    // 1 - beta^t of this step, as tfjs computes it (float32 accumulators)
    const correction1 = 1 - s.accBeta1.dataSync()[0];
    const correction2 = 1 - s.accBeta2.dataSync()[0];
    const attrs = {
      learningRate: s.learningRate,
      beta1: s.beta1,
      beta2: s.beta2,
      epsilon: s.epsilon,
      correction1,
      correction2,
    };
    tf.tidy(() => {
      const entries = list.flatMap(([name, grad], i) => {
        const value = tf.engine().registeredVariables[name];
        s.accumulatedFirstMoment[i] ??= {
          originalName: `${name}/m`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
        s.accumulatedSecondMoment[i] ??= {
          originalName: `${name}/v`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
        if (grad == null) return [];
        const m = s.accumulatedFirstMoment[i].variable;
        const v = s.accumulatedSecondMoment[i].variable;
        return [{ param: value, m, v, grad }];
      });
      const stepped = adamStepMany(entries, attrs);
      entries.forEach(({ param, m, v, grad }, k) => {
        const next = stepped[k];
        if (next !== null) {
          param.assign(tf.engine().makeTensorFromTensorInfo(next));
          return;
        }
        const [p2, m2, v2] = tf
          .engine()
          .runKernel(FUSED_ADAM, { param, m, v, grad }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(m2);
        v.assign(v2);
        param.assign(p2);
      });
      s.accBeta1.assign(tf.mul(s.accBeta1, s.beta1));
      s.accBeta2.assign(tf.mul(s.accBeta2, s.beta2));
    });
    this.incrementIterations();
  }
}
