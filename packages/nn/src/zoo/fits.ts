import { QbnnError } from '@qbnn/core';
import { Identity } from '../layers/basic.js';
import type { LayerFactory } from './factory.js';
import type { CheckpointContents } from './registry.js';

const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * Checks that a zoo config read from a checkpoint fits the file before the real model is built:
 * `build` runs the builder's own code with a factory whose layers allocate nothing and only
 * count, so a config claiming 1e9 classes or 1e9 hidden layers is refused in microseconds
 * instead of allocating. Every weight layer has at least one tensor in the file and at least
 * its deterministic parameter count of values (Bayesian posteriors store more: mu and rho,
 * ensemble members), so a config may not imply more layers than the file has tensors nor more
 * parameters than it has values.
 * @throws QbnnError ERR_FORMAT naming the architecture and both counts.
 */
export function checkFitsCheckpoint(
  arch: string,
  build: (factory: LayerFactory) => unknown,
  contents: CheckpointContents,
): void {
  const shapes = Object.values(contents.tensors).map((t) => t.shape);
  const fileTensors = shapes.length;
  const fileValues = shapes.reduce((sum, s) => sum + product(s), 0);
  let layers = 0;
  let params = 0;
  const count = (n: number): Identity => {
    layers++;
    params += n;
    if (layers > fileTensors || params > fileValues) {
      throw new QbnnError(
        'ERR_FORMAT',
        `checkpoint: the ${arch} config implies more than ${layers > fileTensors ? `${fileTensors} weight layers` : `${fileValues} parameters`}, all the file holds (${fileTensors} tensors, ${fileValues} values)`,
      );
    }
    return new Identity();
  };
  build({
    linear: (i, o, opts) => count(i * o + (opts.bias === false ? 0 : o)),
    conv2d: (i, o, k, opts) => {
      const [kh, kw] = typeof k === 'number' ? [k, k] : k;
      return count((i / (opts.groups ?? 1)) * o * kh * kw + (opts.bias === false ? 0 : o));
    },
    batchNorm2d: (c, opts) => count(opts.affine === false ? 0 : 2 * c),
    relu: () => new Identity(),
  });
}
