import { writeFileAtomic } from '@qbnn/nn/node';
import { parseFlags, UsageError } from '../args.js';
import { checkFileFlags } from '../file-flags.js';
import { readJsonFile } from '../files.js';
import { checkResults, type Results, toReportData } from '../lib/results.js';
import { renderReport } from '../report/html.js';
import type { Command, Io } from './common.js';

const flags = {
  results: { type: 'string', help: 'results.json written by qbnn eval, demo or sweep (required)' },
  out: { type: 'string', help: 'HTML file to write (default: the results path with .html)' },
  title: { type: 'string', help: 'title of the report (default: the results title)' },
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
    await writeFileAtomic(out, renderReport(toReportData(results)), { mkdir: true });
    io.out(`report: ${out}\n`);
  },
};
