import type { Results } from '../lib/results.js';
import { METRIC_ROWS } from '../lib/results.js';
import { GRID } from '../lib/sweep-points.js';
import { fmt, type Io, table } from './common.js';

/** Prints results: a metrics table (models as columns) and throughput, or JSON with `json`. */
export function printResults(io: Io, r: Results, json: boolean): void {
  if (json) {
    io.out(`${JSON.stringify(r)}\n`);
    return;
  }
  if (r.models.length) {
    const rows = METRIC_ROWS.filter(([, k]) => r.models.some((m) => k in m.metrics)).map(([label, k]) => [
      label,
      ...r.models.map((m) => fmt(m.metrics[k])),
    ]);
    if (r.models.some((m) => m.metrics.sizeBytes !== undefined)) {
      rows.push([
        'model size (KB)',
        ...r.models.map((m) => fmt((m.metrics.sizeBytes ?? Number.NaN) / 1024, 1)),
      ]);
    }
    io.out(`\n${r.title}\n`);
    for (const n of r.notes) io.out(`  ${n}\n`);
    io.out(`\n${table(['metric', ...r.models.map((m) => m.name)], rows)}\n`);
  }
  if (r.throughput?.length) {
    const base = r.throughput[0].imagesPerSecond;
    io.out(
      `\n${table(
        ['throughput', 'images/s', `vs ${r.throughput[0].impl}`],
        r.throughput.map((t) => [t.impl, fmt(t.imagesPerSecond, 1), `${fmt(t.imagesPerSecond / base, 2)}x`]),
      )}\n`,
    );
    // native against the JS reference, for every integer model measured on both
    for (const t of r.throughput) {
      if (!t.impl.endsWith(' native')) continue;
      const js = r.throughput.find((u) => u.impl === `${t.impl.slice(0, -' native'.length)} js`);
      if (js)
        io.out(`${t.impl}: ${fmt(t.imagesPerSecond / js.imagesPerSecond, 1)}x the JS reference kernels\n`);
    }
  }
  if (r.sweep?.length) {
    // the two lines (the grid is in the report); regression folds averaged
    const line = r.sweep.filter((p) => p.sweep !== GRID);
    const groups = new Map<string, Map<number, number[]>>();
    for (const p of line) {
      const k = `${p.posterior} ${p.mode ?? ''} ${p.sweep} ${p.metric}`.replace(/ +/g, ' ');
      const byBits = groups.get(k) ?? new Map<number, number[]>();
      byBits.set(p.bits, [...(byBits.get(p.bits) ?? []), p.value]);
      groups.set(k, byBits);
    }
    const bitsList = [...new Set(line.map((p) => p.bits))].sort((a, b) => a - b);
    const mean = (v: number[] | undefined) => (v ? v.reduce((s, x) => s + x, 0) / v.length : undefined);
    const rows = [...groups].map(([k, byBits]) => [k, ...bitsList.map((b) => fmt(mean(byBits.get(b))))]);
    io.out(`\n${table(['sweep', ...bitsList.map((b) => (b === 32 ? 'float' : `${b} bits`))], rows)}\n`);
  }
}
