/**
 * NDJSON in and out: one event per line, timestamps as ISO 8601 strings.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { LogEvent, NewEvent } from '../index.ts';
import { UsageError } from './usage.ts';

/** One event as a JSON line (Dates become ISO strings through toJSON). */
export function toLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/**
 * Turns a parsed line into an event to append. Accepts what `read` prints, so a log can be
 * copied: `seq` is dropped and `timestamp` parsed back into a Date.
 */
export function toNewEvent(value: unknown, line: number): NewEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`line ${line}: expected a JSON object (one event per line)`);
  }
  const { seq: _seq, timestamp, ...rest } = value as Partial<LogEvent> & Record<string, unknown>;
  if (timestamp === undefined) return rest as unknown as NewEvent;
  const date = new Date(timestamp as unknown as string);
  if (typeof timestamp !== 'string' || Number.isNaN(date.getTime())) {
    throw new UsageError(`line ${line}: expected "timestamp" to be an ISO 8601 date string, got ${JSON.stringify(timestamp)}`);
  }
  return { ...rest, timestamp: date } as unknown as NewEvent;
}

/**
 * Reads the events of an NDJSON file (or stdin for "-"), reporting bytes read as it goes, with
 * the line each event came from.
 */
export async function readEvents(file: string, onBytes?: (bytes: number) => void): Promise<{ events: NewEvent[]; lines: number[] }> {
  const input = file === '-' ? process.stdin : createReadStream(file);
  const lines = createInterface({ input, crlfDelay: Infinity });
  const events: NewEvent[] = [];
  const numbers: number[] = [];
  let number = 0;
  let bytes = 0;
  for await (const text of lines) {
    number++;
    bytes += Buffer.byteLength(text) + 1;
    onBytes?.(bytes);
    if (text.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new UsageError(`line ${number}: expected JSON, got ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text)}`);
    }
    events.push(toNewEvent(parsed, number));
    numbers.push(number);
  }
  return { events, lines: numbers };
}
