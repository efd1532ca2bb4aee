import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { regressionFolds } from '../src/index.js';
import { DIABETES_FEATURES, findDiabetesDir, loadDiabetes, SKLEARN_DEBIAN_DATA_DIR } from '../src/node.js';

const installed = (() => {
  try {
    findDiabetesDir(undefined, {});
    return true;
  } catch {
    return false;
  }
})();
if (!installed && process.env.CI)
  throw new Error(`CI: the diabetes data is missing (${SKLEARN_DEBIAN_DATA_DIR})`);

describe.skipIf(!installed)("loadDiabetes on Debian python3-sklearn's copy", () => {
  it('has the 442 patients and 10 variables of Efron et al. (2004)', () => {
    const d = loadDiabetes({ env: {} });
    expect(d.n).toBe(442);
    expect(d.nFeatures).toBe(10);
    expect(d.featureNames).toEqual(DIABETES_FEATURES);
    // first row of the LARS paper's table: age 59, sex 2, BMI 32.1, BP 101, S1..S6, Y 151
    expect(Array.from(d.x.subarray(0, 10))).toEqual(
      Array.from(Float32Array.from([59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87])),
    );
    expect(d.y[0]).toBe(151);
    // well-known facts: target mean 152.133, range 25..346; sex takes the values 1 and 2
    let m = 0;
    for (const v of d.y) m += v;
    expect(m / d.n).toBeCloseTo(152.133, 2);
    expect(Math.min(...d.y)).toBe(25);
    expect(Math.max(...d.y)).toBe(346);
    const sexes = new Set<number>();
    for (let i = 0; i < d.n; i++) sexes.add(d.x[i * 10 + 1]);
    expect([...sexes].sort()).toEqual([1, 2]);
  });

  it('cuts into 10 standardised folds that partition the rows', () => {
    const folds = regressionFolds(loadDiabetes({ env: {} }), { k: 10, seed: 3 });
    expect(folds.map((f) => f.test.n)).toEqual([45, 45, 44, 44, 44, 44, 44, 44, 44, 44]);
    const seen = new Uint8Array(442);
    for (const f of folds) for (const i of f.testIndex) seen[i]++;
    expect(seen.every((c) => c === 1)).toBe(true);
  });
});

describe('loadDiabetes on hostile files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qbnn-diabetes-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (sub: string, data: string, target: string) => {
    const d = join(dir, sub);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'diabetes_data_raw.csv.gz'), gzipSync(data));
    writeFileSync(join(d, 'diabetes_target.csv.gz'), gzipSync(target));
    return d;
  };
  const row = '59 2 32.1 101.0 157 93.2 38.0 4.0 4.8598 87\n';

  it('reads a well-formed copy from QBNN_DATA_DIR/diabetes', () => {
    write('diabetes', row + row, '151\n75\n');
    const d = loadDiabetes({ env: { QBNN_DATA_DIR: dir } });
    expect(d.n).toBe(2);
    expect(Array.from(d.y)).toEqual([151, 75]);
  });

  it('refuses a wrong column count, a non-number and disagreeing row counts with ERR_FORMAT', () => {
    const cases: [string, string, RegExp][] = [
      ['59 2 32.1\n', '151\n', /line 1 has 3 values, expected 10/],
      [row.replace('87', 'NaN'), '151\n', /value 10 is 'NaN'/],
      [row + row, '151\n', /holds 2 rows but .* holds 1/],
    ];
    cases.forEach(([data, target, msg], i) => {
      const d = write(`bad${i}`, data, target);
      expect(() => loadDiabetes({ dir: d })).toThrow(msg);
      try {
        loadDiabetes({ dir: d });
      } catch (e) {
        expect((e as { code: string }).code).toBe('ERR_FORMAT');
      }
    });
  });

  it('names the places searched and the Debian package when the files are absent', () => {
    expect(() =>
      findDiabetesDir(undefined, { QBNN_DATA_DIR: join(dir, 'none') }, join(dir, 'none2')),
    ).toThrow(/python3-sklearn/);
  });
});
