/**
 * @qbnn/cli: the `qbnn` command (demo, train, quantize, eval, sweep, report) and its pieces,
 * usable from code: `main(argv)` runs a command line and returns the exit code.
 * @packageDocumentation
 */
export { flagHelp, parseFlags, UsageError } from './args.js';
export { COMMANDS, commandHelp, main, mainHelp } from './cli.js';
export type { Command, Io } from './commands/common.js';
export { type Results, toReportData } from './lib/results.js';
export { renderReport } from './report/html.js';
export type { ReportData } from './report/types.js';
