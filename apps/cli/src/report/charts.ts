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
  if (data.sweep?.length) {
    charts.push({
      id: 'sweep',
      title: 'Metrics against bit width',
      spec: {
        $schema: base.$schema,
        data: { values: data.sweep },
        mark: { type: 'line', point: true },
        encoding: {
          x: {
            field: 'bits',
            type: 'ordinal',
            title: 'bits',
            axis: { labelExpr: "datum.value == 32 ? 'float' : datum.label" },
          },
          y: { field: 'value', type: 'quantitative', scale: { zero: false } },
          color: { field: 'posterior', type: 'nominal' },
          row: { field: 'metric', type: 'nominal' },
          column: { field: 'sweep', type: 'nominal' },
        },
        resolve: { scale: { y: 'independent' } },
        width: 220,
        height: 140,
      },
    });
  }
  return charts;
}
