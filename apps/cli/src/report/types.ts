/** Everything the HTML report shows. Each optional section is left out when absent. */
export interface ReportData {
  title: string;
  createdAt: string;
  /** The run's configuration, shown as a key/value table. */
  config: Record<string, string | number | boolean>;
  /** Rows of metrics, one column per model (e.g. float, int8 PTQ, int8 QAT). */
  metrics?: { columns: string[]; rows: { metric: string; values: (number | null)[] }[] };
  /** Reliability-diagram bins for each model. */
  reliability?: { model: string; bins: { confidence: number; accuracy: number; count: number }[] }[];
  /** Predictive-entropy samples, grouped (e.g. correct / wrong, in-distribution / OOD). */
  entropy?: { model: string; group: string; values: number[] }[];
  /** Accuracy after referring the most uncertain fraction, for each model. */
  referral?: { model: string; points: { fraction: number; accuracy: number }[] }[];
  /** OOD ROC curves, with the data set used as OOD named in `oodName`. */
  roc?: {
    oodName: string;
    curves: { model: string; auroc: number; points: { fpr: number; tpr: number }[] }[];
  };
  /** Images per second for each implementation. */
  throughput?: { impl: string; imagesPerSecond: number }[];
  /** Metric against bit width (the Ferianc sweep). */
  sweep?: SweepPoint[];
  /** Free text lines shown under the title (data used, fallbacks). */
  notes?: string[];
}

/** One point of a bit-width sweep. */
export interface SweepPoint {
  posterior: string;
  /** The line (weight bits at A7, activation bits at W8) or the W x A grid. */
  sweep: string;
  /** The swept bit width; 32 is the float model. */
  bits: number;
  metric: string;
  value: number;
  /** ptq, qat (or float when a posterior has no quantised points). */
  mode?: string;
  /** The data set's label (MNIST, Fashion-MNIST, Boston, Diabetes). */
  data?: string;
  wbits?: number;
  abits?: number;
  /** Cross-validation fold of a regression point. */
  fold?: number;
}
