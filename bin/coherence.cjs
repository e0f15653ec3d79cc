#!/usr/bin/env node
// The coherence command: the compiled CLI in dist/ (`npm run build` makes it; a packed or
// installed package always has it). CommonJS, because Node starts it faster than ESM.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const cli = join(__dirname, '..', 'dist', 'cli.cjs');
if (!existsSync(cli)) {
  process.stderr.write('coherence: dist/cli.cjs is missing; run `npm run build` in the coherence checkout first\n');
  process.exit(1);
}
require(cli).main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
