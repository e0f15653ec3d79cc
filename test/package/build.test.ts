/**
 * The build keeps one copy of every shared module per format, however many entries there are:
 * built with a second entry beside the main one, an error thrown by either is an instance of the
 * other's classes, in ESM and in CommonJS. This is what makes `instanceof CoherenceError` hold
 * across `coherence` and the subpaths to come (`coherence/testing`, ...).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'tsdown';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { library } from '../../tsdown.config.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
// Inside node_modules/, so the built files find lmdb and the other dependencies as a user's would.
const out = mkdtempSync(join(root, 'node_modules', '.coherence-build-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

beforeAll(async () => {
  await build({
    ...library,
    entry: { index: 'src/index.ts', second: 'test/package/fixtures/second-entry.ts' },
    outDir: out,
    dts: false,
    config: false,
    logLevel: 'error',
  });
}, 120_000);

/** Runs `source` with Node in the output directory and returns what it printed, parsed. */
async function inNode(file: string, source: string): Promise<unknown> {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(out, file), source);
  const { stdout } = await promisify(execFile)(process.execPath, [join(out, file)], { cwd: out });
  return JSON.parse(stdout) as unknown;
}

const check = (load: string) => `${load}
  let error;
  try { second.checkIdentity('not an identity'); } catch (e) { error = e; }
  console.log(JSON.stringify({
    sameClass: second.InvalidArgumentError === main.InvalidArgumentError,
    isCoherenceError: error instanceof main.CoherenceError,
    isInvalidArgument: error instanceof main.InvalidArgumentError,
  }));`;

describe('a build with two entries', () => {
  it('defines each error class once per format', () => {
    for (const extension of ['.js', '.cjs']) {
      const files = readdirSync(out).filter((file) => file.endsWith(extension));
      expect(files.length, extension).toBeGreaterThanOrEqual(2);
      const definitions = files.map((file) => readFileSync(join(out, file), 'utf8').match(/\bCoherenceError = class extends Error\b|\bclass CoherenceError extends Error\b/g)?.length ?? 0);
      expect(definitions.reduce((a, b) => a + b, 0), `${extension}: ${files.join(', ')}`).toBe(1);
    }
  });

  it('shares the classes between the entries in ESM', async () => {
    const result = await inNode('check.mjs', check(`const main = await import('./index.js'); const second = await import('./second.js');`));
    expect(result).toEqual({ sameClass: true, isCoherenceError: true, isInvalidArgument: true });
  });

  it('shares the classes between the entries in CommonJS', async () => {
    const result = await inNode('check.cjs', check(`const main = require('./index.cjs'); const second = require('./second.cjs');`));
    expect(result).toEqual({ sameClass: true, isCoherenceError: true, isInvalidArgument: true });
  });
});
