/**
 * verify() on PostgreSQL: walks the events a page at a time (keyset on seq) and checks that the
 * index tables hold exactly the rows the events imply, both ways.
 *
 * Each page: the events' own aggregate column against the facts; the trigger rows, the effects'
 * affected lists (against the aggregates linked to the trigger before the effect), the
 * effect-by-aggregate rows and the idempotency rows (a keyed batch's first event names its key)
 * they imply, looked up by primary key in one query each. At the end,
 * each index table's rows up to the head are counted: every implied row exists, so a count above
 * the implied one means a stray, which a second walk over that table names. Rows past the head
 * belong to appends made meanwhile, unless no event holds their seq.
 *
 * Events never change and every seq up to the head is committed, so the page queries need no
 * common snapshot to agree.
 */
import { packr } from '../../model/msgpack.ts';
import type { Identity } from '../../model/types.ts';
import type { IndexFacts, VerifyCheck } from '../engine.ts';
import { run, toNumber, withClient, type PostgresClient, type PostgresPool, type Row } from './driver.ts';
import { identityBytes, identityOf, nameBytes } from './identity-bytes.ts';
import { quoted } from './schema.ts';

/** Events per page. */
const PAGE = 2_000;
/** Progress is reported (and the event loop let go) every this many events. */
const CHUNK = 10_000;

type Problem = { seq: number; reason: string };

const same = (a: Buffer | null | undefined, b: Buffer) => a !== null && a !== undefined && a.equals(b);

/** A stored list of identities, or undefined when its bytes are not one. */
function decodeList(bytes: Buffer): Identity[] | undefined {
  try {
    const list: unknown = packr.unpack(bytes);
    return Array.isArray(list) && list.every((a) => Array.isArray(a) && a.length === 2) ? (list as Identity[]) : undefined;
  } catch {
    return undefined;
  }
}

/** One index table: how to count its rows up to the head, and what explains one of its rows. */
interface IndexTable {
  name: string;
  table: string;
  /** The column naming the event a row belongs to. */
  seq: string;
  /** Columns to read (besides seq) when looking for a stray, in primary-key order. */
  columns: readonly string[];
  explains(facts: IndexFacts, row: Row, linked: (trigger: Identity, before: number) => Promise<Identity[]>): Promise<boolean>;
}

const INDEX_TABLES: readonly IndexTable[] = [
  {
    name: 'trigger index',
    table: 'triggers',
    seq: 'seq',
    columns: ['trigger', 'seq', 'aggregate'],
    explains: async (facts, row) =>
      facts.type === 'action' && same(row.aggregate as Buffer, identityBytes(facts.aggregate)) && facts.triggers.some((t) => same(row.trigger as Buffer, identityBytes(t))),
  },
  {
    name: 'effects table',
    table: 'effects',
    seq: 'seq',
    columns: ['seq'],
    explains: async (facts) => facts.type === 'effect',
  },
  {
    name: 'effect index',
    table: 'effects_by_aggregate',
    seq: 'seq',
    columns: ['aggregate', 'seq'],
    explains: async (facts, row, linked) =>
      facts.type === 'effect' && (await linked(facts.trigger, toNumber(row.seq))).some((a) => same(row.aggregate as Buffer, identityBytes(a))),
  },
  {
    // Each keyed batch's first event names its key (the log's records carry it).
    name: 'idempotency table',
    table: 'idempotency',
    seq: 'first',
    columns: ['key', 'first', 'last'],
    explains: async (facts, row) => {
      const named = batchKey(facts);
      return named !== undefined && same(row.key as Buffer, nameBytes(named.key)) && named.last === toNumber(row.last);
    },
  },
];

/** The idempotency key an event names as the first of its batch, if the log's facts carry one. */
function batchKey(facts: IndexFacts): { key: string; last: number } | undefined {
  return (facts as { idempotency?: { key: string; last: number } }).idempotency;
}

export async function verifyTables(pool: PostgresPool, schema: string, head: number, check: VerifyCheck): Promise<Problem | undefined> {
  return withClient(pool, (client) => new TableCheck(client, quoted(schema), head, check).run());
}

class TableCheck {
  readonly #client: PostgresClient;
  readonly #s: string;
  readonly #head: number;
  readonly #check: VerifyCheck;
  readonly #expected = new Map<string, number>(INDEX_TABLES.map((t) => [t.table, 0]));

  constructor(client: PostgresClient, s: string, head: number, check: VerifyCheck) {
    this.#client = client;
    this.#s = s;
    this.#head = head;
    this.#check = check;
  }

  #query(text: string, values?: unknown[]): Promise<Row[]> {
    return run(this.#client, text, values);
  }

