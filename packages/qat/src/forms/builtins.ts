import { ensembleForm } from './ensemble.js';
import { fixedForm } from './fixed.js';
import { gaussianForm } from './gaussian.js';
import { mcDropoutForm } from './mcdropout.js';
import { radialForm } from './radial.js';
import { registerIntegerForm } from './registry.js';

/** Registers the built-in forms (done on import of @qbnn/qat; safe to call again). */
export function registerBuiltinIntegerForms(): void {
  for (const f of [fixedForm, gaussianForm, radialForm, mcDropoutForm, ensembleForm]) {
    registerIntegerForm(f as never, { replace: true });
  }
}

registerBuiltinIntegerForms();
