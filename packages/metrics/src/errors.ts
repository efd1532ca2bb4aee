/** Machine-readable kinds of error thrown by `@qbnn/metrics` (the same codes as the rest of qbnn). */
export type MetricsErrorCode =
  | 'ERR_ARG' // an argument has the wrong type, range or value
  | 'ERR_SHAPE' // lengths or shapes disagree
  | 'ERR_NAN'; // NaN or infinity where finite numbers are required

/**
 * The one error class of `@qbnn/metrics`. `code` says what kind of mistake it is; the message
 * names the function, the argument and what was expected.
 */
export class MetricsError extends Error {
  readonly code: MetricsErrorCode;
  constructor(code: MetricsErrorCode, message: string) {
    super(message);
    this.name = 'MetricsError';
    this.code = code;
  }
}
