/**
 * NDJSON in and out: one event per line, timestamps as ISO 8601 strings.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { LogEvent, NewEvent } from '../index.ts';
import { fileProblem } from './secrets.ts';
import { CliError, UsageError } from './usage.ts';

/** One event as a JSON line (Dates become ISO strings through toJSON). */
export function toLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/**
 * Turns a parsed line into an event to append. Accepts what `read` prints, so a log can be
 * copied: `seq` is dropped and `timestamp` parsed back into a Date. `where` names the line in
 * messages (`events.ndjson line 3`).
 */
export function toNewEvent(value: unknown, where: string): NewEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${where}: expected a JSON object (one event per line)`);
  }
  const { seq: _seq, timestamp, ...rest } = value as Partial<LogEvent> & Record<string, unknown>;
  if (timestamp === undefined) return rest as unknown as NewEvent;
  const date = new Date(timestamp as unknown as string);
  if (typeof timestamp !== 'string' || Number.isNaN(date.getTime())) {
    throw new UsageError(`${where}: expected "timestamp" to be an ISO 8601 date string, got ${JSON.stringify(timestamp)}`);
  }
  return { ...rest, timestamp: date } as unknown as NewEvent;
}

/**
 * The parser's reason, without the piece of the line V8 quotes (it may hold a payload), and with
 * the position as a column.
 */
function parseProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/ in JSON at position (\d+)/, (_, position: string) => ` at column ${Number(position) + 1}`);
}

/**
 * Reads the events of an NDJSON file (or stdin for "-"), reporting bytes read as it goes, with
 * the line each event came from. `name` is how messages call the input.
 * @throws UsageError naming the input, the line and what is wrong with it.
 * @throws CliError when the file cannot be read.
 * @example
 * const { events, lines } = await readEvents('events.ndjson', 'events.ndjson');
 */
export async function readEvents(file: string, name: string, onBytes?: (bytes: number) => void): Promise<{ events: NewEvent[]; lines: number[] }> {
  const input = file === '-' ? process.stdin : createReadStream(file);
  const lines = createInterface({ input, crlfDelay: Infinity });
  const events: NewEvent[] = [];
  const numbers: number[] = [];
  let number = 0;
  let bytes = 0;
  try {
    for await (const text of lines) {
      number++;
      bytes += Buffer.byteLength(text) + 1;
      onBytes?.(bytes);
      if (text.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new UsageError(`${name} line ${number}: expected JSON, got a line that does not parse (${parseProblem(error)})`);
      }
      events.push(toNewEvent(parsed, `${name} line ${number}`));
      numbers.push(number);
    }
  } catch (error) {
    // A file that cannot be read rejects the iteration: reported by `name`, not by its path.
    if (error instanceof UsageError) throw error;
    throw new CliError(`${name}: cannot read the file (${fileProblem(error)})`, { cause: error });
  }
  return { events, lines: numbers };
}
