/**
 * The report of a refused append, as NDJSON on stdout: a first line with the status, then, for a
 * conflict, one line per conflict. Streamed with back-pressure, each stored event serialised
 * once however many conflicts name it, so a batch with millions of conflicts prints in bounded
 * memory (one JSON string of the whole report would not even fit in a string).
 */
import type { AppendResult, Conflict, LogEvent } from '../index.ts';
import { write } from './output.ts';

/** Lines gathered before one write to stdout. */
const LINES_PER_WRITE = 256;

type Refusal = Extract<AppendResult, { status: 'conflict' | 'invalid-base' }>;

/**
 * Prints a refusal: `{"status":"invalid-base","head":N}`, or `{"status":"conflict",
 * "conflicts":N,"accepted":M}` followed by one `{"line":L,"ours":...,"theirs":...}` per conflict,
 * `line` being the input line of `ours` (`lines[i]` is the line of the batch's event `i`).
 * @example
 * if (result.status === 'conflict') await printRefusal(result, lines);
 */
export async function printRefusal(result: Refusal, lines: readonly number[]): Promise<void> {
  if (result.status === 'invalid-base') {
    await write(`${JSON.stringify({ status: result.status, head: result.head })}\n`);
    return;
  }
  const { conflicts, accepted } = result;
  await write(`${JSON.stringify({ status: result.status, conflicts: conflicts.length, accepted: accepted.length })}\n`);
  // Tentative seqs run from head + 1 in batch order; the lowest one is the batch's first event.
  const first = Math.min(conflicts[0]?.ours.seq ?? Infinity, accepted[0]?.seq ?? Infinity);
  const json = new Map<LogEvent, string>();
  const serialised = (event: LogEvent): string => {
    let text = json.get(event);
    if (text === undefined) json.set(event, (text = JSON.stringify(event)));
    return text;
  };
  let chunk = '';
  for (let i = 0; i < conflicts.length; i++) {
    const { ours, theirs } = conflicts[i] as Conflict;
    chunk += `{"line":${lines[ours.seq - first] ?? null},"ours":${serialised(ours)},"theirs":${serialised(theirs)}}\n`;
    if ((i + 1) % LINES_PER_WRITE === 0) {
      await write(chunk);
      chunk = '';
    }
  }
  if (chunk !== '') await write(chunk);
}
