import type { Suite } from '../harness.js';

/** Every suite, in the order `pnpm bench all` runs them. */
export const SUITES: Suite[] = [];
