/** Machine-readable kinds of error every qbnn package throws. */
export type QbnnErrorCode =
  | 'ERR_ARG' // an argument has the wrong type, range or value
  | 'ERR_SHAPE' // lengths or shapes disagree
  | 'ERR_NAN' // NaN or infinity where finite numbers are required
  | 'ERR_UNKNOWN' // a name not found in a registry
  | 'ERR_UNSUPPORTED' // a valid request this implementation does not support
  | 'ERR_FORMAT' // a file or buffer is malformed
  | 'ERR_BACKEND'; // a tfjs backend or native addon failed

/**
 * The one error class of qbnn. `code` says what kind of mistake it is; the message names the
 * argument and what was expected.
 */
export class QbnnError extends Error {
  readonly code: QbnnErrorCode;
  constructor(code: QbnnErrorCode, message: string) {
    super(message);
    this.name = 'QbnnError';
    this.code = code;
  }
}
