/**
 * A closed-loop memcached text-protocol load generator, the memcache counterpart of
 * redis-benchmark for bench/app.ts (memcslap 1.1 here reports only a total time: no latency
 * quantiles, and its concurrency is threads). N connections share `requests` requests; each
 * connection keeps exactly one `set` or `get` outstanding (like redis-benchmark -P 1), keys
 * drawn uniformly from key:0 … key:(keyspace-1) (like -r), values of `valueBytes` bytes (like -d).
 * Every request is timed with process.hrtime.bigint.
 *
 * Run as its own process, so that, like redis-benchmark, it competes with the servers for the
 * cores as a separate program and not inside the benchmark's event loop:
 *   node bench/lib/memcache-load.ts '{"port":11211,"test":"set","connections":8,"requests":100000}'
 * prints one JSON line (LoadResult) on stdout.
 */
import { connect, type Socket } from "node:net";

const CONNECT_MS_MAX = 10_000;
/** A reply longer than this without its terminator is a protocol error (values here are tiny). */
const REPLY_BYTES_MAX = 1024 * 1024;
const END = Buffer.from("END\r\n");
const CRLF = Buffer.from("\r\n");

export type MemcacheTest = "set" | "get";

export interface LoadOptions {
  readonly host?: string;
  readonly port: number;
  readonly test: MemcacheTest;
  readonly connections: number;
  /** Requests over all connections together. */
  readonly requests: number;
  readonly keyspace?: number;
  readonly valueBytes?: number;
  readonly seed?: number;
}

export interface LoadResult {
  readonly test: MemcacheTest;
  readonly connections: number;
  /** Requests answered, errors included. */
  readonly requests: number;
  /** Replies other than STORED (set) or VALUE…END / END (get): ERROR, SERVER_ERROR, CLIENT_ERROR. */
  readonly errors: number;
  /** get replies that found the key. */
  readonly hits: number;
  readonly elapsedMs: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** This load generator's own CPU (user + system) over the run, ms. */
  readonly cpuMs: number;
}

/** mulberry32: a seeded PRNG, so a run's keys repeat. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function endsWith(buffer: Buffer, tail: Buffer): boolean {
  return (
    buffer.length >= tail.length &&
    buffer.compare(tail, 0, tail.length, buffer.length - tail.length) === 0
  );
}

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${host}:${port}: no answer in ${CONNECT_MS_MAX} ms`));
    }, CONNECT_MS_MAX);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`connect to ${host}:${port}: ${error.message}`, { cause: error }));
    });
  });
}

export async function runMemcacheLoad(options: LoadOptions): Promise<LoadResult> {
  const host = options.host ?? "127.0.0.1";
  const keyspace = options.keyspace ?? 100_000;
  const value = "x".repeat(options.valueBytes ?? 3);
  const connectionCount = Math.max(1, Math.min(options.connections, options.requests));
  const latenciesUs = new Float64Array(options.requests);
  let issued = 0;
  let answered = 0;
  let errors = 0;
  let hits = 0;
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < connectionCount; i++) sockets.push(await open(host, options.port));
    const cpuStart = process.cpuUsage();
    const started = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      let open = sockets.length;
      for (const [index, socket] of sockets.entries()) {
        const random = prng((options.seed ?? 1) ^ Math.imul(index + 1, 0x9e3779b1));
        let sentAt = 0n;
        let chunks: Buffer[] = [];
        let bytes = 0;
        const finish = () => {
          socket.removeAllListeners("data");
          if (--open === 0) resolve();
        };
        const sendNext = () => {
          if (issued >= options.requests) {
            finish();
            return;
          }
          issued++;
          const key = `key:${Math.floor(random() * keyspace)}`;
          sentAt = process.hrtime.bigint();
          socket.write(
            options.test === "set"
              ? `set ${key} 0 0 ${value.length}\r\n${value}\r\n`
              : `get ${key}\r\n`,
          );
        };
        const onReply = (reply: Buffer) => {
          latenciesUs[answered++] = Number(process.hrtime.bigint() - sentAt) / 1000;
          sentAt = 0n;
          const text = reply.subarray(0, Math.min(reply.length, 16)).toString("latin1");
          if (options.test === "set") {
            if (!text.startsWith("STORED")) errors++;
          } else if (text.startsWith("VALUE")) hits++;
          else if (!text.startsWith("END")) errors++;
          sendNext();
        };
        socket.on("data", (chunk: Buffer) => {
          chunks.push(chunk);
          bytes += chunk.length;
          if (bytes > REPLY_BYTES_MAX) {
            reject(new Error(`a reply longer than ${REPLY_BYTES_MAX} bytes`));
            return;
          }
          const whole = chunks.length === 1 ? chunk : Buffer.concat(chunks);
          // A get answers VALUE … END or END; an error answers one line (ERROR, SERVER_ERROR …).
          const complete =
            options.test === "get" && whole.toString("latin1", 0, 5) === "VALUE"
              ? endsWith(whole, END)
              : endsWith(whole, CRLF);
          if (!complete) {
            chunks = [whole];
            return;
          }
          chunks = [];
          bytes = 0;
          onReply(whole);
        });
        socket.on("error", (error) => reject(error));
        socket.on("close", () => {
          if (issued < options.requests || sentAt !== 0n)
            reject(new Error("the server closed a connection before the run ended"));
        });
        sendNext();
      }
    });
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    const cpu = process.cpuUsage(cpuStart);
    const sorted = latenciesUs.subarray(0, answered).sort();
    const at = (q: number) =>
      sorted.length === 0
        ? Number.NaN
        : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return {
      test: options.test,
      connections: connectionCount,
      requests: answered,
      errors,
      hits,
      elapsedMs,
      rps: answered / (elapsedMs / 1000),
      p50Ms: at(0.5) / 1000,
      p99Ms: at(0.99) / 1000,
      maxMs: (sorted.at(-1) ?? Number.NaN) / 1000,
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
  } finally {
    for (const socket of sockets) {
      socket.removeAllListeners("close");
      socket.destroy();
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const options = JSON.parse(process.argv[2] ?? "{}") as LoadOptions;
  runMemcacheLoad(options).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error: unknown) => {
      process.stderr.write(`memcache-load: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
