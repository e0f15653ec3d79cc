/**
 * Issue 13: the HTTP gateway, with autocannon firing from two worker threads (the server keeps
 * the main thread), each against its baseline in the same run.
 *
 *   http-framework   what the framework costs per request: a JSON GET and a JSON POST on
 *                    Fastify against the same handler on a bare node:http server, as the
 *                    main thread's busy time per request (event-loop utilisation).
 *   http-commands    POST /commands/:name with 100 connections against `commands.execute`
 *                    in-process with 100 in flight, the same decider (one aggregate of 1000,
 *                    the standard workload's action). Target: >= 0.5x; p99 of each reported.
 *   http-views       GET /views/:name/:kind/:id (an authenticated member, a condition, the
 *                    ETag) with 100 connections. Target: >= 10k requests/s.
 *
 * Requests authenticate with a bearer JWT (HS256), as an application's would.
 */
import { createServer, type Server as NodeServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { SignJWT } from 'jose';
import { createCommandService, decider, type Intent } from '../src/index.ts';
import { bearer, role, serve } from '../src/http/index.ts';
import { emit, makeAction, median, note, now, openBenchLog, quantile, round, type Bench, type BenchContext } from './support.ts';

const CONNECTIONS = 100;
const AGGREGATES = 1000;
const SECRET = 'the bench secret, at least 32 bytes long';
/** Random ids meet on one of 1000 aggregates now and then with 100 in flight: decided again, as a service would. */
const RETRY = { attempts: 20 };

/** A string id's aggregate number, 0..AGGREGATES-1 (FNV-1a). */
function slot(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % AGGREGATES;
}

/** The benchmark's decider: command `{ id }` writes action `slot(id)` of the standard workload. */
const edit = decider<{ id: string }>({
  name: 'edit',
  aggregates: ({ id }) => [makeAction(slot(id)).action.aggregate],
  decide({ id }, states): Intent[] {
    const { action, triggers } = makeAction(slot(id));
    states.get(action.aggregate);
    return [{ aggregate: action.aggregate, reason: action.reason, patch: action.patch, ...(triggers === undefined ? {} : { triggers }) }];
  },
});

interface Fired { rps: number; p99: number; p50: number; requests: number; errors: number; statuses: Record<string, number> }

async function fire(url: string, seconds: number, options: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {}): Promise<Fired> {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    // Two threads of load: one cannot keep a server on the main thread busy on this machine.
    workers: 2,
    method: options.method ?? 'GET',
    headers: options.headers ?? {},
    ...(options.body === undefined ? {} : { body: options.body, idReplacement: true }),
  });
  const statuses: Record<string, number> = {};
  for (const [code, count] of Object.entries(result.statusCodeStats ?? {})) statuses[code] = (count as { count: number }).count;
  return { rps: result.requests.average, p99: result.latency.p99, p50: result.latency.p50, requests: result.requests.total, errors: result.errors + result.non2xx, statuses };
}

/** Main-thread busy milliseconds while `work` runs. */
async function busy<T>(work: () => Promise<T>): Promise<{ value: T; busyMs: number }> {
  const before = performance.eventLoopUtilization();
  const value = await work();
  return { value, busyMs: performance.eventLoopUtilization(before).active };
}

function listen(server: NodeServer): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

const ANSWER = { events: [{ seq: 1, action: { reason: 'edit', aggregate: ['book', 'b1'] } }] };

