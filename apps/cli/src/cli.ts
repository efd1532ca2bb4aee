import { QbnnError } from '@qbnn/core';
import { flagHelp, UsageError } from './args.js';
import type { Command, Io } from './commands/common.js';
import { demo } from './commands/demo.js';
import { evaluate } from './commands/eval.js';
import { importCommand } from './commands/import.js';
import { quantize } from './commands/quantize.js';
import { report } from './commands/report.js';
import { sweep } from './commands/sweep.js';
import { train } from './commands/train.js';
import { InterruptedError } from './interrupt.js';

/** The commands, in help order. */
export const COMMANDS: Command[] = [demo, train, quantize, evaluate, report, sweep, importCommand];

const stdio: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

/** `qbnn --help`. */
export function mainHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'qbnn: quantised Bayesian neural networks',
    '',
    'usage: qbnn <command> [flags]     (qbnn <command> --help for its flags)',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'examples:',
    '  qbnn demo                                   # the end-to-end demo (a few minutes)',
    '  qbnn train --posterior mcdropout --out qbnn-out/mcd.safetensors',
    '  qbnn quantize --checkpoint qbnn-out/mcd.safetensors --mode ptq --wbits 4 --abits 8',
    '  qbnn eval --checkpoint qbnn-out/mcd.safetensors --quantized qbnn-out/mcd-ptq-w4a8.safetensors --report qbnn-out/report.html',
    '  qbnn sweep --quick',
    '',
  ].join('\n');
}

/** `qbnn <command> --help`. */
export function commandHelp(c: Command): string {
  return [
    `qbnn ${c.name}: ${c.summary}`,
    '',
    `usage: ${c.usage}`,
    '',
    'flags:',
    flagHelp(c.flags),
    '',
    `example: ${c.example}`,
    '',
  ].join('\n');
}

/**
 * Runs the cli on `argv` (without node and the script). Returns the exit code: 0 on success,
 * 2 for a bad command line (the message names the flag and the allowed values), 130 when
 * interrupted by Ctrl-C, 1 for any other error.
 */
export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === 'help' && rest[0]) {
      const c = COMMANDS.find((x) => x.name === rest[0]);
      if (c) {
        io.out(commandHelp(c));
        return 0;
      }
    }
    io.out(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(
      `qbnn: unknown command '${name}'; commands: ${COMMANDS.map((c) => c.name).join(', ')} (qbnn --help)\n`,
    );
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(commandHelp(command));
    return 0;
  }
  try {
    await command.run(rest, io);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n(qbnn ${name} --help lists the flags)\n`);
      return 2;
    }
    if (err instanceof InterruptedError) {
      io.err(`qbnn ${name}: ${err.message}\n`);
      return 130;
    }
    if (err instanceof QbnnError && (err.code === 'ERR_ARG' || err.code === 'ERR_UNKNOWN')) {
      io.err(`qbnn ${name}: ${err.message}\n`);
      return 2;
    }
    // A typed error is an expected failure (a damaged file, an unsupported option): its message
    // says what is wrong, a stack trace would only bury it. Untyped errors are bugs: keep the stack.
    if (err instanceof QbnnError && !process.env.QBNN_DEBUG) {
      io.err(`qbnn ${name}: error [${err.code}]: ${err.message}\n`);
      return 1;
    }
    io.err(`qbnn ${name}: error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
