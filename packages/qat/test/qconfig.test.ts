import { QbnnError } from '@qbnn/core';
import { Linear, ReLU, Sequential } from '@qbnn/nn';
import { describe, expect, it } from 'vitest';
import { prepare, prepareQat } from '../src/flows/index.js';
import { checkLayerOverrides, defaultQConfig, makeFakeQuant, resolveQConfig } from '../src/qconfig.js';
import { QuantLayer } from '../src/quant-layer.js';
import { useCpu } from './setup-tf.js';

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

describe('per-layer overrides must name a layer of the model', () => {
  const paths = ['', 'features', 'features.0', 'features.1', 'fc1', 'fc2'];

  it('accepts keys that match a module, its children or a prefix', () => {
    const qc = defaultQConfig();
    qc.layers = { features: {}, 'features.1': {}, 'fc*': {}, '*': {} };
    expect(() => checkLayerOverrides(qc, paths)).not.toThrow();
    expect(() => checkLayerOverrides(defaultQConfig(), paths)).not.toThrow();
  });

  it('a key matching no module is an ERR_ARG error naming it and listing the paths', () => {
    const qc = defaultQConfig();
    qc.layers = { fc9: { weight: { bits: 4 } }, fc1: {}, 'feat.0': {}, 'conv*': {} };
    let err: unknown;
    try {
      checkLayerOverrides(qc, paths);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QbnnError);
    expect((err as QbnnError).code).toBe('ERR_ARG');
    expect((err as QbnnError).message).toBe(
      "qconfig.layers: 'fc9', 'feat.0', 'conv*' match no layer of the model; its layer paths: features, features.0, features.1, fc1, fc2",
    );
  });

  it('prepare and prepareQat refuse an override for a layer the model does not have', async () => {
    await useCpu();
    const net = () =>
      new Sequential({ fc1: new Linear(4, 3, { seed: 1 }), relu: new ReLU(), fc2: new Linear(3, 2) });
    const qc = defaultQConfig();
    qc.layers = { fc3: { weight: { bits: 4 } } };
    for (const flow of [prepare, prepareQat]) {
      const m = net();
      expect(() => flow(m, qc)).toThrow(
        "'fc3' matches no layer of the model; its layer paths: fc1, relu, fc2",
      );
      // nothing was prepared: the model is still the float one
      expect(m.modules().some((x) => x instanceof QuantLayer)).toBe(false);
      m.dispose();
    }
    qc.layers = { fc2: { weight: { bits: 4 } } };
    const ok = prepare(net(), qc);
    expect((ok.getModule('fc2') as QuantLayer).cfg.weight.bits).toBe(4);
    ok.dispose();
  });
});
