import cliProgress from 'cli-progress';

/** A progress display for long work: a bar with rate and ETA on a terminal, sparse lines otherwise. */
export interface Progress {
  update(done: number, info?: Record<string, string | number>): void;
  stop(): void;
}

/**
 * Starts a progress display on stderr (stdout stays clean for `--json`). `quiet` shows nothing.
 */
export function startProgress(label: string, total: number, unit: string, quiet = false): Progress {
  if (quiet) return { update() {}, stop() {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} {info}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    const t0 = Date.now();
    bar.start(total, 0, { rate: '0', info: '' });
    return {
      update(done, info) {
        const rate = done / Math.max(1e-3, (Date.now() - t0) / 1000);
        bar.update(done, { rate: rate.toFixed(1), info: formatInfo(info) });
      },
      stop() {
        bar.stop();
      },
    };
  }
  // Not a terminal (CI, pipes): a line every 10% with rate and ETA.
  const t0 = Date.now();
  let nextTenth = 1;
  return {
    update(done, info) {
      if (total <= 0 || done < (nextTenth * total) / 10) return;
      while (done >= (nextTenth * total) / 10) nextTenth++;
      const secs = (Date.now() - t0) / 1000;
      const rate = done / Math.max(1e-3, secs);
      const eta = (total - done) / Math.max(1e-9, rate);
      process.stderr.write(
        `${label}: ${done}/${total} ${unit} (${Math.round((100 * done) / total)}%), ${rate.toFixed(1)} ${unit}/s, ETA ${eta.toFixed(0)} s ${formatInfo(info)}\n`,
      );
    },
    stop() {},
  };
}

function formatInfo(info?: Record<string, string | number>): string {
  if (!info) return '';
  return Object.entries(info)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(4)) : v}`)
    .join(' ');
}
