// The PyTorch side of the peers and train suites: which interpreter runs it, the environment its
// processes get (one thread, OpenBLAS, the tuned allocator) and the one-shot runs of
// peers/torch_bnn.py.
import { execFile, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const PYTHON = process.env.QBNN_BENCH_PYTHON ?? '/usr/bin/python3';
const BNN_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'peers', 'torch_bnn.py');
/** PyTorch fp32 uses reference BLAS unless OpenBLAS is on the library path (DESIGN.md section 7). */
export const OPENBLAS = '/usr/lib/x86_64-linux-gnu/openblas-pthread';

/**
 * glibc malloc settings for the tuned PyTorch peer. With glibc's defaults, PyTorch's large
 * activation buffers are returned to the kernel and faulted in again every step (3,000-10,000
 * minor page faults a LeNet-5 training step, in system time), so its step time doubles and
 * scatters 3x with the allocator's dynamic thresholds (the int8 ResNet-18 inference peer: 265-373
 * ms a call across processes, 200-259 tuned). A fixed mmap threshold at glibc's maximum (32 MiB)
 * and no heap trimming keep them mapped, as the jemalloc / tcmalloc that PyTorch's CPU tuning
 * guides recommend do.
 */
export const TUNED_MALLOC: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(32 << 20),
  MALLOC_TRIM_THRESHOLD_: String(2 ** 32),
};

/** The environment of a PyTorch peer process: `threads` everywhere, OpenBLAS, `malloc` settings. */
export function torchEnv(threads: number, malloc: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...malloc,
    OMP_NUM_THREADS: String(threads),
    MKL_NUM_THREADS: String(threads),
    OPENBLAS_NUM_THREADS: String(threads),
    LD_LIBRARY_PATH: [OPENBLAS, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
  };
}

/** Why torch cannot run here, or null when `python3 -c 'import torch'` works. */
export function torchUnavailable(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) return `${PYTHON} could not be run (${r.error.message})`;
  if (r.status !== 0) return `${PYTHON} cannot import torch (${(r.stderr ?? '').trim().split('\n').pop()})`;
  return null;
}

/** One case of torch_bnn.py's answer (times in ms, per MC inference call). */
export interface TorchCase {
  impl: string;
  batch: number;
  samples: number;
  median_ms: number;
  min_ms: number;
  max_ms: number;
  runs: number;
}
export interface TorchReport {
  model?: string;
  torch: string;
  engine: string | null;
  threads: number;
  results: TorchCase[];
}

/** The request torch_bnn.py takes (see its docstring). */
export interface TorchBnnRequest {
  model?: 'lenet5' | 'resnet18';
  threads: number;
  batches: number[];
  samples: number[];
  runs: number;
  warmup: number;
  impls: ('fp32' | 'int8')[];
  cpuClock: boolean;
}

/** Runs peers/torch_bnn.py once, in a fresh process with {@link torchEnv}. */
export async function runTorchBnn(
  req: TorchBnnRequest,
  malloc: Readonly<Record<string, string>> = TUNED_MALLOC,
): Promise<TorchReport> {
  const { stdout } = await promisify(execFile)(PYTHON, [BNN_SCRIPT, JSON.stringify(req)], {
    maxBuffer: 16 << 20,
    timeout: 30 * 60_000,
    env: torchEnv(req.threads, malloc),
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as TorchReport;
}
