import { afterEach, describe, expect, test } from 'vitest';
import { QbnnError } from '../src/errors.js';
import { referenceKernels } from '../src/kernels/reference.js';
import type { KernelProvider } from '../src/kernels/types.js';
import {
  getKernelProvider,
  listKernelProviders,
  Registry,
  registerKernelProvider,
  setDefaultKernelProvider,
  unregisterKernelProvider,
} from '../src/registry/index.js';
import { codeOf } from './helpers.js';

describe('Registry<T>', () => {
  test('register, get, has, list, unregister', () => {
    const r = new Registry<{ id: number }>('posterior');
    r.register('gaussian', { id: 1 });
    r.register('radial', { id: 2 });
    expect(r.get('gaussian').id).toBe(1);
    expect(r.has('radial')).toBe(true);
    expect(r.list()).toEqual(['gaussian', 'radial']);
    expect(r.unregister('radial')).toBe(true);
    expect(r.unregister('radial')).toBe(false);
    expect(r.list()).toEqual(['gaussian']);
  });

  test('an unknown name is ERR_UNKNOWN naming the kind and the registered names', () => {
    const r = new Registry<number>('posterior');
    r.register('gaussian', 1);
    r.register('mcdropout', 2);
    try {
      r.get('gausian');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(QbnnError);
      expect((e as QbnnError).code).toBe('ERR_UNKNOWN');
      expect((e as Error).message).toContain("unknown posterior 'gausian'");
      expect((e as Error).message).toContain('gaussian, mcdropout');
    }
  });

  test('duplicates are errors unless overridden; names must be non-empty strings', () => {
    const r = new Registry<number>('thing');
    r.register('a', 1);
    expect(codeOf(() => r.register('a', 2))).toBe('ERR_ARG');
    expect(r.get('a')).toBe(1);
    r.register('a', 3, { override: true });
    expect(r.get('a')).toBe(3);
    expect(codeOf(() => r.register('', 1))).toBe('ERR_ARG');
    expect(codeOf(() => r.register(5 as unknown as string, 1))).toBe('ERR_ARG');
  });
});

function fakeProvider(name: string, priority: number, isAvailable?: () => boolean): KernelProvider {
  return { ...referenceKernels, name, priority, isAvailable };
}

describe('kernel provider registry', () => {
  afterEach(() => {
    setDefaultKernelProvider(undefined);
    for (const { name } of listKernelProviders()) if (name !== 'js') unregisterKernelProvider(name);
  });

  test("the JS reference is always there as 'js' with priority 0", () => {
    expect(getKernelProvider()).toBe(referenceKernels);
    expect(getKernelProvider('js')).toBe(referenceKernels);
    expect(listKernelProviders()).toEqual([{ name: 'js', priority: 0, available: true, isDefault: false }]);
    expect(codeOf(() => unregisterKernelProvider('js'))).toBe('ERR_ARG');
    expect(codeOf(() => registerKernelProvider(fakeProvider('js', 5), { override: true }))).toBe('ERR_ARG');
  });

  test('the highest-priority available provider wins; unavailable ones are listed but skipped', () => {
    const fast = fakeProvider('fast', 10);
    const faster = fakeProvider('amx', 20, () => false);
    const broken = fakeProvider('broken', 30, () => {
      throw new Error('probe failed');
    });
    registerKernelProvider(fast);
    registerKernelProvider(faster);
    registerKernelProvider(broken);
    expect(getKernelProvider()).toBe(fast);
    expect(listKernelProviders().map((p) => [p.name, p.available])).toEqual([
      ['broken', false],
      ['amx', false],
      ['fast', true],
      ['js', true],
    ]);
    expect(codeOf(() => getKernelProvider('amx'))).toBe('ERR_UNSUPPORTED');
    expect(codeOf(() => getKernelProvider('nope'))).toBe('ERR_UNKNOWN');
  });

  test('setDefaultKernelProvider pins a provider until cleared or unregistered', () => {
    registerKernelProvider(fakeProvider('fast', 10));
    setDefaultKernelProvider('js');
    expect(getKernelProvider()).toBe(referenceKernels);
    expect(listKernelProviders().find((p) => p.name === 'js')?.isDefault).toBe(true);
    setDefaultKernelProvider(undefined);
    expect(getKernelProvider().name).toBe('fast');
    setDefaultKernelProvider('fast');
    unregisterKernelProvider('fast');
    expect(getKernelProvider()).toBe(referenceKernels);
    expect(codeOf(() => setDefaultKernelProvider('missing'))).toBe('ERR_UNKNOWN');
  });

  test('registration validates the provider shape and rejects duplicates', () => {
    registerKernelProvider(fakeProvider('x', 1));
    expect(codeOf(() => registerKernelProvider(fakeProvider('x', 2)))).toBe('ERR_ARG');
    registerKernelProvider(fakeProvider('x', 2), { override: true });
    expect(getKernelProvider('x').priority).toBe(2);
    const partial = { name: 'p', priority: 1, qgemm: referenceKernels.qgemm } as unknown as KernelProvider;
    expect(codeOf(() => registerKernelProvider(partial))).toBe('ERR_ARG');
    expect(codeOf(() => registerKernelProvider(fakeProvider('q', Number.NaN)))).toBe('ERR_ARG');
  });

  test('the provider found through the registry runs the contract GEMM', () => {
    const k = getKernelProvider();
    const w = k.packWeights(Int8Array.from([1, 2, 3, -4]), 2, 2, 0);
    const out = k.qgemm({
      a: Uint8Array.from([5, 6]),
      m: 1,
      aScale: 1,
      aZeroPoint: 0,
      w,
      wScale: 1,
      output: { kind: 'i32' },
    });
    expect([...out]).toEqual([5 + 12, 15 - 24]);
  });
});
