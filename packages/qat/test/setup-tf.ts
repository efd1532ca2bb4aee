import * as tf from '@tensorflow/tfjs-core';

let ready: Promise<void> | undefined;

/** CPU backend for tests (the tfjs cpu package lives beside @qbnn/core). */
export function useCpu(): Promise<void> {
  ready ??= (async () => {
    await import(
      '../../core/node_modules/@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.node.js' as string
    );
    await tf.setBackend('cpu');
  })();
  return ready;
}
