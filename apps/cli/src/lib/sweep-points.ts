import type { SweepPoint } from './results.js';
import type { StoredPoint } from './sweep-store.js';

/** The two lines of the paper's figures: weight bits at 7 activation bits, activation bits at 8 weight bits. */
export const WEIGHT_LINE = 'weight bits (A7)';
export const ACTIVATION_LINE = 'activation bits (W8)';
/** Every (weight, activation) pair of a `--grid` run. */
export const GRID = 'W x A grid';

const DATA_LABELS: Record<string, string> = {
  mnist: 'MNIST',
  'fashion-mnist': 'Fashion-MNIST',
  boston: 'Boston',
  diabetes: 'Diabetes',
};
const CONFUSION_OF: Record<string, string> = { mnist: 'Fashion-MNIST', 'fashion-mnist': 'MNIST' };

/** The display name of each stored figure, given the data set's and the confusion set's labels. */
function metricNames(d: string, c: string): Record<string, string> {
  return {
    error: `${d} error`,
    ece: `${d} ECE`,
    nll: `${d} NLL`,
    ape: `${d} aPE`,
    mi: `${d} MI`,
    confApe: `${c} aPE (confusion)`,
    confMi: `${c} MI (confusion)`,
    auroc: `${d} vs ${c} AUROC (entropy)`,
    aurocMi: `${d} vs ${c} AUROC (MI)`,
    rmse: `${d} RMSE`,
  };
}

/** The label of a data set as the report shows it. */
export function dataLabel(data: string): string {
  return DATA_LABELS[data] ?? data;
}

/**
 * Stored points as the report's sweep points: each quantised point on the line(s) it lies on
 * (W at A7, A at W8; W8A7 lies on both), or on the grid; the float model (bits 32) as the first
 * point of every line of each mode that has points, so each PTQ / QAT line starts at the float value.
 */
export function toSweepPoints(stored: StoredPoint[]): SweepPoint[] {
  const out: SweepPoint[] = [];
  const offLine = stored.some((p) => p.mode !== 'float' && p.abits !== 7 && p.wbits !== 8);
  const modesOf = new Map<string, Set<string>>();
  for (const p of stored) {
    if (p.mode === 'float') continue;
    const s = modesOf.get(p.posterior) ?? new Set<string>();
    s.add(p.mode);
    modesOf.set(p.posterior, s);
  }
  for (const p of stored) {
    const d = dataLabel(p.data);
    const names = metricNames(d, CONFUSION_OF[p.data] ?? 'confusion');
    const placements: { sweep: string; bits: number; mode: string }[] = [];
    if (p.mode === 'float') {
      const modes = [...(modesOf.get(p.posterior) ?? new Set(['float']))];
      for (const mode of modes) {
        placements.push({ sweep: WEIGHT_LINE, bits: 32, mode }, { sweep: ACTIVATION_LINE, bits: 32, mode });
      }
    } else {
      if (p.abits === 7) placements.push({ sweep: WEIGHT_LINE, bits: p.wbits, mode: p.mode });
      if (p.wbits === 8) placements.push({ sweep: ACTIVATION_LINE, bits: p.abits, mode: p.mode });
      if (offLine) placements.push({ sweep: GRID, bits: p.wbits, mode: p.mode });
    }
    for (const [key, value] of Object.entries(p.metrics)) {
      const metric = key === 'nll' && p.task === 'regression' ? `${d} NLL` : (names[key] ?? `${d} ${key}`);
      for (const pl of placements) {
        out.push({
          posterior: p.posterior,
          sweep: pl.sweep,
          bits: pl.bits,
          metric,
          value,
          mode: pl.mode,
          data: d,
          wbits: p.wbits,
          abits: p.abits,
          ...(p.fold === undefined ? {} : { fold: p.fold }),
        });
      }
    }
  }
  return out;
}
