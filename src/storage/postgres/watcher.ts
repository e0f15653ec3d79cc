/**
 * `watch` on PostgreSQL: every write transaction that appends sends a NOTIFY on the schema's
 * channel, and one dedicated connection per connection object LISTENs while anyone watches. It is
 * taken from the pool on the first watch, given back when the last watcher goes, and taken again
 * (with backoff) when it drops. Each time LISTEN takes effect the watchers are called once, since
 * commits made before it sent them nothing. A hot standby cannot LISTEN: there the head is polled instead.
 */
import { run, type PostgresClient, type PostgresPool } from './driver.ts';

/** How often a standby's head is looked at. */
const POLL_MS = 50;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export class Watcher {
  readonly #pool: PostgresPool;
  readonly #channel: string;
  readonly #origin: string;
  readonly #head: (() => Promise<number>) | undefined;
  readonly #listeners = new Set<() => void>();
  #client: PostgresClient | undefined;
  #connecting: Promise<void> | undefined;
  #poll: { timer: NodeJS.Timeout; head: number | undefined; busy: boolean } | undefined;
  #closed = false;

  /**
   * @param origin this connection object's mark in NOTIFY payloads, so its own commits are skipped.
   * @param head on a standby, how to read the head to poll it; undefined on a primary.
   */
  constructor(pool: PostgresPool, channel: string, origin: string, head: (() => Promise<number>) | undefined) {
    this.#pool = pool;
    this.#channel = channel;
    this.#origin = `${origin} `;
    this.#head = head;
  }

  add(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (this.#head !== undefined) this.#startPolling(this.#head);
    else this.#connecting ??= this.#listen();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  async #listen(): Promise<void> {
    let delay = RECONNECT_MIN_MS;
    try {
      while (!this.#closed && this.#listeners.size > 0) {
        let client: PostgresClient | undefined;
        try {
          client = await this.#pool.connect();
          const own = client;
          own.on('notification', (message) => {
            if (this.#client === own && message.channel === this.#channel && !(message.payload ?? '').startsWith(this.#origin)) this.#notify();
          });
          own.on('error', () => this.#lost(own));
          await run(own, `LISTEN "${this.#channel}"`);
          this.#client = own;
          // Commits made before LISTEN took effect (since watch() was called, or while the
          // connection was down) sent no notification here: tell the watchers once.
          if (this.#closed || this.#listeners.size === 0) this.#stop();
          else this.#notify();
          return;
        } catch {
          client?.release(true);
          await new Promise((resolve) => setTimeout(resolve, delay).unref());
          delay = Math.min(delay * 2, RECONNECT_MAX_MS);
        }
      }
    } finally {
      this.#connecting = undefined;
    }
  }

  /** The listening connection broke: drop it and listen again on a new one. */
  #lost(client: PostgresClient): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    client.release(true);
    if (!this.#closed && this.#listeners.size > 0) this.#connecting ??= this.#listen();
  }

  #startPolling(head: () => Promise<number>): void {
    if (this.#poll !== undefined) return;
    const poll = { head: undefined as number | undefined, busy: false, timer: setInterval(() => {
      if (poll.busy) return;
      poll.busy = true;
      head().then((seen) => {
        // The first look has nothing to compare with: commits since watch() may have been missed.
        if (seen !== poll.head && this.#poll === poll) this.#notify();
        poll.head = seen;
      }, () => {}).finally(() => { poll.busy = false; });
    }, POLL_MS) };
    poll.timer.unref();
    this.#poll = poll;
  }

  #stop(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll.timer);
    this.#poll = undefined;
    const client = this.#client;
    this.#client = undefined;
    // Destroyed, not returned: a pooled connection must not stay subscribed to the channel.
    client?.release(true);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    await this.#connecting;
    this.#stop();
  }
}
