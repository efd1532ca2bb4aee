import { defineConfig } from 'vitest/config';

// Tests import workspace packages from their TypeScript sources (the "@qbnn/source"
// export condition), so the suite needs no build step and always tests current code.
export default defineConfig({
  resolve: { conditions: ['@qbnn/source', 'import', 'module', 'node', 'default'] },
  ssr: { resolve: { conditions: ['@qbnn/source', 'import', 'node', 'default'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
