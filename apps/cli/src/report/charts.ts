import { ACTIVATION_LINE, GRID, WEIGHT_LINE } from '../lib/sweep-points.js';
import type { ReportData } from './types.js';

/** A Vega-Lite spec with the id of the element it renders into and a heading. */
export interface ChartSpec {
  id: string;
  title: string;
  spec: Record<string, unknown>;
}

const WIDTH = 360;
const HEIGHT = 240;
const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: WIDTH, height: HEIGHT };

/** One Vega-Lite spec per chart the data allows, in the order the report shows them. */
export function chartSpecs(data: ReportData): ChartSpec[] {
  const charts: ChartSpec[] = [];
  if (data.reliability?.length) {
    const values = data.reliability.flatMap((r) =>
      r.bins.filter((b) => b.count > 0).map((b) => ({ model: r.model, ...b })),
    );
    charts.push({
      id: 'reliability',
      title: 'Reliability diagram',
      spec: {
        ...base,
        layer: [
          {
            data: {
              values: [
                { x: 0, y: 0 },
                { x: 1, y: 1 },
              ],
            },
            mark: { type: 'line', strokeDash: [4, 4], color: 'gray' },
            encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
          },
          {
            data: { values },
            mark: { type: 'line', point: true },
            encoding: {
              x: {
                field: 'confidence',
                type: 'quantitative',
                title: 'confidence',
                scale: { domain: [0, 1] },
              },
              y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] } },
              color: { field: 'model', type: 'nominal' },
              tooltip: [
                { field: 'model' },
                { field: 'confidence' },
                { field: 'accuracy' },
                { field: 'count' },
              ],
            },
          },
        ],
      },
    });
  }
  if (data.entropy?.length) {
    const values = data.entropy.flatMap((e) =>
      e.values.map((v) => ({ model: e.model, group: e.group, entropy: v })),
    );
    charts.push({
      id: 'entropy',
      title: 'Predictive entropy',
      spec: {
        ...base,
        data: { values },
        // Each group as a fraction of its own examples, so a small group (wrong predictions)
        // stays visible beside a large one; the bins are shared by every group.
        transform: [
          { bin: { maxbins: 30 }, field: 'entropy', as: ['bin_start', 'bin_end'] },
          { aggregate: [{ op: 'count', as: 'n' }], groupby: ['model', 'group', 'bin_start', 'bin_end'] },
          { joinaggregate: [{ op: 'sum', field: 'n', as: 'total' }], groupby: ['model', 'group'] },
          { calculate: 'datum.n / datum.total', as: 'fraction' },
        ],
        mark: { type: 'bar', opacity: 0.55 },
        encoding: {
          x: {
            field: 'bin_start',
            type: 'quantitative',
            bin: { binned: true },
            title: 'predictive entropy (nats)',
          },
          x2: { field: 'bin_end' },
          y: { field: 'fraction', type: 'quantitative', stack: null, title: 'fraction of the group' },
          color: { field: 'group', type: 'nominal' },
          row: { field: 'model', type: 'nominal' },
          tooltip: [
            { field: 'group' },
            { field: 'n', title: 'examples' },
            { field: 'fraction', format: '.3f' },
          ],
        },
      },
    });
  }
  if (data.referral?.length) {
    const values = data.referral.flatMap((r) => r.points.map((p) => ({ model: r.model, ...p })));
    charts.push({
      id: 'referral',
      title: 'Accuracy vs referral',
      spec: {
        ...base,
        data: { values },
        mark: { type: 'line' },
        encoding: {
          x: { field: 'fraction', type: 'quantitative', title: 'fraction referred (most uncertain first)' },
          y: {
            field: 'accuracy',
            type: 'quantitative',
            title: 'accuracy on the rest',
            scale: { zero: false },
          },
          color: { field: 'model', type: 'nominal' },
        },
      },
    });
  }
  if (data.roc?.curves.length) {
    const values = data.roc.curves.flatMap((c) =>
      c.points.map((p) => ({ model: `${c.model} (AUROC ${c.auroc.toFixed(3)})`, ...p })),
    );
    charts.push({
      id: 'roc',
      title: `OOD ROC (${data.roc.oodName})`,
      spec: {
        ...base,
        data: { values },
        mark: { type: 'line' },
        encoding: {
          x: { field: 'fpr', type: 'quantitative', title: 'false positive rate' },
          y: { field: 'tpr', type: 'quantitative', title: 'true positive rate' },
          color: { field: 'model', type: 'nominal' },
          order: { field: 'fpr' },
        },
      },
    });
  }
  if (data.throughput?.length) {
    charts.push({
      id: 'throughput',
      title: 'Throughput',
      spec: {
        ...base,
        data: { values: data.throughput },
        mark: 'bar',
        encoding: {
          y: { field: 'impl', type: 'nominal', title: null, sort: '-x' },
          x: { field: 'imagesPerSecond', type: 'quantitative', title: 'images per second' },
          tooltip: [{ field: 'impl' }, { field: 'imagesPerSecond', format: '.1f' }],
        },
      },
    });
  }
  if (data.sweep?.length) charts.push(...sweepCharts(data.sweep));
  return charts;
}

