import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** One measured case, as it appears in the JSON document. */
export interface CaseResult {
  case: string;
  impl: string;
  params: Record<string, unknown>;
  median_ms: number;
  min_ms: number;
  max_ms: number;
  /** First and third quartiles of the runs (suites that pool many noisy runs report them). */
  q1_ms?: number;
  q3_ms?: number;
  runs: number;
  /** Work per second at the median (unit below), or null when the case measures no rate. */
  throughput: number | null;
  unit: string;
  /** Extra figures a case reports besides time (memory, bytes, ...). */
  extra?: Record<string, number | string>;
}

export interface MachineInfo {
  cpu: string;
  /**
   * x86 vendor, family, model and stepping (Linux /proc/cpuinfo), when readable. The model name of
   * a VM's CPU ("AMD EPYC") does not tell generations apart, and they differ in kind: Zen 4
   * (family 25) runs a 512-bit `vpdpbusd` as two halves, Zen 5 (family 26) in one, so the int8 peak
   * halves between hosts that print the same name.
   */
  cpuId?: string;
  cores: number;
  isa: string;
  node: string;
}

export interface SuiteReport {
  suite: string;
  date: string;
  command: string;
  machine: MachineInfo;
  results: CaseResult[];
  ratios: Record<string, number>;
  /** The spread behind a ratio measured in repeated rounds (its value is their median), by name. */
  spreads?: Record<string, Spread>;
  notes: string[];
}

/** Smallest, median and largest of n values (e.g. a ratio's value in each of n paired rounds). */
export interface Spread {
  min: number;
  median: number;
  max: number;
  n: number;
}

/** The {@link Spread} of some values (at least one). */
export function spreadOf(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error('spreadOf: no values');
  const s = [...values].sort((a, b) => a - b);
  return { min: s[0], median: medianOf(s), max: s[s.length - 1], n: s.length };
}

export interface SuiteContext {
  quick: boolean;
  /** Records a finished case and prints a progress line on stderr. */
  add(result: CaseResult): CaseResult;
  /** Records a note (a skipped peer, a fallback) shown under the table. */
  note(text: string): void;
  /** Records a ratio; with `spread` (from repeated rounds) the value should be its median. */
  ratio(name: string, value: number, spread?: Spread): void;
  /** Timed runs per case: at least 5 (3 in quick mode, which is for smoke runs only). */
  runs: number;
  /**
   * Paired rounds (`--rounds N`; default 5, 2 with --quick) of the cells a suite times by
   * alternating a peer's fresh process and qbnn, so that slow drifts of a shared host fall on both
   * sides of each round's ratio (peers: issue 18's whole-model cells).
   */
  rounds: number;
  /**
   * Whether the cell with these parameters should run (`--filter`, see filter.ts); suites ask
   * it before measuring. True for every cell when no filter was given.
   */
  accepts(params: Readonly<Record<string, string | number>>): boolean;
  /**
   * True when a filter was given: suites then pick from their full grid (also with --quick, which
   * only lowers the number of runs) and run every accepted cell whatever its estimated cost.
   */
  filtered: boolean;
}

export interface Suite {
  name: string;
  description: string;
  run(ctx: SuiteContext): Promise<void>;
}

export interface MeasureOptions {
  warmup?: number;
  runs: number;
  /** Work done by one call, for the throughput column. */
  work?: number;
  unit?: string;
  /**
   * `wall` (default) or `cpu`: this process's CPU time (all its threads), for one-thread cases
   * on a shared machine, where the wall clock also measures other jobs.
   */
  clock?: Clock;
  /**
   * Repeats the call within a run until the run lasts about this long (ms, estimated from the
   * last warm-up call) and reports the time of one call: a sub-millisecond cell timed one call a
   * run reads the host's scheduling noise (interrupts, a descheduled vCPU) and the caches' state
   * after the previous cell more than the kernel.
   */
  minRunMs?: number;
}

export type Clock = 'wall' | 'cpu';

/** Milliseconds on `clock`. */
export function now(clock: Clock = 'wall'): number {
  if (clock === 'wall') return performance.now();
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
}

