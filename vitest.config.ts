import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // `import ... from 'coherence'` (as the examples write it) means the sources here, as the
    // tsconfig `paths` say for tsc and tsx; the package's `exports` point at dist/ for users.
    alias: [
      { find: /^coherence$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      { find: /^coherence\/testing$/, replacement: fileURLToPath(new URL('./src/testing/index.ts', import.meta.url)) },
      { find: /^coherence\/postgres$/, replacement: fileURLToPath(new URL('./src/storage/postgres/index.ts', import.meta.url)) },
      { find: /^coherence\/http$/, replacement: fileURLToPath(new URL('./src/http/index.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
