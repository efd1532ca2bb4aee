import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { QbnnError } from '@qbnn/core';
import type { NamedRegressionSet } from './boston.js';
import { DATA_DIR_ENV } from './fashion-files.js';
import { maybeGunzip } from './idx.js';
import { readRegularFileSync } from './idx-files.js';

/** The 10 input columns of the diabetes data, in order (scikit-learn's names); the target is `y`. */
export const DIABETES_FEATURES: readonly string[] = [
  'age',
  'sex',
  'bmi',
  'bp',
  's1',
  's2',
  's3',
  's4',
  's5',
  's6',
];

/** Where Debian's `python3-sklearn` installs scikit-learn's bundled data files. */
export const SKLEARN_DEBIAN_DATA_DIR = '/usr/lib/python3/dist-packages/sklearn/datasets/data';

const FILES = { data: 'diabetes_data_raw.csv.gz', target: 'diabetes_target.csv.gz' } as const;
// the two files are 7 KB and 1 KB gzipped: anything far larger is not them
const MAX_FILE_BYTES = 2 ** 20;

/**
 * The directory the diabetes files are read from, searching in order: `dir` (when given, only
 * there), `$QBNN_DATA_DIR/diabetes`, `$QBNN_DATA_DIR`, then `systemDir` (default
 * {@link SKLEARN_DEBIAN_DATA_DIR}, where Debian's `python3-sklearn` puts them).
 *
 * @throws QbnnError ERR_ARG naming every place searched and the package to install
 */
export function findDiabetesDir(
  dir?: string,
  env: Record<string, string | undefined> = process.env,
  systemDir: string = SKLEARN_DEBIAN_DATA_DIR,
): string {
  const has = (d: string) => existsSync(join(d, FILES.data)) && existsSync(join(d, FILES.target));
  const want = `${FILES.data} and ${FILES.target}`;
  if (dir !== undefined) {
    if (has(dir)) return dir;
    throw new QbnnError('ERR_ARG', `loadDiabetes: dir ${dir} does not hold ${want}`);
  }
  const candidates: string[] = [];
  const envDir = env[DATA_DIR_ENV];
  if (envDir) candidates.push(join(envDir, 'diabetes'), envDir);
  candidates.push(systemDir);
  for (const c of candidates) if (has(c)) return c;
  throw new QbnnError(
    'ERR_ARG',
    `loadDiabetes: the diabetes data was not found (looked for ${want} in ${candidates.join(', ')}). ` +
      `Install it with \`sudo apt-get install python3-sklearn\` (Debian/Ubuntu), or pass \`dir\`, ` +
      `or set ${DATA_DIR_ENV} to a directory holding the two files.`,
  );
}

/** Parses a whitespace-separated numeric table of `cols` columns (numpy.savetxt's format). */
function parseTable(text: string, cols: number, path: string): Float64Array {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const out = new Float64Array(lines.length * cols);
  lines.forEach((line, i) => {
    const cells = line.trim().split(/[\s,]+/);
    if (cells.length !== cols) {
      throw new QbnnError(
        'ERR_FORMAT',
        `${path}: line ${i + 1} has ${cells.length} values, expected ${cols}`,
      );
    }
    for (let j = 0; j < cols; j++) {
      const v = Number(cells[j]);
      if (!Number.isFinite(v)) {
        throw new QbnnError(
          'ERR_FORMAT',
          `${path}: line ${i + 1} value ${j + 1} is '${cells[j]}', not a number`,
        );
      }
      out[i * cols + j] = v;
    }
  });
  return out;
}

function readTable(dir: string, file: string, cols: number): Float64Array {
  const path = join(dir, file);
  const bytes = maybeGunzip(readRegularFileSync(path, MAX_FILE_BYTES, 'loadDiabetes'), path, MAX_FILE_BYTES);
  return parseTable(new TextDecoder().decode(bytes), cols, path);
}

/** Options of {@link loadDiabetes}. */
export interface DiabetesOptions {
  /** A directory holding the two gzipped files (see {@link findDiabetesDir}). */
  dir?: string;
  /** Environment to read QBNN_DATA_DIR from, default `process.env`. */
  env?: Record<string, string | undefined>;
}

/**
 * The diabetes data of Efron, Hastie, Johnstone and Tibshirani (2004, "Least angle regression"):
 * 442 patients, 10 baseline variables ({@link DIABETES_FEATURES}, unscaled: age in years, sex 1 or
 * 2, BMI, mean blood pressure and six blood serum measurements) and the target, a measure of
 * disease progression one year later (25 to 346). Read at run time from the copy scikit-learn
 * bundles (`diabetes_data_raw.csv.gz`, `diabetes_target.csv.gz`; Debian `python3-sklearn`), in
 * its row order. Not standardised: see {@link standardizeSplit}.
 *
 * @throws QbnnError ERR_ARG when the files are absent; ERR_FORMAT when they are malformed (a
 *   non-numeric value, a wrong column count, row counts that disagree)
 */
export function loadDiabetes(options: DiabetesOptions = {}): NamedRegressionSet {
  const dir = findDiabetesDir(options.dir, options.env ?? process.env);
  const d = DIABETES_FEATURES.length;
  const x64 = readTable(dir, FILES.data, d);
  const y64 = readTable(dir, FILES.target, 1);
  const n = y64.length;
  if (x64.length !== n * d) {
    throw new QbnnError(
      'ERR_FORMAT',
      `loadDiabetes: ${FILES.data} holds ${x64.length / d} rows but ${FILES.target} holds ${n}`,
    );
  }
  if (n === 0) throw new QbnnError('ERR_FORMAT', `loadDiabetes: ${FILES.data} holds no rows`);
  return {
    x: Float32Array.from(x64),
    y: Float32Array.from(y64),
    n,
    nFeatures: d,
    featureNames: DIABETES_FEATURES,
    targetName: 'progression',
  };
}
