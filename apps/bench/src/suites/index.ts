import type { Suite } from '../harness.js';
import { bnnSuite } from './bnn.js';
import { convSuite } from './conv.js';
import { gemmSuite } from './gemm.js';
import { klSuite } from './kl.js';
import { peersSuite } from './peers.js';
import { rngSuite } from './rng.js';
import { sizeSuite } from './size.js';
import { trainSuite } from './train.js';
import { wasmSuite } from './wasm.js';

/** Every suite, in the order `pnpm bench all` runs them. */
export const SUITES: Suite[] = [
  gemmSuite,
  convSuite,
  rngSuite,
  klSuite,
  bnnSuite,
  peersSuite,
  trainSuite,
  sizeSuite,
  wasmSuite,
];
