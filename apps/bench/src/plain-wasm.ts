// Plain tfjs-backend-wasm cells in a child process. Importing @qbnn/native-amx replaces
// tfjs-wasm's fp32 kernels by qbnn's native ones, so a cell called "tfjs-wasm" in the same
// process would silently measure the native kernels; the child is started with
// QBNN_NATIVE_FP32=0 and never has them.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CaseResult, SuiteContext } from './harness.js';
import type { BnnGrid } from './suites/bnn.js';

/** What the parent sends: a grid without its mustRun function (as the keys it accepts). */
export interface ChildGridRequest {
  grid: Omit<BnnGrid, 'mustRun'>;
  mustRun: string[];
  /** Cells (by cellKey) the parent's filter accepts. */
  accepted: string[];
  quick: boolean;
  filtered: boolean;
  runs: number;
}

/** What the child prints (one JSON document on stdout). */
export interface ChildGridReply {
  results: CaseResult[];
  notes: string[];
  ms: [string, number][];
}

/** The built child entry (dist/plain-wasm-child.js), also when this module runs from src. */
const CHILD = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'plain-wasm-child.js');

/**
 * Runs `req.grid` (fp32-tfjs-wasm cells) in a child Node process without the native fp32
 * kernels; records its cells and notes into `ctx` and returns their median ms by cell key.
 */
export async function runPlainWasmChild(
  ctx: SuiteContext,
  req: ChildGridRequest,
): Promise<Map<string, number>> {
  if (!existsSync(CHILD)) {
    ctx.note(`plain tfjs-wasm cells skipped: ${CHILD} is not built (pnpm build)`);
    return new Map();
  }
  const { stdout } = await promisify(execFile)(process.execPath, [CHILD, JSON.stringify(req)], {
    maxBuffer: 64 << 20,
    timeout: 60 * 60_000,
    env: { ...process.env, QBNN_NATIVE_FP32: '0' },
  });
  const reply = JSON.parse(stdout) as ChildGridReply;
  for (const r of reply.results) ctx.add({ ...r, params: { ...r.params, process: 'child' } });
  for (const n of reply.notes) ctx.note(`plain tfjs-wasm child process: ${n}`);
  return new Map(reply.ms);
}