type SweepData = NonNullable<ReportData['sweep']>;

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-');
const bitsAxis = {
  field: 'bits',
  type: 'ordinal',
  title: 'bits',
  sort: 'descending',
  axis: { labelExpr: "datum.value == 32 ? 'float' : datum.label", labelAngle: 0 },
};

/**
 * The sweep in the paper's layout, one chart per data set: each metric (rows) against weight bits
 * at A7 and activation bits at W8 (columns), one line per posterior (colour), PTQ solid and QAT
 * dashed; regression points (one per fold) as box plots; a `--grid` run as heat maps.
 */
function sweepCharts(points: SweepData): ChartSpec[] {
  const charts: ChartSpec[] = [];
  // classification first (lines), then the cross-validated regression sets (box plots)
  const hasFolds = (g: string) => points.some((p) => (p.data ?? 'all') === g && p.fold !== undefined);
  const groups = [...new Set(points.map((p) => p.data ?? 'all'))].sort(
    (a, b) => Number(hasFolds(a)) - Number(hasFolds(b)),
  );
  for (const g of groups) {
    const mine = points.filter((p) => (p.data ?? 'all') === g);
    const lines = mine.filter((p) => p.sweep !== GRID);
    const folds = lines.some((p) => p.fold !== undefined);
    const metricOrder = [...new Set(mine.map((p) => p.metric))];
    const id = groups.length === 1 && g === 'all' ? 'sweep' : `sweep-${slug(g)}`;
    if (lines.length && !folds) {
      charts.push({
        id,
        title: `${g === 'all' ? 'Metrics' : g} against bit width`,
        spec: {
          $schema: base.$schema,
          data: { values: lines },
          mark: { type: 'line', point: true },
          encoding: {
            x: bitsAxis,
            y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: null },
            color: { field: 'posterior', type: 'nominal' },
            strokeDash: { field: 'mode', type: 'nominal', title: 'flow' },
            row: { field: 'metric', type: 'nominal', title: null, sort: metricOrder },
            column: { field: 'sweep', type: 'nominal', title: null, sort: 'descending' },
            tooltip: [
              { field: 'posterior' },
              { field: 'mode' },
              { field: 'wbits', title: 'W' },
              { field: 'abits', title: 'A' },
              { field: 'metric' },
              { field: 'value', format: '.4f' },
            ],
          },
          resolve: { scale: { x: 'independent', y: 'independent' } },
          width: 220,
          height: 130,
        },
      });
    } else if (lines.length) {
      const panels = [WEIGHT_LINE, ACTIVATION_LINE].flatMap((l) =>
        ['PTQ', 'QAT', 'FLOAT'].map((m) => `${l}, ${m}`),
      );
      charts.push({
        id,
        title: `${g}: ${new Set(lines.map((p) => p.fold)).size}-fold cross-validation against bit width`,
        spec: {
          $schema: base.$schema,
          data: {
            values: lines.map((p) => ({ ...p, panel: `${p.sweep}, ${(p.mode ?? '').toUpperCase()}` })),
          },
          mark: { type: 'boxplot', extent: 'min-max', size: 6 },
          encoding: {
            x: bitsAxis,
            xOffset: { field: 'posterior', type: 'nominal' },
            y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: null },
            color: { field: 'posterior', type: 'nominal' },
            row: { field: 'metric', type: 'nominal', title: null, sort: metricOrder },
            column: { field: 'panel', type: 'nominal', title: null, sort: panels },
          },
          resolve: { scale: { x: 'independent', y: 'independent' } },
          width: 260,
          height: 140,
        },
      });
    }
    const grid = mine.filter((p) => p.sweep === GRID);
    if (grid.length) {
      charts.push({
        id: `grid-${slug(g)}`,
        title: `${g}: weight x activation bits`,
        spec: {
          $schema: base.$schema,
          data: {
            values: grid.map((p) => ({ ...p, panel: `${p.posterior} ${(p.mode ?? '').toUpperCase()}` })),
          },
          mark: 'rect',
          encoding: {
            x: { field: 'wbits', type: 'ordinal', title: 'weight bits' },
            y: { field: 'abits', type: 'ordinal', title: 'activation bits', sort: 'descending' },
            color: { aggregate: 'mean', field: 'value', type: 'quantitative', legend: null },
            row: { field: 'metric', type: 'nominal', title: null },
            column: { field: 'panel', type: 'nominal', title: null },
            tooltip: [{ aggregate: 'mean', field: 'value', format: '.4f' }],
          },
          resolve: { scale: { color: 'independent' } },
          width: 120,
          height: 120,
        },
      });
    }
  }
  return charts;
}
