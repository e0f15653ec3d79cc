/**
 * Child of the notifier crash test: loads, waits for "go", then catches up the notifier "mail",
 * whose handler appends "<seq>" to a file (synchronously, as it is handed the event) and takes a
 * millisecond. The parent kills it with SIGKILL at random moments. Arguments: path, the file.
 * Prints "loaded", "start <position>", "done <result>".
 */
import { appendFileSync } from 'node:fs';
import { createNotifier, openLog } from '../../src/index.ts';
import { loadedThenGo } from './go.ts';

const [path, file] = process.argv.slice(2) as [string, string];
await loadedThenGo();

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