/**
 * A lap clock for loops that time themselves (a training step per callback): collects earlier
 * cells' garbage first, as `measure` does, then each call returns the ms on `clock` since the
 * previous call (or since the timer was made).
 */
export function lapTimer(clock: Clock = 'wall'): () => number {
  collectGarbage();
  let last = now(clock);
  return () => {
    const t = now(clock);
    const ms = t - last;
    last = t;
    return ms;
  };
}

/**
 * Times `fn` after `warmup` untimed calls: each run is one call (or `calls` of them with
 * `minRunMs`, timed together and divided); the median is what qbnn quotes (machines here are
 * shared and noisy, so the minimum and maximum are kept too).
 */
export async function measure(
  caseName: string,
  impl: string,
  params: Record<string, unknown>,
  fn: () => unknown | Promise<unknown>,
  opts: MeasureOptions,
): Promise<CaseResult> {
  const warmup = Math.max(opts.warmup ?? 1, opts.minRunMs === undefined ? 0 : 1);
  collectGarbage();
  let lastMs = 0;
  for (let i = 0; i < warmup; i++) {
    const t0 = now(opts.clock);
    await fn();
    lastMs = now(opts.clock) - t0;
  }
  const calls = opts.minRunMs === undefined ? 1 : callsPerRun(opts.minRunMs, lastMs);
  const times: number[] = [];
  for (let i = 0; i < opts.runs; i++) {
    const t0 = now(opts.clock);
    for (let c = 0; c < calls; c++) await fn();
    times.push((now(opts.clock) - t0) / calls);
  }
  times.sort((a, b) => a - b);
  const median = medianOf(times);
  return {
    case: caseName,
    impl,
    params,
    median_ms: round(median),
    min_ms: round(times[0]),
    max_ms: round(times[times.length - 1]),
    runs: times.length,
    throughput: opts.work === undefined ? null : round((opts.work / median) * 1e3),
    unit: opts.unit ?? '',
    ...(calls > 1 ? { extra: { calls_per_run: calls } } : {}),
  };
}

/** Calls a run needs to last about `minRunMs` when one takes `oneMs` (at least 1, at most 10^5). */
export function callsPerRun(minRunMs: number, oneMs: number): number {
  if (!(oneMs > 0)) return 1;
  return Math.min(100_000, Math.max(1, Math.ceil(minRunMs / oneMs)));
}

/**
 * A full garbage collection now, when node runs with --expose-gc (as `pnpm bench` starts it): the
 * garbage an earlier cell left (the JS engine's cells allocate gigabytes) is otherwise collected by
 * V8's background threads while a later cell is timed, and process CPU time counts them (a full
 * `peers` run timed the native cells after the JS ones 15-20% slower than a run of those cells
 * alone, and the 1 ms local-mode cell up to 3x).
 */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export function medianOf(sorted: number[]): number {
  return quantileOf(sorted, 0.5);
}

/** The q-quantile (0 <= q <= 1) of the values, interpolated between order statistics. */
export function quantileOf(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const at = q * (s.length - 1);
  const lo = Math.floor(at);
  return lo + 1 < s.length ? s[lo] + (at - lo) * (s[lo + 1] - s[lo]) : s[lo];
}

/** The spread column of the tables, "q1-q3", shown when some row of the report has quartiles. */
const quartiles = (r: CaseResult): string => (r.q1_ms === undefined ? '' : `${r.q1_ms}-${r.q3_ms}`);
const hasQuartiles = (report: SuiteReport): boolean => report.results.some((r) => r.q1_ms !== undefined);
const HEADER = ['case', 'impl', 'params', 'median ms', 'q1-q3', 'min', 'max', 'throughput'];
/** Drops the quartile column (index 4 of HEADER) from a report that has none. */
const withSpread = <T>(report: SuiteReport, cells: T[]): T[] =>
  hasQuartiles(report) ? cells : cells.filter((_, i) => i !== 4);

function round(x: number): number {
  return Number(x.toPrecision(6));
}

