import { describe, expect, it } from 'vitest';
import { openLog, type Identity, type Log, type LogEvent, type NewEvent, type Operation } from '../src/index.ts';
import { appendOk, bundleChild, entriesOf, newMasterKey, spawnChild, type Child } from './support/projection-fixtures.ts';
import { tallyOptions, type Tally } from './support/projection-tally.ts';
import { action, effect, tempDir } from './support/temp-log.ts';
import { random } from './support/random.ts';

const ACCOUNTS = 300;
const KEY_GROUPS = 30;
const PROMO_GROUPS = 30;
const BASE_EVENTS = 30_000;
const GROWTH_EVENTS = 600;
const ROUNDS = 20;

/**
 * The log the children catch up, and what the test knows of it: the aggregate of each action by
 * seq (-1 for an effect). Accounts change often; one action in ten writes an e-mail encrypted
 * under the account's key group, one in ten is linked to a promotion; keys get shredded and
 * promotions withdrawn along the way, so catch-ups meet effects and replay.
 */
class Workload {
  readonly aggregateOfSeq: number[] = [0];
  readonly #generation = Array<number>(KEY_GROUPS).fill(0);
  readonly #next: () => number;

  constructor(readonly log: Log, seed: number) {
    this.#next = random(seed);
  }

  #int(n: number): number {
    return Math.floor(this.#next() * n);
  }

