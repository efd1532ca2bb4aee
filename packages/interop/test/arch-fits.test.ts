import { initBackend, QbnnError } from '@qbnn/core';
import { deserializeModel, encodeSafetensors, Linear, serializeModel } from '@qbnn/nn';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ArchSpec, IMPORTED_ARCH, importTorch, StateDictMismatchError } from '../src/index.js';

// A state dict of one small linear layer (4 x 3 weight, 4 biases: 16 values, 2 tensors).
function smallStateDict(): Uint8Array {
  const w = new Float32Array(12).fill(0.5);
  const b = new Float32Array(4);
  return encodeSafetensors({
    '0.weight': { dtype: 'F32', shape: [4, 3], data: w },
    '0.bias': { dtype: 'F32', shape: [4], data: b },
  });
}

// Architectures whose layers would allocate far more than any file here holds (1e12 weights,
// 2e9 elements in one layer, or a deep stack): each must be refused before anything is built.
const HUGE: [string, ArchSpec][] = [
  ['a 1e6 x 1e6 linear layer', { layers: [{ type: 'Linear', in_features: 1e6, out_features: 1e6 }] }],
  [
    'a conv with 1e5 x 1e5 channels',
    { layers: [{ type: 'Conv2d', in_channels: 1e5, out_channels: 1e5, kernel_size: 3 }] },
  ],
  ['an LSTM with hidden size 1e6', { layers: [{ type: 'LSTM', input_size: 3, hidden_size: 1e6 }] }],
  [
    'more weight layers than the file has tensors',
    {
      layers: [
        { type: 'Linear', in_features: 3, out_features: 4 },
        {
          type: 'Sequential',
          layers: Array.from({ length: 5 }, () => ({ type: 'Linear', in_features: 1, out_features: 1 })),
        },
      ],
    } as ArchSpec,
  ],
];

describe('architectures are checked against the checkpoint before they are built', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it.each(HUGE.slice(0, 3))('importTorch refuses %s with ERR_FORMAT', (_, arch) => {
    let err: unknown;
    try {
      importTorch(smallStateDict(), arch);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QbnnError);
    expect((err as QbnnError).code).toBe('ERR_FORMAT');
    expect((err as QbnnError).message).toMatch(/architecture implies more than .* all the state dict holds/);
  });

  it.each(HUGE)('nn.deserializeModel of an imported checkpoint claiming %s is ERR_FORMAT', (_, arch) => {
    const small = new Linear(3, 4);
    const bytes = serializeModel(small, { arch: IMPORTED_ARCH, config: { arch, layers: {}, priors: {} } });
    small.dispose();
    let err: unknown;
    try {
      deserializeModel(bytes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QbnnError);
    expect((err as QbnnError).code).toBe('ERR_FORMAT');
    expect((err as QbnnError).message).toMatch(/implies more than/);
  });

  it('importTorch lets a plausible but wrong architecture through to the key-by-key report', () => {
    expect(() => importTorch(smallStateDict(), HUGE[3][1])).toThrow(StateDictMismatchError);
  });

  it('a model that fits is still imported and rebuilt', () => {
    const arch: ArchSpec = { layers: [{ type: 'Linear', in_features: 3, out_features: 4 }] };
    const { model } = importTorch(smallStateDict(), arch);
    const bytes = serializeModel(model, { arch: IMPORTED_ARCH, config: { arch, layers: {}, priors: {} } });
    model.dispose();
    const back = deserializeModel(bytes);
    expect(Object.keys(back.model.stateDict()).sort()).toEqual(['0.bias', '0.weight']);
    back.model.dispose();
  });
});
