// Prints this page's markdown tables from a sweep's results.json (the report's point list):
// float against W8A8 per data set and posterior, the regression folds, and the lines of error
// and confusion-set aPE against weight bits (A7) and activation bits (W8).
// usage: node docs/sweep/tables.mjs docs/sweep/results/NAME.json
import { readFileSync } from 'node:fs';

const points = JSON.parse(readFileSync(process.argv[2], 'utf8')).sweep;
const fmt = (v, d = 4) => (v === undefined ? '' : v.toFixed(d));
const FLOWS = { ptq: 'PTQ', qat: 'QAT' };
const uniq = (xs) => [...new Set(xs)];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs) => Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));

function find(q) {
  return points.filter((p) => Object.entries(q).every(([k, v]) => p[k] === v));
}
const one = (q) => find(q)[0]?.value;
const classification = uniq(points.filter((p) => p.fold === undefined).map((p) => p.data)).sort();
const regression = uniq(points.filter((p) => p.fold !== undefined).map((p) => p.data)).sort();

const out = [];
out.push('### Float against int8 (W8A8)\n');
out.push(
  '| data | posterior | model | error | ECE | NLL | aPE test / OOD | MI test / OOD | OOD AUROC (entropy) | (MI) |',
);
out.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const data of classification) {
  const other = find({ data })
    .map((p) => p.metric.match(/vs (.*) AUROC/)?.[1])
    .find(Boolean);
  for (const posterior of uniq(find({ data }).map((p) => p.posterior)).sort()) {
    const rows = [['float32', { bits: 32, mode: 'ptq' }]];
    for (const mode of ['ptq', 'qat'])
      if (find({ data, posterior, mode, wbits: 8, abits: 8 }).length)
        rows.push([`int8 ${FLOWS[mode]} (W8A8)`, { mode, wbits: 8, abits: 8 }]);
    for (const [label, q] of rows) {
      // Confusion-set metrics are named after the confusion set.
      const m = (metric) => {
        const name = `${metric.includes('confusion') ? other : data} ${metric}`;
        return (
          one({ data, posterior, ...q, sweep: 'activation bits (W8)', metric: name }) ??
          one({ data, posterior, ...q, metric: name })
        );
      };
      const auroc = (kind) => one({ data, posterior, ...q, metric: `${data} vs ${other} AUROC (${kind})` });
      out.push(
        `| ${data} | ${posterior} | ${label} | ${fmt(m('error'))} | ${fmt(m('ECE'))} | ${fmt(m('NLL'))} | ${fmt(m('aPE'), 3)} / ${fmt(m('aPE (confusion)'), 3)} | ${fmt(m('MI'), 4)} / ${fmt(m('MI (confusion)'), 4)} | ${fmt(auroc('entropy'))} | ${fmt(auroc('MI'))} |`,
      );
    }
  }
}

if (regression.length) {
  out.push("\n### Regression (mean ± sd over folds, in the target's units)\n");
  out.push('| data | posterior | model | folds | RMSE | NLL |');
  out.push('|---|---|---|---:|---:|---:|');
  for (const data of regression) {
    for (const posterior of uniq(find({ data }).map((p) => p.posterior)).sort()) {
      const settings = [
        ['float', { bits: 32, mode: 'ptq', sweep: 'weight bits (A7)' }],
        ['PTQ W8A8', { mode: 'ptq', wbits: 8, abits: 8 }],
        ['QAT W8A8', { mode: 'qat', wbits: 8, abits: 8 }],
        ['PTQ W3A7', { mode: 'ptq', wbits: 3, abits: 7 }],
        ['PTQ W8A3', { mode: 'ptq', wbits: 8, abits: 3 }],
      ];
      for (const [label, q] of settings) {
        const vals = (metric) => {
          const byFold = new Map(
            find({ data, posterior, ...q, metric: `${data} ${metric}` }).map((p) => [p.fold, p.value]),
          );
          return [...byFold.values()];
        };
        const rmse = vals('RMSE');
        const nll = vals('NLL');
        if (!rmse.length) continue;
        out.push(
          `| ${data} | ${posterior} | ${label} | ${rmse.length} | ${fmt(mean(rmse), 3)} ± ${fmt(sd(rmse), 3)} | ${fmt(mean(nll), 3)} ± ${fmt(sd(nll), 3)} |`,
        );
      }
    }
  }
}

for (const data of classification) {
  const other = find({ data })
    .map((p) => p.metric.match(/vs (.*) AUROC/)?.[1])
    .find(Boolean);
  for (const sweep of ['weight bits (A7)', 'activation bits (W8)']) {
    const bits = uniq(
      find({ data, sweep })
        .map((p) => p.bits)
        .filter((b) => b !== 32),
    ).sort((a, b) => b - a);
    for (const [metric, title] of [
      ['error', `${data} error`],
      ['aPE (confusion)', `${other} aPE (confusion)`],
    ]) {
      out.push(`\n### ${data}: ${title} against ${sweep}\n`);
      out.push(`| posterior | flow | float | ${bits.join(' | ')} |`);
      out.push(`|---|---|---:|${bits.map(() => '---:').join('|')}|`);
      for (const posterior of uniq(find({ data }).map((p) => p.posterior)).sort()) {
        const name = `${metric.includes('confusion') ? other : data} ${metric}`;
        const float = one({ data, posterior, sweep, bits: 32, metric: name });
        for (const mode of ['ptq', 'qat']) {
          const row = bits.map((b) => one({ data, posterior, sweep, mode, bits: b, metric: name }));
          if (row.every((v) => v === undefined)) continue;
          out.push(
            `| ${posterior} | ${FLOWS[mode]} | ${fmt(float)} | ${row.map((v) => fmt(v)).join(' | ')} |`,
          );
        }
      }
    }
  }
}
console.log(out.join('\n'));
