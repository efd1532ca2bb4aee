import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../module.js';

/** `tanh(x)` elementwise. */
export class Tanh extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tanh(x);
  }
}

/** `1 / (1 + exp(-x))` elementwise. */
export class Sigmoid extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return tf.sigmoid(x);
  }
}