  #key(group: number): Identity {
    return ['key', `${group}.${this.#generation[group]}`];
  }

  #record(events: LogEvent[]): void {
    for (const event of events) {
      expect(event.seq).toBe(this.aggregateOfSeq.length);
      this.aggregateOfSeq.push('action' in event ? (event.action.aggregate[1] as number) : -1);
    }
  }

  async appendActions(count: number): Promise<void> {
    const events: NewEvent[] = [];
    for (let i = 0; i < count; i++) {
      const account = this.#int(ACCOUNTS);
      const roll = this.#int(10);
      const patch: Operation[] = [{ op: 'add', path: '/n', value: this.#int(1000) }];
      if (roll === 0) {
        patch.push({ op: 'add', path: '/email', value: `mail-${account}-${this.#int(1e9)}@example.org` });
        events.push(action(['account', account], patch, { encrypt: { key: this.#key(account % KEY_GROUPS), paths: ['/email'] } }));
      } else if (roll === 1) {
        events.push(action(['account', account], patch, { triggers: [['promo', account % PROMO_GROUPS]] }));
      } else {
        events.push(action(['account', account], patch));
      }
    }
    this.#record(await appendOk(this.log, events));
  }

  /** Shreds a key group's current key, or withdraws a promotion. */
  async appendEffect(): Promise<void> {
    if (this.#int(2) === 0) {
      const group = this.#int(KEY_GROUPS);
      this.#record([await this.log.keys.shred(this.#key(group))]);
      this.#generation[group] = (this.#generation[group] as number) + 1;
    } else {
      this.#record(await appendOk(this.log, [effect(['promo', this.#int(PROMO_GROUPS)], 'promotion withdrawn')]));
    }
  }

  /** What the tally must hold at `position`: each account's actions up to it, once each. */
  expectedAt(position: number): Map<string, Omit<Tally, 'email'>> {
    const expected = new Map<string, Omit<Tally, 'email'>>();
    for (let seq = 1; seq <= position; seq++) {
      const account = this.aggregateOfSeq[seq] as number;
      if (account === -1) continue;
      const key = JSON.stringify(['account', account]);
      const state = expected.get(key) ?? { actions: 0, seqSum: 0, last: 0 };
      expected.set(key, { actions: state.actions + 1, seqSum: state.seqSum + seq, last: seq });
    }
    return expected;
  }
}

async function tallies(log: Log, name: string): Promise<Map<string, Omit<Tally, 'email'>>> {
  const states = new Map<string, Omit<Tally, 'email'>>();
  for (const [aggregate, { actions, seqSum, last }] of await entriesOf(log.projection(name, tallyOptions))) {
    states.set(JSON.stringify(aggregate), { actions, seqSum, last });
  }
  return states;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('a projection whose process is killed while it catches up', () => {
  it('restarts where it stopped, at a consistent position, and ends with the states of a clean rebuild: no event skipped or applied twice', async () => {
    const seed = Date.now() % 1_000_000;
    const path = tempDir();
    const masterKey = newMasterKey();
    const log = await openLog({ path, masterKey });
    const children: Child[] = [];
    try {
      const workload = new Workload(log, seed);
      while (workload.aggregateOfSeq.length <= BASE_EVENTS) {
        await workload.appendActions(2_000);
        await workload.appendEffect();
      }
      // Twenty restarts: each child is a bundle that starts in a fraction of tsx's time.
      const script = await bundleChild('projection-crash.ts', tempDir());
      const spawn = () => {
        const child = spawnChild(script, [path, masterKey]);
        children.push(child);
        return child;
      };
      const next = random(seed + 1);
      const tally = log.projection('tally', tallyOptions);
      let position = 0;
      /** How long a child takes per event, learnt from the commits the parent sees it make. */
      let msPerEvent: number | undefined;
      let killedMidway = 0;
      // The next child loads while the current one works, so a restart waits for no start-up.
      let upcoming = spawn();
      for (let round = 0; round < ROUNDS; round++) {
        const child = upcoming;
        await child.line('loaded');
        if (round + 1 < ROUNDS) upcoming = spawn();
        child.send('go');
        const start = Number((await child.line('start ')).split(' ')[1]);
        expect(start, `seed ${seed}, round ${round}: the restart carries on where the last one stopped`).toBe(position);

        // Kill at a random moment of what is left to do (once the pace is known), watching the
        // commits it makes meanwhile to learn the pace.
        const head = await log.head();
        let seen = { at: performance.now(), position };
        const killAtFor = (from: { at: number; position: number }) => from.at + next() * 1.2 * (head - from.position) * (msPerEvent as number);
        let killAt = msPerEvent === undefined ? undefined : killAtFor(seen);
        let finished: string | undefined | null = null;
        let killed = false;
        const done = child.line('done ', 600_000).then((line) => (finished = line), () => (finished = undefined));
        while (finished === null) {
          const wait = killAt === undefined ? 10 : Math.max(0, Math.min(10, killAt - performance.now()));
          await Promise.race([done, sleep(wait)]);
          if (finished !== null) break;
          if (killAt !== undefined && performance.now() >= killAt) {
            child.process.kill('SIGKILL');
            killed = true;
            break;
          }
          const now = await tally.position();
          if (now > seen.position) {
            const at = performance.now();
            const pace = (at - seen.at) / (now - seen.position);
            msPerEvent = msPerEvent === undefined ? pace : (msPerEvent + pace) / 2;
            seen = { at, position: now };
            killAt ??= killAtFor(seen);
          }
        }
        const exit = await child.exited;
        await done;
        if (finished === undefined) {
          expect(exit, child.stderr()).toBe('SIGKILL');
          killedMidway++;
        } else {
          // Done before the kill landed: its 'done' line was on its way (and it may have exited) when the parent killed it.
          if (killed) expect([0, 'SIGKILL'], child.stderr()).toContain(exit);
          else expect(exit, child.stderr()).toBe(0);
        }

        // Killed anywhere, the projection is at a position that every state agrees with.
        const now = await tally.position();
        expect(now, `seed ${seed}, round ${round}: the position never goes back`).toBeGreaterThanOrEqual(position);
        position = now;
        expect(await tallies(log, 'tally'), `seed ${seed}, round ${round}, position ${position}`).toEqual(workload.expectedAt(position));

        // The log goes on meanwhile.
        await workload.appendActions(GROWTH_EVENTS);
        if (round % 2 === 0) await workload.appendEffect();
      }
      expect(killedMidway, `seed ${seed}: kills that landed during a catch-up`).toBeGreaterThanOrEqual(5);

      const head = await log.head();
      expect(await tally.catchUp()).toMatchObject({ from: position + 1, to: head });
      expect(await tallies(log, 'tally')).toEqual(workload.expectedAt(head));
      const clean = log.projection('tally-clean', tallyOptions);
      await clean.rebuild();
      expect(await entriesOf(tally)).toEqual(await entriesOf(clean));
    } finally {
      for (const child of children) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
      await Promise.all(children.map((child) => child.exited));
      await log.close();
    }
  });
});