export const httpFramework: Bench = {
  name: 'http-framework',
  description: 'Fastify against a bare node:http handler: main-thread time per JSON GET and POST',
  async run(context: BenchContext) {
    const seconds = context.scaled(5, 2);
    const bare = createServer((request, response) => {
      const send = () => { response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }); response.end(JSON.stringify(ANSWER)); };
      if (request.method === 'GET') return send();
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk)).on('end', () => { JSON.parse(Buffer.concat(chunks).toString()); send(); });
    });
    const fastify = Fastify({ logger: false });
    fastify.get('/views/:name/:kind/:id', async () => ANSWER);
    fastify.post('/commands/:name', async (request) => { void request.body; return ANSWER; });
    await fastify.listen({ host: '127.0.0.1', port: 0 });
    const urls = { bare: await listen(bare), fastify: `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}` };
    const body = JSON.stringify({ id: '[<id>]' });
    const cost: Record<string, number[]> = {};
    try {
      note(`http-framework: ${seconds} s per side and method, 2 rounds, after a warm-up`);
      for (const round_ of [0, 1, 2]) {
        for (const side of round_ % 2 === 0 ? (['bare', 'fastify'] as const) : (['fastify', 'bare'] as const)) {
          for (const method of ['GET', 'POST'] as const) {
            const path = method === 'GET' ? '/views/books/book/b1' : '/commands/edit';
            const { value, busyMs } = await busy(() => fire(`${urls[side]}${path}`, round_ === 0 ? 1 : seconds, method === 'GET' ? {} : { method, body, headers: { 'content-type': 'application/json' } }));
            if (round_ > 0) (cost[`${side} ${method}`] ??= []).push((busyMs * 1000) / value.requests);
          }
        }
      }
    } finally {
      bare.close();
      await fastify.close();
    }
    const us = (key: string) => round(median(cost[key] as number[]), 1);
    emit({
      bench: 'http-framework',
      seconds,
      bare_get_us: us('bare GET'),
      fastify_get_us: us('fastify GET'),
      bare_post_us: us('bare POST'),
      fastify_post_us: us('fastify POST'),
      fastify_over_bare_get_us: round(us('fastify GET') - us('bare GET'), 1),
      fastify_over_bare_post_us: round(us('fastify POST') - us('bare POST'), 1),
      note: 'main-thread busy time per request (event-loop utilisation), autocannon in worker threads',
    });
  },
};

async function tokens() {
  const key = new TextEncoder().encode(SECRET);
  const sign = (roles: string[]) => new SignJWT({ roles }).setProtectedHeader({ alg: 'HS256' }).setSubject('bench').setExpirationTime('1h').sign(key);
  return { writer: await sign(['writer']), reader: await sign(['reader']) };
}

/** `execute` with 100 in flight for `seconds`: ops/s and latency quantiles. */
async function inProcess(execute: (id: string) => Promise<{ status: string }>, seconds: number): Promise<{ rps: number; p99: number; p50: number }> {
  const latencies: number[] = [];
  const end = now() + seconds * 1000;
  let n = 0;
  const started = now();
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (now() < end) {
      const t = now();
      const result = await execute(`${process.pid}-${n++}-${Math.random()}`);
      if (result.status !== 'ok') throw new Error(`bench: execute returned ${result.status}`);
      latencies.push(now() - t);
    }
  }));
  return { rps: latencies.length / ((now() - started) / 1000), p99: quantile(latencies, 0.99), p50: quantile(latencies, 0.5) };
}

export const httpCommands: Bench = {
  name: 'http-commands',
  description: `POST /commands/:name, ${CONNECTIONS} connections, vs commands.execute in-process with ${CONNECTIONS} in flight`,
  async run(context: BenchContext) {
    const seconds = context.scaled(5, 2);
    const rounds = context.scaled(4, 2);
    const httpLog = await openBenchLog(context.tempDir());
    const directLog = await openBenchLog(context.tempDir());
    const seed = Array.from({ length: AGGREGATES }, (_, k) => ({ source: 'bench', action: { reason: 'seed', actor: ['user', 'u0'] as const, aggregate: makeAction(k).action.aggregate, patch: [
      { op: 'add' as const, path: '/title', value: '' }, { op: 'add' as const, path: '/tags', value: [] }, { op: 'add' as const, path: '/stock', value: 0 },
    ] } }));
    for (const log of [httpLog, directLog]) await log.append(seed, { base: 0 });
    const direct = createCommandService(directLog, { deciders: [edit], retry: RETRY });
    const service = createCommandService(httpLog, { deciders: [edit], retry: RETRY });
    const server = await serve(httpLog, { authenticate: bearer({ secret: SECRET }), commands: { edit: { service, allow: role('writer') } } });
    const { writer } = await tokens();
    const http: Fired[] = [];
    const local: { rps: number; p99: number }[] = [];
    const ratios: number[] = [];
    try {
      note(`http-commands: a warm-up, then ${rounds} rounds of ${seconds} s per side`);
      for (let r = 0; r <= rounds; r++) {
        const runHttp = () => fire(`${server.url}/commands/edit`, r === 0 ? 1 : seconds, { method: 'POST', body: JSON.stringify({ id: '[<id>]' }), headers: { 'content-type': 'application/json', authorization: `Bearer ${writer}` } });
        const runDirect = () => inProcess((id) => direct.execute('edit', { id }, { actor: ['user', 'bench'], source: 'bench' }), r === 0 ? 1 : seconds);
        const [h, d] = r % 2 === 0 ? [await runHttp(), await runDirect()] : await (async () => { const d_ = await runDirect(); return [await runHttp(), d_] as const; })();
        if (h.errors > 0) throw new Error(`bench: http-commands: ${h.errors} failed requests ${JSON.stringify(h.statuses)}`);
        if (r === 0) continue;
        http.push(h);
        local.push(d);
        ratios.push(h.rps / d.rps);
      }
    } finally {
      await server.close();
      await httpLog.close();
      await directLog.close();
    }
    const ratio = median(ratios);
    emit({
      bench: 'http-commands',
      rounds,
      seconds,
      connections: CONNECTIONS,
      http_per_s: round(median(http.map((h) => h.rps))),
      http_p50_ms: round(median(http.map((h) => h.p50)), 1),
      http_p99_ms: round(median(http.map((h) => h.p99)), 1),
      execute_per_s: round(median(local.map((d) => d.rps))),
      execute_p99_ms: round(median(local.map((d) => d.p99)), 1),
      ratio: round(ratio, 3),
      target: '>=0.5x execute',
      met: ratio >= 0.5,
    });
  },
};