  /** The aggregates with an action linked to `trigger` before `seq`, each once, in first-link order. */
  linked = async (trigger: Identity, before: number): Promise<Identity[]> => {
    const rows = await this.#query(`SELECT aggregate FROM ${this.#s}.triggers WHERE trigger = $1 AND seq < $2 ORDER BY seq`, [identityBytes(trigger), before]);
    const seen = new Map<string, Identity>();
    for (const row of rows) seen.set((row.aggregate as Buffer).toString('latin1'), identityOf(row.aggregate as Buffer));
    return [...seen.values()];
  };

  async run(): Promise<Problem | undefined> {
    for (let from = 1; from <= this.#head; ) {
      const rows = await this.#query(`SELECT seq, record, aggregate FROM ${this.#s}.events WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT ${PAGE}`, [from, this.#head]);
      if (rows.length === 0) break;
      const problem = await this.#page(rows);
      if (problem !== undefined) return problem;
      const last = toNumber((rows[rows.length - 1] as Row).seq);
      if (Math.floor(last / CHUNK) > Math.floor((from - 1) / CHUNK)) {
        this.#check.onProgress?.(last);
        await new Promise((resolve) => setImmediate(resolve));
      }
      from = last + 1;
    }
    for (const table of INDEX_TABLES) {
      const problem = await this.#strays(table);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }

  /**
   * Checks a page in seq order: the walk stops at the first event whose own row is wrong (or
   * whose chain `inspect` refuses), and the index rows of the events before it are checked, so
   * the problem reported is the one with the lowest seq.
   */
  async #page(rows: Row[]): Promise<Problem | undefined> {
    const triggers = { trigger: [] as Buffer[], seq: [] as number[], aggregate: [] as Buffer[] };
    const effects: { seq: number; trigger: Identity }[] = [];
    const batches = { key: [] as Buffer[], first: [] as number[], last: [] as number[] };
    let stop: Problem | undefined;
    let thrown: { error: unknown } | undefined;
    for (const row of rows) {
      const seq = toNumber(row.seq);
      let facts: IndexFacts;
      try {
        facts = this.#check.inspect(seq, row.record as Buffer);
      } catch (error) {
        thrown = { error };
        break;
      }
      if (facts.type === 'action') {
        const aggregate = identityBytes(facts.aggregate);
        if (!same(row.aggregate as Buffer | null, aggregate)) {
          stop = { seq, reason: 'missing from the aggregate index' };
          break;
        }
        for (const trigger of facts.triggers) {
          triggers.trigger.push(identityBytes(trigger));
          triggers.seq.push(seq);
          triggers.aggregate.push(aggregate);
        }
      } else {
        if (row.aggregate !== null) {
          stop = { seq, reason: 'the aggregate index has an entry no event accounts for' };
          break;
        }
        effects.push({ seq, trigger: facts.trigger });
      }
      const named = batchKey(facts);
      if (named !== undefined) {
        batches.key.push(nameBytes(named.key));
        batches.first.push(seq);
        batches.last.push(named.last);
      }
    }
    const problem = await this.#indexRows(triggers, effects, batches);
    if (problem !== undefined) return problem;
    if (thrown !== undefined) throw thrown.error;
    return stop;
  }

  /** The lowest problem among the trigger and effect rows of a page's events. */
  async #indexRows(
    triggers: { trigger: Buffer[]; seq: number[]; aggregate: Buffer[] },
    effects: { seq: number; trigger: Identity }[],
    batches: { key: Buffer[]; first: number[]; last: number[] },
  ): Promise<Problem | undefined> {
    let lowest: Problem | undefined;
    const note = (problem: Problem | undefined) => {
      if (problem !== undefined && (lowest === undefined || problem.seq < lowest.seq)) lowest = problem;
    };
    if (triggers.seq.length > 0) {
      const [missing] = await this.#query(
        `SELECT min(x.seq) AS seq FROM unnest($1::bytea[], $2::bigint[], $3::bytea[]) AS x(trigger, seq, aggregate)
         WHERE NOT EXISTS (SELECT 1 FROM ${this.#s}.triggers t WHERE t.trigger = x.trigger AND t.seq = x.seq AND t.aggregate = x.aggregate)`,
        [triggers.trigger, triggers.seq, triggers.aggregate],
      );
      if (missing?.seq !== null && missing?.seq !== undefined) note({ seq: toNumber(missing.seq), reason: 'missing or wrong in the trigger index' });
      this.#count('triggers', triggers.seq.length);
    }
    if (effects.length > 0) note(await this.#effects(effects));
    if (batches.first.length > 0) {
      const [missing] = await this.#query(
        `SELECT min(x.first) AS seq FROM unnest($1::bytea[], $2::bigint[], $3::bigint[]) AS x(key, first, last)
         WHERE NOT EXISTS (SELECT 1 FROM ${this.#s}.idempotency i WHERE i.key = x.key AND i.first = x.first AND i.last = x.last)`,
        [batches.key, batches.first, batches.last],
      );
      if (missing?.seq !== null && missing?.seq !== undefined) note({ seq: toNumber(missing.seq), reason: 'the idempotency key of its batch is missing or wrong in the idempotency table' });
      this.#count('idempotency', batches.first.length);
    }
    return lowest;
  }

  async #effects(effects: { seq: number; trigger: Identity }[]): Promise<Problem | undefined> {
    const stored = new Map<number, Buffer>();
    for (const row of await this.#query(`SELECT seq, affected FROM ${this.#s}.effects WHERE seq = ANY($1::bigint[])`, [effects.map((e) => e.seq)])) {
      stored.set(toNumber(row.seq), row.affected as Buffer);
    }
    const implied = { aggregate: [] as Buffer[], seq: [] as number[] };
    for (const { seq, trigger } of effects) {
      const affected = await this.linked(trigger, seq);
      const recorded = stored.get(seq);
      const list = recorded === undefined ? undefined : decodeList(recorded);
      if (list === undefined || list.length !== affected.length || list.some((a, i) => !identityBytes(a).equals(identityBytes(affected[i] as Identity)))) {
        return { seq, reason: 'the affected aggregates recorded for the effect disagree with the trigger index' };
      }
      for (const aggregate of affected) {
        implied.aggregate.push(identityBytes(aggregate));
        implied.seq.push(seq);
      }
    }
    this.#count('effects', effects.length);
    if (implied.seq.length === 0) return undefined;
    const [missing] = await this.#query(
      `SELECT min(x.seq) AS seq FROM unnest($1::bytea[], $2::bigint[]) AS x(aggregate, seq)
       WHERE NOT EXISTS (SELECT 1 FROM ${this.#s}.effects_by_aggregate f WHERE f.aggregate = x.aggregate AND f.seq = x.seq)`,
      [implied.aggregate, implied.seq],
    );
    this.#count('effects_by_aggregate', implied.seq.length);
    return missing?.seq === null || missing?.seq === undefined ? undefined : { seq: toNumber(missing.seq), reason: 'missing from the effect index' };
  }

  #count(table: string, rows: number): void {
    this.#expected.set(table, (this.#expected.get(table) ?? 0) + rows);
  }

  /**
   * Counts the table's rows up to the head, and looks for rows past it that no event holds; only
   * when either says something is wrong, walks the table for the row no event accounts for.
   */
  async #strays(table: IndexTable): Promise<Problem | undefined> {
    const t = `${this.#s}.${table.table}`;
    const seq = `x.${table.seq}`;
    const [counted] = await this.#query(
      `SELECT count(*) FILTER (WHERE ${seq} <= $1) AS below,
              min(${seq}) FILTER (WHERE ${seq} > $1 AND NOT EXISTS (SELECT 1 FROM ${this.#s}.events e WHERE e.seq = ${seq})) AS orphan
       FROM ${t} x`,
      [this.#head],
    );
    const orphan = counted?.orphan === null || counted?.orphan === undefined ? undefined : toNumber(counted.orphan);
    if (toNumber(counted?.below) === this.#expected.get(table.table) && orphan === undefined) return undefined;
    let lowest: Problem | undefined = orphan === undefined ? undefined : { seq: orphan, reason: `the ${table.name} has an entry no event accounts for` };
    const columns = table.columns.map((c) => `x.${c}`).join(', ');
    let after: unknown[] | undefined;
    for (;;) {
      const where = after === undefined ? `${seq} <= $1` : `${seq} <= $1 AND (${columns}) > (${table.columns.map((_, i) => `$${i + 2}`).join(', ')})`;
      const rows = await this.#query(
        `SELECT ${columns}, e.record FROM ${t} x LEFT JOIN ${this.#s}.events e ON e.seq = ${seq}
         WHERE ${where} ORDER BY ${columns} LIMIT ${PAGE}`,
        [this.#head, ...(after ?? [])],
      );
      for (const row of rows) {
        const at = toNumber(row[table.seq]);
        const facts = row.record === null ? undefined : this.#check.factsOf(at, row.record as Buffer);
        if ((facts === undefined || !(await table.explains(facts, row, this.linked))) && (lowest === undefined || at < lowest.seq)) {
          lowest = { seq: at, reason: `the ${table.name} has an entry no event accounts for` };
        }
      }
      if (rows.length < PAGE) return lowest;
      const last = rows[rows.length - 1] as Row;
      after = table.columns.map((c) => last[c]);
    }
  }

}
