import { QbnnError } from '@qbnn/core';

/**
 * A KL weight schedule. Weights are in the units of {@link elboLoss} (loss = NLL_mean + beta KL / N):
 * beta = 1 is the exact ELBO; minibatch weightings pi_i of the literature (which sum to 1 over
 * the M batches of an epoch in the summed objective) appear here as beta_i = M pi_i, which
 * average to 1 over the epoch.
 *
 * - `standard`: beta = 1 (KL spread uniformly, KL / N per example).
 * - `graves`: Graves (2011) splits the KL uniformly over the M minibatches, pi_i = 1/M: in these
 *   units beta = 1, the same weighting as `standard` (kept as a named alias).
 * - `blundell`: Blundell et al. (2015), pi_i = 2^(M-i) / (2^M - 1) for batch i = 1..M, so early
 *   batches of an epoch carry most of the KL: beta_i = M 2^(M-i) / (2^M - 1).
 * - `{ linear: warmup }`: beta rises linearly from 0 to 1 over `warmup` steps, then stays 1.
 * - `{ cyclical: { period, ratio } }`: Fu et al. (2019): in each period of `period` steps beta
 *   rises linearly from 0 to 1 over the first `ratio` fraction, then holds 1.
 * - a number: constant beta.
 */
export type BetaSchedule =
  | 'standard'
  | 'graves'
  | 'blundell'
  | number
  | { linear: number }
  | { cyclical: { period: number; ratio?: number } };

/** Where training is, for a schedule. */
export interface ScheduleState {
  /** Index of the batch within the epoch, 0-based. */
  batch: number;
  /** Batches per epoch (M). */
  batchesPerEpoch: number;
  /** Global step count, 0-based (for warm-ups). Default epoch * M + batch. */
  step?: number;
  /** Epoch, 0-based. Default 0. */
  epoch?: number;
}

/** The KL weight beta of a batch (see {@link BetaSchedule}). */
export function klWeight(schedule: BetaSchedule, state: ScheduleState): number {
  const m = state.batchesPerEpoch;
  if (!(Number.isSafeInteger(m) && m > 0)) {
    throw new QbnnError('ERR_ARG', `klWeight: batchesPerEpoch must be a positive integer, got ${m}`);
  }
  if (!(Number.isSafeInteger(state.batch) && state.batch >= 0 && state.batch < m)) {
    throw new QbnnError('ERR_ARG', `klWeight: batch must be in [0, ${m}), got ${state.batch}`);
  }
  const step = state.step ?? (state.epoch ?? 0) * m + state.batch;
  if (typeof schedule === 'number') {
    if (!(schedule >= 0 && Number.isFinite(schedule)))
      throw new QbnnError('ERR_ARG', `klWeight: bad beta ${schedule}`);
    return schedule;
  }
  if (schedule === 'standard' || schedule === 'graves') return 1;
  if (schedule === 'blundell') {
    const i = state.batch + 1;
    // M 2^(M-i) / (2^M - 1) = M 2^-i / (1 - 2^-M), stable for large M (2^-i underflows to 0 past i ~ 1074).
    return (m * 2 ** -i) / (1 - 2 ** -m);
  }
  if ('linear' in schedule) {
    const w = schedule.linear;
    if (!(w >= 0)) throw new QbnnError('ERR_ARG', `klWeight: linear warm-up must be >= 0, got ${w}`);
    return w === 0 ? 1 : Math.min(1, step / w);
  }
  if ('cyclical' in schedule) {
    const { period, ratio = 0.5 } = schedule.cyclical;
    if (!(Number.isSafeInteger(period) && period > 0) || !(ratio > 0 && ratio <= 1)) {
      throw new QbnnError('ERR_ARG', `klWeight: cyclical needs an integer period > 0 and ratio in (0, 1]`);
    }
    const tau = (step % period) / period;
    return Math.min(1, tau / ratio);
  }
  throw new QbnnError('ERR_ARG', `klWeight: unknown schedule ${JSON.stringify(schedule)}`);
}
