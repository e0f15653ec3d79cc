/**
 * The layers of ARCHITECTURE.md, checked on the sources: every import in src/ runs down the
 * stack (or stays inside its own folder), engines never import the log or each other, and keys
 * and projections, side by side, never import each other.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(new URL('../src', import.meta.url).pathname);

/** Layer of a source file, by its folder; higher layers may import lower ones only. */
function layerOf(file: string): { name: string; rank: number } {
  const path = relative(SRC, file);
  const [top, second] = path.split('/');
  if (path === 'errors.ts') return { name: 'errors', rank: 0 };
  if (path === 'index.ts') return { name: 'index', rank: 9 };
  if (top === 'storage') {
    if (second === 'engine.ts' || second === 'registry.ts') return { name: 'storage', rank: 3 };
    return { name: `storage/${second}`, rank: 3.5 };
  }
  const ranks: Record<string, number> = { model: 1, crypto: 2, log: 4, keys: 5, projections: 5, api: 6, commands: 7, testing: 8, http: 8, cli: 10 };
  const rank = ranks[top as string];
  if (rank === undefined) throw new Error(`src/${path}: a folder ARCHITECTURE.md does not place`);
  return { name: top as string, rank };
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:(?:import|export)[^'"]*?from\s+|import\()'(\.[^']+)'/g)]
    .map((m) => resolve(dirname(file), m[1] as string))
    .filter((target) => target.startsWith(`${SRC}/`)); // package.json (the CLI's version) is no layer
}

describe('the layers of src/', () => {
  it('import downwards only, engines never the log nor each other, keys and projections not each other', () => {
    const wrong: string[] = [];
    for (const file of sources(SRC)) {
      const from = layerOf(file);
      for (const target of imports(file)) {
        const to = layerOf(target);
        if (from.name === to.name) continue;
        const sideways = from.rank === to.rank;
        if (to.rank > from.rank || sideways) wrong.push(`src/${relative(SRC, file)} (${from.name}) imports src/${relative(SRC, target)} (${to.name})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('finds the imports it checks (the check is real)', () => {
    const all = sources(SRC).flatMap(imports);
    expect(all.length).toBeGreaterThan(100);
    expect(all.some((target) => target.endsWith('storage/engine.ts'))).toBe(true);
  });
});
