// The child process of plain-wasm.ts: runs a bnn grid on plain tfjs-backend-wasm (started with
// QBNN_NATIVE_FP32=0) and prints its cells as one JSON document.
import { floatKernelSet } from '@qbnn/core';
import type { CaseResult, SuiteContext } from './harness.js';
import type { ChildGridReply, ChildGridRequest } from './plain-wasm.js';
import { cellKey, runGrid } from './suites/bnn.js';

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2]) as ChildGridRequest;
  const reply: ChildGridReply = { results: [], notes: [], ms: [] };
  const accepted = new Set(req.accepted);
  const must = new Set(req.mustRun);
  const ctx: SuiteContext = {
    quick: req.quick,
    runs: req.runs,
    rounds: 1, // the child runs grids only, no paired rounds
    filtered: req.filtered,
    add(r: CaseResult) {
      reply.results.push(r);
      return r;
    },
    note: (text) => reply.notes.push(text),
    ratio: () => {},
    // Only a whole cell's parameters name a key; partial questions (a model, an impl) pass.
    accepts: (p) =>
      p.batch === undefined ||
      accepted.has(
        cellKey({
          model: p.model as never,
          posterior: p.posterior as never,
          precision: String(p.impl),
          mode: p.mode as never,
          batch: Number(p.batch),
          samples: Number(p.L),
        }),
      ),
  };
  const ms = await runGrid(ctx, { ...req.grid, mustRun: (k) => must.has(k) });
  if (floatKernelSet() !== null)
    throw new Error('native fp32 kernels are active in the plain tfjs-wasm child');
  reply.ms = [...ms];
  process.stdout.write(JSON.stringify(reply));
}

main().catch((err) => {
  process.stderr.write(
    `plain-wasm-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
