/**
 * A labelled image set in NCHW layout.
 *
 * `images` holds `shape[0] * shape[1] * shape[2] * shape[3]` float32 values in [0, 1], row-major
 * [N, C, H, W]; `labels` holds N class ids in [0, classNames.length).
 */
export interface ImageSet {
  images: Float32Array;
  labels: Int32Array;
  /** [N, C, H, W]. */
  shape: [number, number, number, number];
  /** Names of the classes, indexed by label. */
  classNames: readonly string[];
}

/** A regression set: `x` is row-major [n, nFeatures], `y` holds n targets. */
export interface RegressionSet {
  x: Float32Array;
  y: Float32Array;
  n: number;
  nFeatures: number;
}

/** The number of samples of each class: `counts[c]` is how many labels equal c. */
export function classCounts(labels: Int32Array, numClasses: number): Int32Array {
  const counts = new Int32Array(numClasses);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts;
}
