#!/usr/bin/env node
// `pnpm bench <suite> [--json] [--quick]`: runs one suite (or `all`), prints a table (or one
// JSON document on stdout with --json), and after a full run writes results/<suite>.json and
// the markdown summary results/README.md that the project README links to.
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CaseFilter, formatFilter, parseFilter, trackFilter } from './filter.js';
import { formatMarkdown, formatTable, machineInfo, type SuiteContext, type SuiteReport } from './harness.js';
import { SUITES } from './suites/index.js';

/** Paired rounds by default (`--rounds`): see SuiteContext.rounds. */
const DEFAULT_ROUNDS = 5;

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

function usage(message?: string): never {
  if (message) process.stderr.write(`bench: ${message}\n`);
  process.stderr.write(
    `usage: pnpm bench <suite|all> [--json] [--quick] [--filter key=value,...] [--rounds N]\n  --filter model=lenet5,impl=native,batch=32,L=20,mode=weights  runs only the matching cells (a|b: either value) and writes no results file\n  --rounds N  paired rounds of the suites that alternate a peer and qbnn (peers: the whole-model int8 cells; default ${DEFAULT_ROUNDS}, --quick 2)\nsuites:\n${SUITES.map((s) => `  ${s.name.padEnd(8)} ${s.description}`).join('\n')}\n`,
  );
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  // --filter takes a value (`--filter x=1` or `--filter=x=1`).
  let filterText: string | undefined;
  let roundsText: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--filter') {
      filterText = args[++i];
      if (filterText === undefined) usage('--filter needs key=value[,key=value...]');
    } else if (args[i].startsWith('--filter=')) filterText = args[i].slice('--filter='.length);
    else if (args[i] === '--rounds') roundsText = args[++i] ?? '';
    else if (args[i].startsWith('--rounds=')) roundsText = args[i].slice('--rounds='.length);
    else rest.push(args[i]);
  }
  const rounds = roundsText === undefined ? undefined : Number(roundsText);
  if (rounds !== undefined && !(Number.isInteger(rounds) && rounds >= 1 && rounds <= 100))
    usage(`--rounds needs an integer from 1 to 100, got '${roundsText}'`);
  let filter: CaseFilter = new Map();
  try {
    if (filterText !== undefined) filter = parseFilter(filterText);
  } catch (err) {
    usage((err as Error).message);
  }
  const flags = new Set(rest.filter((a) => a.startsWith('--')));
  for (const f of flags)
    if (f !== '--json' && f !== '--quick')
      usage(`unknown flag ${f}; allowed: --json, --quick, --filter, --rounds`);
  const names = rest.filter((a) => !a.startsWith('--'));
  if (names.length !== 1) usage('name exactly one suite');
  const wanted = names[0] === 'all' ? SUITES : SUITES.filter((s) => s.name === names[0]);
  if (wanted.length === 0)
    usage(`unknown suite '${names[0]}'; allowed: ${SUITES.map((s) => s.name).join(', ')}, all`);
  const quick = flags.has('--quick');
  const json = flags.has('--json');
  const reports: SuiteReport[] = [];
  for (const suite of wanted) {
    const use = trackFilter(filter);
    const { isa } = await import('./isa.js').then((m) => m.detectIsa());
    const report: SuiteReport = {
      suite: suite.name,
      date: new Date().toISOString(),
      command: `pnpm bench ${suite.name}${quick ? ' --quick' : ''}${filter.size ? ` --filter ${formatFilter(filter)}` : ''}${rounds === undefined ? '' : ` --rounds ${rounds}`}`,
      machine: machineInfo(isa),
      results: [],
      ratios: {},
      notes: [],
    };
    const ctx: SuiteContext = {
      quick,
      runs: quick ? 3 : 7,
      rounds: rounds ?? (quick ? 2 : DEFAULT_ROUNDS),
      add(r) {
        report.results.push(r);
        process.stderr.write(
          `  ${r.case} [${r.impl}] ${r.median_ms} ms${r.throughput === null ? '' : ` ${r.throughput} ${r.unit}`}\n`,
        );
        return r;
      },
      note(text) {
        report.notes.push(text);
        process.stderr.write(`  note: ${text}\n`);
      },
      ratio(name, value, spread) {
        report.ratios[name] = Number(value.toPrecision(4));
        if (spread) {
          const p4 = (x: number) => Number(x.toPrecision(4));
          report.spreads = {
            ...report.spreads,
            [name]: { ...spread, min: p4(spread.min), median: p4(spread.median), max: p4(spread.max) },
          };
        } else if (report.spreads) delete report.spreads[name];
      },
      accepts: (params) => use.accepts(params),
      filtered: filter.size > 0,
    };
    process.stderr.write(`bench ${suite.name}${quick ? ' (quick)' : ''}\n`);
    // Shared machines: the load says how much to trust absolute times (ratios of one run hold better).
    ctx.note(
      `load average (1 min) at the start: ${loadavg()[0].toFixed(1)} on ${report.machine.cores} cores`,
    );
    if (filter.size) ctx.note(`filtered run (--filter ${formatFilter(filter)}): no results file written`);
    await suite.run(ctx);
    const unused = use.unused();
    // a misspelt key constrains nothing (keys a cell lacks are not checked): say so, not silently
    if (filter.size && unused.length)
      ctx.note(
        `--filter key${unused.length > 1 ? 's' : ''} ${unused.map((k) => `'${k}'`).join(', ')} ${unused.length > 1 ? 'are' : 'is'} not a parameter of any cell of ${suite.name}: ${unused.length > 1 ? 'they' : 'it'} selected nothing`,
      );
    if (filter.size && use.selected === 0)
      ctx.note(`--filter ${formatFilter(filter)} selected no cell of ${suite.name}`);
    reports.push(report);
    if (!quick && filter.size === 0) writeResult(report);
    if (!json) process.stdout.write(`\n${formatTable(report)}\n`);
  }
  if (json) process.stdout.write(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
}

/** Atomic write (temp file + rename) of one suite's JSON, then the markdown summary of all. */
function writeResult(report: SuiteReport): void {
  const file = join(resultsDir, `${report.suite}.json`);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  const all = readdirSync(resultsDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as SuiteReport);
  const md = `# qbnn benchmark results\n\nWritten by \`pnpm bench <suite>\` (full runs only). Medians of at least 5 timed runs after a warm-up.\n\n${all.map(formatMarkdown).join('\n')}`;
  writeFileSync(join(resultsDir, 'README.md.tmp'), md);
  renameSync(join(resultsDir, 'README.md.tmp'), join(resultsDir, 'README.md'));
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
