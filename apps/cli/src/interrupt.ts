/**
 * Ctrl-C handling: the first SIGINT asks long work to stop at its next safe point (after the
 * current step; files are only ever written whole, by temp file and rename); a second one
 * exits at once. Long loops call `throwIfInterrupted()`.
 */
let interrupted = false;
let installed = false;

export class InterruptedError extends Error {
  override name = 'InterruptedError';
  constructor() {
    super('interrupted (Ctrl-C): stopped at a safe point; no partial files were written');
  }
}

export function installInterruptHandler(): void {
  if (installed) return;
  installed = true;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write('\nqbnn: stopping after the current step (Ctrl-C again to quit now)\n');
  });
}

export function isInterrupted(): boolean {
  return interrupted;
}

export function throwIfInterrupted(): void {
  if (interrupted) throw new InterruptedError();
}
