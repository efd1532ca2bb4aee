import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { QbnnError } from '@qbnn/core';
import { writeFileAtomic } from '@qbnn/nn/node';
import { readJsonFile } from '../files.js';

/** One finished point of a sweep: a model (float or quantised) scored on one data set (and fold). */
export interface StoredPoint {
  /** Unique within its store: posterior, mode, bits and fold. */
  key: string;
  task: 'classification' | 'regression';
  /** The store's data set: mnist, fashion-mnist, boston, diabetes. */
  data: string;
  posterior: string;
  /** 'float' for the unquantised model (bits 32). */
  mode: 'float' | 'ptq' | 'qat';
  wbits: number;
  abits: number;
  fold?: number;
  /** Raw figures (classification: error, ece, nll, ape, mi, confApe, confMi, auroc, ...; regression: rmse, nll). */
  metrics: Record<string, number>;
  seconds: number;
}

/** The key of a point: what makes it unique within a data set's store. */
export function pointKey(
  posterior: string,
  mode: string,
  wbits: number,
  abits: number,
  fold?: number,
): string {
  return `${posterior}|${mode}|w${wbits}a${abits}${fold === undefined ? '' : `|fold${fold}`}`;
}

// a key as a file name, one-to-one: plugin posterior names may hold anything ('|' becomes '~')
const fileOf = (key: string) =>
  `${key.replace(/[^A-Za-z0-9_.|-]/g, (c) => `%${c.charCodeAt(0).toString(16)}`).replaceAll('|', '~')}.json`;

const MAX_POINT_BYTES = 2 ** 20;

/**
 * The resumable store of one data set's sweep under `<root>/<data>/`: `config.json` (what the
 * points depend on), `points/<key>.json` (one file per finished point, written atomically as it
 * finishes) and `models/` (the trained float models, so a rerun does not train again). A rerun
 * with the same configuration skips every finished point; a different configuration is refused
 * (its points would not be comparable), naming the settings that differ.
 */
export class SweepStore {
  readonly dir: string;
  private readonly points = new Map<string, StoredPoint>();

  private constructor(
    root: string,
    readonly data: string,
  ) {
    this.dir = join(root, data);
  }

  /** Opens (or starts) the store of `data` under `root` for a run with `config`. */
  static async open(root: string, data: string, config: Record<string, unknown>): Promise<SweepStore> {
    const s = new SweepStore(root, data);
    const path = join(s.dir, 'config.json');
    if (existsSync(path)) {
      const old = readJsonFile(path, '--out-dir', MAX_POINT_BYTES) as Record<string, unknown>;
      const diff = [...new Set([...Object.keys(old), ...Object.keys(config)])].filter(
        (k) => JSON.stringify(old[k]) !== JSON.stringify(config[k]),
      );
      if (diff.length) {
        throw new QbnnError(
          'ERR_ARG',
          `--out-dir: ${s.dir} holds sweep points of another configuration (${diff
            .map((k) => `${k}: ${JSON.stringify(old[k])} there, ${JSON.stringify(config[k])} now`)
            .join('; ')}); use another --out-dir, or the same settings to resume`,
        );
      }
    } else {
      await writeFileAtomic(path, `${JSON.stringify(config, null, 1)}\n`, { mkdir: true });
    }
    s.load();
    return s;
  }

  /** The points stored under `<root>/<data>/` (no configuration check), for reports. */
  static read(root: string, data: string): StoredPoint[] {
    const s = new SweepStore(root, data);
    s.load();
    return s.all();
  }

  /** The configuration a store's points were made with (its `config.json`). */
  static readConfig(root: string, data: string): Record<string, unknown> {
    return readJsonFile(join(root, data, 'config.json'), '--out-dir', MAX_POINT_BYTES) as Record<
      string,
      unknown
    >;
  }

  /** The data sets with a store under `root`. */
  static list(root: string): string[] {
    if (!existsSync(root)) return [];
    return readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(join(root, e.name, 'config.json')))
      .map((e) => e.name)
      .sort();
  }

  private load(): void {
    const dir = join(this.dir, 'points');
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir).sort()) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const p = readJsonFile(join(dir, name), '--out-dir', MAX_POINT_BYTES) as StoredPoint;
      if (
        typeof p !== 'object' ||
        p === null ||
        typeof p.key !== 'string' ||
        fileOf(p.key) !== name ||
        typeof p.metrics !== 'object'
      ) {
        throw new QbnnError(
          'ERR_FORMAT',
          `--out-dir: ${join(dir, name)} is not a sweep point of this store; remove it to recompute the point`,
        );
      }
      this.points.set(p.key, p);
    }
  }

  has(key: string): boolean {
    return this.points.has(key);
  }

  /** Saves a finished point (atomically: a killed run leaves the old state or the whole point). */
  async put(point: StoredPoint): Promise<void> {
    await writeFileAtomic(join(this.dir, 'points', fileOf(point.key)), JSON.stringify(point), {
      mkdir: true,
    });
    this.points.set(point.key, point);
  }

  all(): StoredPoint[] {
    return [...this.points.values()];
  }

  /** Where the trained float model `name` is kept. */
  modelPath(name: string): string {
    return join(this.dir, 'models', fileOf(name).replace(/\.json$/, '.safetensors'));
  }
}
