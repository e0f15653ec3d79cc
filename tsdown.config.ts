/**
 * The build (`npm run build`, and `prepack` before every `npm pack` / `npm publish`).
 *
 * The library: every public entry, as ESM (`.js` + `.d.ts`) and CommonJS (`.cjs` + `.d.cts`),
 * with source maps. All entries of one format are bundled together with code splitting, so a
 * module two entries share (the error classes above all) is one chunk that both load:
 * `instanceof CoherenceError` holds across `coherence` and `coherence/testing`. Dependencies
 * (lmdb, msgpackr, noble, ...) stay external, taken from package.json.
 *
 * The command line: one CommonJS file, `dist/cli.cjs`, run by `bin/coherence.cjs`. CommonJS
 * because Node 20 starts it faster: lmdb and msgpackr then load their single-file CJS builds
 * instead of an ESM module graph (see bench/cli-startup.ts).
 */
import { defineConfig, type UserConfig } from 'tsdown';

/**
 * The public entries: the name of the output file -> its source. Adding a subpath is this one
 * line plus its entry in package.json `exports` (`./testing` -> `./dist/testing.js`, ...).
 */
const entries: Record<string, string> = {
  index: 'src/index.ts',
  testing: 'src/testing/index.ts',
  postgres: 'src/storage/postgres/index.ts',
  http: 'src/http/index.ts',
};

const common = {
  platform: 'node',
  target: 'node20.19',
  outDir: 'dist',
  sourcemap: true,
  // `.js`/`.d.ts` for ESM and `.cjs`/`.d.cts` for CommonJS (the package is "type": "module").
  fixedExtension: false,
  // CommonJS is shipped on purpose, for require() users; no advice needed.
  checks: { legacyCjs: false },
} satisfies UserConfig;

/** The library build (test/package/build.test.ts builds it with a second entry). */
export const library: UserConfig = {
  ...common,
  entry: entries,
  format: ['esm', 'cjs'],
  dts: { sourcemap: false },
  clean: true,
};

export default defineConfig([
  library,
  {
    ...common,
    entry: { cli: 'src/cli/main.ts' },
    format: ['cjs'],
    // `serve` loads the gateway from the package itself, the copy the config module's
    // `import 'coherence'` shares, not one bundled into the command.
    external: ['coherence/http'],
    // One file still: `serve`'s own code (a few lines; the gateway is the package's) is inlined.
    outputOptions: { codeSplitting: false },
    dts: false,
    clean: false,
  },
]);
