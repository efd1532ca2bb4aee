import { QbnnError, Registry } from '@qbnn/core';
import type { IntegerForm, IntegerWeights } from './types.js';

const forms = new Registry<IntegerForm>('integer form');
/** Posterior registry name -> the form that converts it. */
const byPosterior = new Map<string, string>();

function check(form: IntegerForm): void {
  const need = ['stochastic', 'sample', 'sizeBytes', 'weightBits', 'save', 'load'] as const;
  for (const f of need) {
    if (typeof form[f] !== 'function') {
      throw new QbnnError(
        'ERR_ARG',
        `registerIntegerForm('${String(form.kind)}'): '${f}' must be a function (see @qbnn/qat's IntegerForm)`,
      );
    }
  }
  if ((form.posteriors?.length ?? 0) > 0 && typeof form.fromFloat !== 'function') {
    throw new QbnnError(
      'ERR_ARG',
      `registerIntegerForm('${form.kind}'): a form that converts posteriors needs fromFloat`,
    );
  }
}

/**
 * Registers an integer form under `form.kind`, and as the conversion of every posterior named in
 * `form.posteriors`. A third-party posterior package calls this once at import, beside its
 * `registerPosterior`, and its layers then convert, run, save and load in the integer engine.
 *
 * @param options.replace - allow replacing an existing form or posterior mapping (default false).
 * @throws QbnnError ERR_ARG for a malformed form or a name already registered without `replace`.
 */
export function registerIntegerForm<W extends IntegerWeights>(
  form: IntegerForm<W>,
  options: { replace?: boolean } = {},
): void {
  if (typeof form?.kind !== 'string' || !/^[A-Za-z][A-Za-z0-9_.:-]*$/.test(form.kind)) {
    throw new QbnnError('ERR_ARG', `registerIntegerForm: invalid kind '${String(form?.kind)}'`);
  }
  const f = form as unknown as IntegerForm;
  check(f);
  for (const p of f.posteriors ?? []) {
    const owner = byPosterior.get(p);
    if (owner !== undefined && owner !== f.kind && !options.replace) {
      throw new QbnnError(
        'ERR_ARG',
        `registerIntegerForm('${f.kind}'): posterior '${p}' already converts through form '${owner}' (pass { replace: true })`,
      );
    }
  }
  forms.register(f.kind, f, { override: options.replace === true });
  for (const p of f.posteriors ?? []) byPosterior.set(p, f.kind);
}

/** The form stored layers of kind `kind` run through; ERR_UNKNOWN naming the registered ones. */
export function getIntegerForm(kind: string): IntegerForm {
  return forms.get(kind);
}

/** The form that converts posterior `name` (`Posterior.kind`), or undefined. */
export function integerFormFor(posterior: string): IntegerForm | undefined {
  const k = byPosterior.get(posterior);
  return k === undefined ? undefined : forms.get(k);
}

/** Names of the registered forms, sorted. */
export function listIntegerForms(): string[] {
  return forms.list().sort();
}

/** Removes a form and its posterior mappings (tests, hot reload). Returns whether it existed. */
export function unregisterIntegerForm(kind: string): boolean {
  for (const [p, k] of byPosterior) if (k === kind) byPosterior.delete(p);
  return forms.unregister(kind);
}
