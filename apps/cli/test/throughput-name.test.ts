import { setFloatKernelSet } from '@qbnn/core';
import { afterEach, describe, expect, it } from 'vitest';
import { floatImplName } from '../src/lib/throughput.js';

describe('the float throughput row name', () => {
  afterEach(() => setFloatKernelSet(null));

  it('says plain tfjs-wasm only when no native fp32 kernels are registered', () => {
    setFloatKernelSet(null);
    expect(floatImplName('wasm')).toBe('float32 tfjs-wasm');
    setFloatKernelSet({ name: 'native-amx', kernels: ['Conv2D'], threads: 1, description: 'x' });
    expect(floatImplName('wasm')).toBe('float32 native (tfjs-wasm + qbnn kernels)');
    // the kernels serve the wasm backend only
    expect(floatImplName('cpu')).toBe('float32 tfjs-cpu');
  });
});