export function machineInfo(isa: string): MachineInfo {
  const c = cpus();
  let cpuId: string | undefined;
  try {
    cpuId = cpuIdentity(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    // not Linux: the model name alone
  }
  return {
    cpu: c[0]?.model ?? 'unknown',
    ...(cpuId ? { cpuId } : {}),
    cores: c.length,
    isa,
    node: process.version,
  };
}

/** "AuthenticAMD family 25 model 17 stepping 1" from the first processor of a /proc/cpuinfo text. */
export function cpuIdentity(cpuinfo: string): string | undefined {
  const first = cpuinfo.split(/\n\s*\n/)[0] ?? '';
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1]?.trim();
  const family = field('cpu family');
  const model = field('model');
  if (family === undefined || model === undefined) return undefined;
  const stepping = field('stepping');
  return [
    field('vendor_id'),
    `family ${family} model ${model}`,
    stepping === undefined ? '' : `stepping ${stepping}`,
  ]
    .filter(Boolean)
    .join(' ');
}

/** A plain-text table of the results, for humans. */
export function formatTable(report: SuiteReport): string {
  const header = withSpread(report, HEADER);
  const rows = report.results.map((r) =>
    withSpread(report, [
      r.case,
      r.impl,
      Object.entries(r.params)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
      String(r.median_ms),
      quartiles(r),
      String(r.min_ms),
      String(r.max_ms),
      r.throughput === null ? '' : `${r.throughput} ${r.unit}`,
    ]),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  const ratios = Object.entries(report.ratios);
  if (ratios.length) {
    out.push('', 'ratios:');
    for (const [k, v] of ratios) out.push(`  ${k}: ${v}${spreadText(report.spreads?.[k])}`);
  }
  for (const n of report.notes) out.push(`note: ${n}`);
  return out.join('\n');
}

/**
 * The ratios peer[i] / qbnn[i] of paired rounds (each side's median ms in round i) and their
 * spread; the ratio quoted is its median. A slow drift of the host that lasts a round scales both
 * sides of that round's ratio, where a ratio of the two sides' overall medians would mix rounds.
 */
export function pairedRatios(peerMs: readonly number[], qbnnMs: readonly number[]): Spread {
  if (peerMs.length !== qbnnMs.length)
    throw new Error(`pairedRatios: ${peerMs.length} peer rounds but ${qbnnMs.length} qbnn rounds`);
  return spreadOf(peerMs.map((ms, i) => ms / qbnnMs[i]));
}

/** ` (min a, max b over n rounds)` after a ratio measured in rounds, else ''. */
export function spreadText(spread: Spread | undefined): string {
  if (!spread) return '';
  const f = (x: number) => Number(x.toPrecision(3));
  return ` (min ${f(spread.min)}, max ${f(spread.max)} over ${spread.n} rounds)`;
}

/** The markdown table the README links to. */
export function formatMarkdown(report: SuiteReport): string {
  const lines = [
    `## ${report.suite}`,
    '',
    `${report.date}, ${report.machine.cpu}${report.machine.cpuId ? ` (${report.machine.cpuId})` : ''}, ${report.machine.cores} cores, isa ${report.machine.isa}, node ${report.machine.node}`,
    '',
    `Command: \`${report.command}\``,
    '',
    `| ${withSpread(report, HEADER).join(' | ')} |`,
    `|${withSpread(
      report,
      HEADER.map((_, i) => (i < 3 ? '---' : '---:')),
    ).join('|')}|`,
  ];
  for (const r of report.results) {
    const params = Object.entries(r.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const tp = r.throughput === null ? '' : `${r.throughput} ${r.unit}`;
    const cells = [r.case, r.impl, params, r.median_ms, quartiles(r), r.min_ms, r.max_ms, tp];
    lines.push(`| ${withSpread(report, cells).join(' | ')} |`);
  }
  const ratios = Object.entries(report.ratios);
  if (ratios.length) {
    lines.push('', '| ratio | value |', '|---|---:|');
    for (const [k, v] of ratios) lines.push(`| ${k} | ${v}${spreadText(report.spreads?.[k])} |`);
  }
  for (const n of report.notes) lines.push('', `Note: ${n}`);
  return `${lines.join('\n')}\n`;
}
