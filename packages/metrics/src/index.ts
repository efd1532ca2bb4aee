/**
 * `@qbnn/metrics`: accuracy and uncertainty metrics for (quantised) Bayesian neural networks on
 * plain typed arrays. No dependency at all.
 *
 * @packageDocumentation
 */
export {
  type CalibrationResult,
  calibration,
  calibrationBinIndex,
  DEFAULT_BINS,
  type ReliabilityBin,
} from './calibration.js';
export {
  accuracy,
  averagePredictiveEntropy,
  brierScore,
  ClassificationAccumulator,
  type ClassificationMetrics,
  type ClassificationOptions,
  type ClassificationPerExample,
  type ClassificationShape,
  classificationMetrics,
  DEFAULT_TOLERANCE,
  errorRate,
  expectedAleatoricEntropy,
  expectedCalibrationError,
  maximumCalibrationError,
  mutualInformation,
  negativeLogLikelihood,
  predictiveMean,
  reliabilityDiagram,
  type UncertaintyScores,
  uncertaintyScores,
} from './classification.js';
export { MetricsError, type MetricsErrorCode } from './errors.js';
export { entropy, erfc, LOG_FLOOR, normalCdf, normalQuantile, safeLog } from './numeric.js';
export {
  auroc,
  averagePrecision,
  fprAtTpr,
  OodAccumulator,
  type OodMetrics,
  oodMetrics,
  type RocCurve,
  rocCurve,
} from './ranking.js';
export {
  type ReferralOptions,
  type ReferralPoint,
  type ReferralTarget,
  referralCurve,
  referralRateForAccuracy,
} from './referral.js';
export {
  type CoveragePoint,
  DEFAULT_COVERAGE_LEVELS,
  gaussianNll,
  intervalCoverage,
  mae,
  predictiveMoments,
  RegressionAccumulator,
  type RegressionMetrics,
  type RegressionMoments,
  type RegressionOptions,
  type RegressionShape,
  regressionMetrics,
  rmse,
} from './regression.js';
