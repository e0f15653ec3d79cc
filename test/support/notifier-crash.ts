/**
 * Child of the notifier crash test: loads, waits for "go", then catches up the notifier "mail",
 * whose handler appends "<seq>" to a file (synchronously, as it is handed the event) and takes a
 * millisecond. The parent kills it with SIGKILL at random moments. Arguments: path, the file.
 * Prints "loaded", "start <position>", "done <result>".
 */
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createNotifier, openLog } from '../../src/index.ts';

const [path, file] = process.argv.slice(2) as [string, string];
const input = createInterface({ input: process.stdin });
console.log('loaded');
await new Promise<void>((resolve) => input.on('line', (line) => line === 'go' && resolve()));
input.close();

const log = await openLog({ path });
try {
  const mailer = createNotifier(log, 'mail', {
    kinds: ['customer'],
    async handle(event) {
      appendFileSync(file, `${event.seq}\n`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    },
  });
  console.log(`start ${await mailer.position()}`);
  const result = await mailer.catchUp();
  console.log(`done ${JSON.stringify(result)}`);
} finally {
  await log.close();
}
