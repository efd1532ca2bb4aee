import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { chartSpecs } from './charts.js';
import type { ReportData } from './types.js';

const require = createRequire(import.meta.url);

/** The UMD builds of Vega, Vega-Lite and vega-embed, inlined so the file needs no network. */
function vendorScripts(): string {
  const files: [string, string][] = [
    ['vega', 'build/vega.min.js'],
    ['vega-lite', 'build/vega-lite.min.js'],
    ['vega-embed', 'build/vega-embed.min.js'],
  ];
  return files
    .map(([pkg, file]) => {
      const source = readFileSync(join(packageDir(pkg), file), 'utf8');
      return `<script>${source.replaceAll('</script', '<\\/script')}</script>`;
    })
    .join('\n');
}

/** The folder of an installed package (its "exports" hide the UMD builds from require.resolve). */
function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  while (
    !existsSync(join(dir, 'package.json')) ||
    JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== name
  ) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the folder of package ${name}`);
    dir = up;
  }
  return dir;
}

const escapeHtml = (s: string) =>
  s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

function fmt(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(4);
}

/** Renders the whole report as one self-contained HTML document. */
export function renderReport(data: ReportData): string {
  const charts = chartSpecs(data);
  const configRows = Object.entries(data.config)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`)
    .join('');
  const metrics = data.metrics
    ? `<h2>Metrics</h2><table class="metrics"><tr><th>metric</th>${data.metrics.columns
        .map((c) => `<th>${escapeHtml(c)}</th>`)
        .join('')}</tr>${data.metrics.rows
        .map(
          (r) =>
            `<tr><th>${escapeHtml(r.metric)}</th>${r.values.map((v) => `<td>${fmt(v)}</td>`).join('')}</tr>`,
        )
        .join('')}</table>`
    : '';
  const notes = (data.notes ?? []).map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('');
  const chartDivs = charts
    .map(
      (c) =>
        `<section class="chart"><h2>${escapeHtml(c.title)}</h2><div id="chart-${c.id}" class="vis"></div></section>`,
    )
    .join('\n');
  // JSON inside a script element: escape '<' so no data can close the element.
  const specsJson = JSON.stringify(charts.map((c) => ({ id: c.id, spec: c.spec }))).replaceAll(
    '<',
    '\\u003c',
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(data.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
td{font-variant-numeric:tabular-nums;text-align:right}.config td{text-align:left}.note{color:#555}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}.chart h2{font-size:1.05rem}
</style>
${vendorScripts()}
</head><body>
<h1>${escapeHtml(data.title)}</h1>
<p class="note">Written ${escapeHtml(data.createdAt)} by qbnn.</p>
${notes}
<h2>Configuration</h2><table class="config">${configRows}</table>
${metrics}
<div class="charts">${chartDivs}</div>
<script id="specs" type="application/json">${specsJson}</script>
<script>
(async () => {
  const specs = JSON.parse(document.getElementById('specs').textContent);
  const results = await Promise.allSettled(
    specs.map((c) => vegaEmbed('#chart-' + c.id, c.spec, { renderer: 'svg', actions: false })),
  );
  results.forEach((r, i) => { if (r.status === 'rejected') console.error('chart ' + specs[i].id + ': ' + r.reason); });
  document.body.dataset.chartsRendered = String(results.filter((r) => r.status === 'fulfilled').length);
})();
</script>
</body></html>
`;
}
