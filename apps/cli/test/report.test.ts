import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { chartSpecs } from '../src/report/charts.js';
import { renderReport } from '../src/report/html.js';
import { renderSvgFigures } from '../src/report/svg.js';
import type { ReportData } from '../src/report/types.js';
import { haveChromium, renderInChromium } from './chromium.js';

function sampleData(): ReportData {
  const ramp = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
  return {
    title: 'qbnn report test',
    createdAt: '2026-11-22T00:00:00Z',
    config: { model: 'lenet5', posterior: 'gaussian', samples: 20, note: '<script>alert(1)</script>' },
    notes: ['OOD set: rotated MNIST (test data)'],
    metrics: { columns: ['float', 'int8 PTQ'], rows: [{ metric: 'accuracy', values: [0.98, 0.975] }] },
    reliability: [
      {
        model: 'float',
        bins: ramp(10, (i) => ({ confidence: (i + 0.5) / 10, accuracy: (i + 0.4) / 10, count: 5 + i })),
      },
    ],
    entropy: [
      { model: 'float', group: 'correct', values: ramp(50, (i) => i / 100) },
      { model: 'float', group: 'wrong', values: ramp(20, (i) => 0.5 + i / 40) },
    ],
    referral: [{ model: 'float', points: ramp(11, (i) => ({ fraction: i / 20, accuracy: 0.95 + i / 250 })) }],
    roc: {
      oodName: 'rotated MNIST',
      curves: [
        { model: 'float', auroc: 0.9, points: ramp(11, (i) => ({ fpr: i / 10, tpr: Math.sqrt(i / 10) })) },
      ],
    },
    throughput: [
      { impl: 'fp32 tfjs-wasm', imagesPerSecond: 100 },
      { impl: 'int8 native', imagesPerSecond: 900 },
    ],
    sweep: [3, 4, 5].map((bits) => ({
      posterior: 'gaussian',
      sweep: 'weight bits (A7)',
      bits,
      metric: 'error',
      value: 0.1 / bits,
    })),
  };
}

describe('HTML report', () => {
  test('is self-contained and escapes what it embeds', () => {
    const html = renderReport(sampleData());
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+href=/);
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(chartSpecs(sampleData()).map((c) => c.id)).toEqual([
      'reliability',
      'entropy',
      'referral',
      'roc',
      'throughput',
      'sweep',
    ]);
  });

  test.skipIf(!haveChromium)('renders every chart in headless Chromium without errors', async () => {
    const data = sampleData();
    const dir = join(tmpdir(), 'qbnn-report-test');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'report.html');
    writeFileSync(file, renderReport(data));
    const ids = chartSpecs(data).map((c) => c.id);
    const shown = await renderInChromium(file, ids, join(dir, 'report.png'));
    expect(shown.chartsRendered).toBe(ids.length);
    // Each chart drew an SVG with marks in it.
    for (const id of ids) expect(shown.marks[id], `chart ${id} has marks`).toBeGreaterThan(0);
    expect(shown.errors).toEqual([]);
    expect(shown.requests).toEqual([]);
  });

  test('every chart also renders to a standalone SVG in Node, with its marks', async () => {
    const data = sampleData();
    const figs = await renderSvgFigures(data);
    expect(figs.map((f) => f.id)).toEqual(chartSpecs(data).map((c) => c.id));
    for (const f of figs) {
      expect(f.svg.startsWith('<svg'), f.id).toBe(true);
      expect(f.svg).toMatch(/class="mark-(line|rect|symbol)/);
    }
    // the sweep's three points make one line whose path has three vertices
    const sweep = figs.find((f) => f.id === 'sweep')!.svg;
    const line = /class="mark-line[^"]*"[^>]*>.*?<path[^>]* d="([^"]+)"/s.exec(sweep);
    expect(line?.[1].match(/[ML]/g)).toHaveLength(3);
  });
});
