/**
 * The start of a child of the crash tests: it prints "loaded" once its modules are in, then waits
 * for the parent's "go" on stdin, so that the parent can time its work (and its kill) from there.
 */
import { createInterface } from 'node:readline';

export async function loadedThenGo(): Promise<void> {
  const input = createInterface({ input: process.stdin });
  console.log('loaded');
  await new Promise<void>((resolve) => input.on('line', (line) => line === 'go' && resolve()));
  input.close();
}
