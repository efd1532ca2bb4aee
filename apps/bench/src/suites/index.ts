import type { Suite } from '../harness.js';
import { bnnSuite } from './bnn.js';
import { gemmSuite } from './gemm.js';
import { rngSuite } from './rng.js';

/** Every suite, in the order `pnpm bench all` runs them. */
export const SUITES: Suite[] = [gemmSuite, rngSuite, bnnSuite];
