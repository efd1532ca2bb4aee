import {
  Conv1d,
  Conv2d,
  ConvTranspose1d,
  ConvTranspose2d,
  Flatten,
  Linear,
  type Module,
  ReLU,
  Sequential,
} from '@qbnn/nn';

/** A small model of Conv1d / grouped / transposed layers and the IR ops it lowers to. */
export interface ConvCase {
  name: string;
  make: () => Module;
  inputShape: number[];
  ops: string[];
}

/** Models whose convolutions lower to conv2d / convTranspose2d ops (grouped, strided, dilated, 1-D). */
export const LOWERED_CONV_CASES: ConvCase[] = [
  {
    name: 'Conv1d (strided, grouped, dilated) -> Linear',
    make: () =>
      new Sequential(
        new Conv1d(2, 4, 3, { stride: 2, padding: 1, seed: 1 }),
        new ReLU(),
        new Conv1d(4, 4, 3, { groups: 2, dilation: 2, seed: 2 }),
        new ReLU(),
        new Flatten(),
        new Linear(4 * 4, 3, { seed: 3 }),
      ),
    inputShape: [2, 16],
    ops: ['conv2d', 'conv2d', 'linear'],
  },
  {
    name: 'Conv2d -> ConvTranspose2d (stride, padding, output padding, dilation, groups) -> Linear',
    make: () =>
      new Sequential(
        new Conv2d(2, 4, 3, { stride: 2, seed: 1 }),
        new ReLU(),
        new ConvTranspose2d(4, 6, [3, 2], {
          stride: 2,
          padding: [1, 0],
          outputPadding: [1, 0],
          dilation: [1, 2],
          groups: 2,
          seed: 2,
        }),
        new ReLU(),
        new Flatten(),
        new Linear(6 * 8 * 9, 3, { seed: 3 }),
      ),
    inputShape: [2, 9, 9],
    ops: ['conv2d', 'convTranspose2d', 'linear'],
  },
  {
    name: 'Conv1d -> ConvTranspose1d (stride 3, output padding 2) -> Linear',
    make: () =>
      new Sequential(
        new Conv1d(1, 3, 3, { seed: 1 }),
        new ReLU(),
        new ConvTranspose1d(3, 2, 4, { stride: 3, padding: 1, outputPadding: 2, seed: 2 }),
        new Flatten(),
        new Linear(2 * 19, 2, { seed: 3 }),
      ),
    inputShape: [1, 8],
    ops: ['conv2d', 'convTranspose2d', 'linear'],
  },
];
