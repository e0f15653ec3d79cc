/**
 * Start-up of the command: `coherence head` on an empty store (the compiled bin, as an installed
 * package runs it) against `node -e 0` in the same run, interleaved run by run with the order
 * alternating, so that the load of the machine lands on both alike. Each is a fresh process
 * timed from spawn to exit; the ratio is the median over rounds of coherence/node within a round.
 * Needs dist/ (`npm run bench` builds first).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openLog } from '../src/index.ts';
import { emit, median, note, now, round, type Bench } from './support.ts';

const TARGET_RATIO = 2;
const bin = fileURLToPath(new URL('../bin/coherence.cjs', import.meta.url));
const cli = fileURLToPath(new URL('../dist/cli.cjs', import.meta.url));

/** Runs `node ...args` to completion and returns the milliseconds it took. */
function timed(args: readonly string[], expected: string): number {
  const started = now();
  const run = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = now() - started;
  if (run.status !== 0 || run.stdout !== expected) {
    throw new Error(`bench: node ${args.join(' ')} exited ${run.status} printing ${JSON.stringify(run.stdout)}; stderr: ${run.stderr}`);
  }
  return ms;
}

export const cliStartup: Bench = {
  name: 'cli-startup',
  description: 'coherence head on an empty store vs node -e 0, fresh processes',
  async run(context) {
    if (!existsSync(cli)) throw new Error('bench: dist/cli.cjs is missing; run `npm run build` (npm run bench does)');
    const store = context.tempDir();
    await (await openLog({ path: store })).close();
    const rounds = context.scaled(40, 10);
    const warm = 3;
    const head = [bin, '--store', store, 'head'];
    const coherence: number[] = [];
    const node: number[] = [];
    const ratios: number[] = [];
    note(`cli-startup: ${warm} warm-up rounds, then ${rounds}, each one coherence head and one node -e 0`);
    for (let i = 0; i < warm + rounds; i++) {
      const first = i % 2 === 0;
      const a = first ? timed(head, '0\n') : timed(['-e', '0'], '');
      const b = first ? timed(['-e', '0'], '') : timed(head, '0\n');
      const [cohMs, nodeMs] = first ? [a, b] : [b, a];
      if (i < warm) continue;
      coherence.push(cohMs);
      node.push(nodeMs);
      ratios.push(cohMs / nodeMs);
    }
    const ratio = median(ratios);
    emit({
      bench: 'cli-startup',
      rounds,
      coherence_head_ms: round(median(coherence), 1),
      node_e0_ms: round(median(node), 1),
      coherence_min_ms: round(Math.min(...coherence), 1),
      node_min_ms: round(Math.min(...node), 1),
      ratio: round(ratio, 2),
      target: `<=${TARGET_RATIO}x node -e 0`,
      met: ratio <= TARGET_RATIO,
    });
  },
};
