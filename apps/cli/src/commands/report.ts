import { join } from 'node:path';
import { writeFileAtomic } from '@qbnn/nn/node';
import { parseFlags, UsageError } from '../args.js';
import { checkFileFlags } from '../file-flags.js';
import { readJsonFile } from '../files.js';
import { checkResults, type Results, toReportData } from '../lib/results.js';
import { renderReport } from '../report/html.js';
import { renderSvgFigures } from '../report/svg.js';
import type { Command, Io } from './common.js';

const flags = {
  results: { type: 'string', help: 'results.json written by qbnn eval, demo or sweep (required)' },
  out: { type: 'string', help: 'HTML file to write (default: the results path with .html)' },
  title: { type: 'string', help: 'title of the report (default: the results title)' },
  'svg-dir': {
    type: 'string',
    help: 'also write each chart as <chart id>.svg into this folder (for pages without scripts)',
  },
} as const;

export const report: Command = {
  name: 'report',
  summary: 'render results.json as a self-contained HTML report (Vega-Lite charts, no network needed)',
  usage: 'qbnn report --results FILE [--out FILE]',
  flags,
  example: 'qbnn report --results qbnn-out/results.json --out qbnn-out/report.html',
  async run(argv: string[], io: Io) {
    const f = parseFlags('report', argv, flags);
    if (f.results === undefined)
      throw new UsageError('qbnn report: --results <file> is required (written by qbnn eval, demo or sweep)');
    const [out] = checkFileFlags('report', {
      inputs: [{ flag: '--results', path: f.results }],
      outputs: [
        {
          flag: f.out === undefined ? '--out (default)' : '--out',
          path: f.out ?? `${f.results.replace(/\.json$/i, '')}.html`,
        },
        // a probe file checks the folder is writable before anything is rendered
        ...(f['svg-dir'] === undefined
          ? []
          : [{ flag: '--svg-dir', path: join(f['svg-dir'], 'figure.svg') }]),
      ],
    });
    // results.json of a full sweep or eval is a few MB
    const json = readJsonFile(f.results, '--results', 256 * 2 ** 20);
    let results: Results;
    try {
      results = checkResults(json);
    } catch (err) {
      throw new UsageError(`qbnn report: --results ${f.results}: ${(err as Error).message}`);
    }
    if (f.title) results.title = f.title;
    const data = toReportData(results);
    await writeFileAtomic(out, renderReport(data), { mkdir: true });
    io.out(`report: ${out}\n`);
    if (f['svg-dir'] !== undefined) {
      for (const fig of await renderSvgFigures(data)) {
        const path = join(f['svg-dir'], `${fig.id}.svg`);
        await writeFileAtomic(path, fig.svg, { mkdir: true });
        io.out(`figure: ${path} (${fig.title})\n`);
      }
    }
  },
};
