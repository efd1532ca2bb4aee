import { describe, expect, it } from 'vitest';
import { defaultQConfig, makeFakeQuant, resolveQConfig } from '../src/qconfig.js';

describe('QConfig', () => {
  it('per-layer overrides give mixed precision in one object', () => {
    const qc = defaultQConfig({ weightBits: 8, activationBits: 8 });
    qc.layers = {
      features: { weight: { bits: 4 } },
      'features.3': { weight: { bits: 6, perChannel: false }, activation: { bits: 7 } },
      'fc*': { activation: { observer: 'histogram', percentile: 99.9 } },
    };
    expect(resolveQConfig(qc, 'features.0').weight.bits).toBe(4);
    const f3 = resolveQConfig(qc, 'features.3');
    expect(f3.weight.bits).toBe(6);
    expect(f3.weight.perChannel).toBe(false);
    expect(f3.activation.bits).toBe(7);
    expect(resolveQConfig(qc, 'featuresX').weight.bits).toBe(8);
    expect(resolveQConfig(qc, 'fc1').activation.observer).toBe('histogram');
    expect(resolveQConfig(qc, 'classifier').activation.observer).toBe('minmax');
    expect(makeFakeQuant(resolveQConfig(qc, 'fc1').activation).observer.constructor.name).toBe(
      'HistogramObserver',
    );
  });

  it('rejects bad bit widths and signed activations', () => {
    expect(() => defaultQConfig({ weightBits: 9 })).toThrow(/bits/);
    const qc = defaultQConfig();
    qc.layers = { a: { activation: { signed: true } } };
    expect(() => resolveQConfig(qc, 'a')).toThrow(/u8/);
    expect(defaultQConfig({ qat: true }).activation.observer).toBe('ema');
  });
});