export const httpViews: Bench = {
  name: 'http-views',
  description: `GET /views/:name/:kind/:id, ${CONNECTIONS} connections, a member's bearer token; a bare node:http server answering the same body beside it`,
  async run(context: BenchContext) {
    const seconds = context.scaled(5, 2);
    const log = await openBenchLog(context.tempDir());
    await log.append(Array.from({ length: AGGREGATES }, (_, k) => makeAction(k)), { base: 0 });
    const books = log.projection('books', { kinds: ['book'] });
    await books.catchUp();
    const server = await serve(log, { authenticate: bearer({ secret: SECRET }), views: { books: { projection: books, allow: role('reader') } } });
    const { reader } = await tokens();
    const headers = { authorization: `Bearer ${reader}` };
    // The ceiling of this machine now: the same answer from a handler that does nothing else.
    const answer = JSON.stringify({ aggregate: ['book', 'b7'], state: await books.get(['book', 'b7']) });
    const bare = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', etag: '"1000"' });
      response.end(answer);
    });
    const bareUrl = await listen(bare);
    const runs: Fired[] = [];
    const bares: Fired[] = [];
    try {
      note(`http-views: a warm-up, then 3 rounds of ${seconds} s, each the gateway and the bare server`);
      for (let r = 0; r < 4; r++) {
        const gateway = () => fire(`${server.url}/views/books/book/b7`, r === 0 ? 1 : seconds, { headers });
        const baseline = () => fire(`${bareUrl}/views/books/book/b7`, r === 0 ? 1 : seconds, { headers });
        const [fired, floor] = r % 2 === 0 ? [await gateway(), await baseline()] : await (async () => { const b = await baseline(); return [await gateway(), b] as const; })();
        if (fired.errors > 0) throw new Error(`bench: http-views: ${fired.errors} failed requests ${JSON.stringify(fired.statuses)}`);
        if (r === 0) continue;
        runs.push(fired);
        bares.push(floor);
      }
    } finally {
      bare.close();
      await server.close();
      await log.close();
    }
    const rps = median(runs.map((f) => f.rps));
    emit({
      bench: 'http-views',
      seconds,
      connections: CONNECTIONS,
      requests_per_s: round(rps),
      p50_ms: round(median(runs.map((f) => f.p50)), 1),
      p99_ms: round(median(runs.map((f) => f.p99)), 1),
      bare_node_http_per_s: round(median(bares.map((f) => f.rps))),
      ratio_to_bare: round(rps / median(bares.map((f) => f.rps)), 2),
      target: '>=10k requests/s',
      met: rps >= 10_000,
    });
  },
};

export const httpBenches: readonly Bench[] = [httpFramework, httpCommands, httpViews];
