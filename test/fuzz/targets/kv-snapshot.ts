/**
 * The embedded store's snapshot restore (src/app/kv-snapshot.ts readSnapshot, via KvStore.restore):
 * snapshots of stores built by generated commands, mutated, the trailing crc32 recomputed or not.
 * A restored store is then used: every command type over its keys, and an expiry sweep.
 */
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { type ExecContext, KvStore } from "../../../src/app/kv-store.ts";
import { ApusError } from "../../../src/core/errors.ts";
import { fuzzBytes } from "../mutate.ts";
import { check, describe, onlyDocumentedErrors, syncTarget, tally } from "../target.ts";

const context = (nowMs: number): ExecContext => ({ nowMs, info: () => "" });

const word = fc.string({ unit: fc.constantFrom(..."abcxyz01"), minLength: 1, maxLength: 4 });
const key = fc.constantFrom("k1", "k2", "k3", "k4", "h", "l", "s", "z", "x");
const score = fc.oneof(
  fc.integer({ min: -5, max: 5 }).map(String),
  fc.constantFrom("inf", "-inf", "1.5"),
);

const commandArb: fc.Arbitrary<string[]> = fc.oneof(
  fc.tuple(key, word).map(([k, v]) => ["SET", k, v]),
  fc.tuple(key, word, word).map(([k, f, v]) => ["HSET", k, f, v]),
  fc.tuple(key, word).map(([k, v]) => ["RPUSH", k, v]),
  fc.tuple(key, word).map(([k, v]) => ["SADD", k, v]),
  fc.tuple(key, score, word).map(([k, s, m]) => ["ZADD", k, s, m]),
  fc.tuple(key, fc.integer({ min: 1, max: 5000 })).map(([k, ms]) => ["PEXPIRE", k, String(ms)]),
  fc.tuple(key, word, word).map(([k, f, v]) => ["XADD", k, "*", f, v]),
  fc.tuple(key, fc.integer({ min: 0, max: 12 })).map(([k, n]) => ["XDEL", k, `${1000 + n}-0`]),
  key.map((k) => ["XGROUP", "CREATE", k, "g", "0", "MKSTREAM"]),
  fc
    .tuple(key, word)
    .map(([k, c]) => ["XREADGROUP", "GROUP", "g", c, "COUNT", "2", "STREAMS", k, ">"]),
  key.map((k) => ["DEL", k]),
);

/** A store's snapshot after `commands`, at log times 1000, 1001, … */
function snapshotOf(commands: readonly string[][]): Uint8Array {
  const store = new KvStore();
  commands.forEach((args, i) => {
    store.execute(
      args.map((a) => Buffer.from(a, "latin1")),
      context(1000 + i),
    );
  });
  return store.snapshot();
}

const snapshotArb = fc.array(commandArb, { maxLength: 12 });

/** Reads and writes every type over a restored store's keys: nothing may throw. */
const PROBES = [
  ["KEYS", "*"],
  ["SCAN", "0", "COUNT", "100"],
  ["DBSIZE"],
  ...["k1", "k2", "k3", "k4", "h", "l", "s", "z", "x"].flatMap((k) => [
    ["TYPE", k],
    ["GET", k],
    ["TTL", k],
    ["HGETALL", k],
    ["LRANGE", k, "0", "-1"],
    ["SMEMBERS", k],
    ["ZRANGE", k, "0", "-1", "WITHSCORES"],
    ["ZADD", k, "2", "m"],
    ["RPUSH", k, "v"],
    ["XRANGE", k, "-", "+"],
    ["XINFO", "STREAM", k, "FULL"],
    ["XADD", k, "MAXLEN", "~", "1", "*", "f", "v"],
    ["XREADGROUP", "GROUP", "g", "c", "STREAMS", k, "0"],
    ["XAUTOCLAIM", k, "g", "d", "0", "0"],
    ["XTRIM", k, "MINID", "1001"],
  ]),
  ["SET", "new", "v"],
  ["FLUSHALL"],
].map((args) => args.map((a) => Buffer.from(a, "latin1")));

/**
 * Version 1 and 2 snapshots (no zsets, no streams) are read, and written back as version 3: the
 * same otherwise.
 */
function asCurrentVersion(bytes: Buffer): Buffer {
  const version = bytes.readUInt32LE(4);
  if (version !== 1 && version !== 2) return bytes;
  const current = Buffer.from(bytes);
  current.writeUInt32LE(3, 4);
  current.writeUInt32LE(crc32(current.subarray(0, current.length - 4)), current.length - 4);
  return current;
}

function isDocumented(error: unknown): boolean {
  return (
    error instanceof ApusError &&
    (error.code === "ERR_WIRE_FIELD" || error.code === "ERR_WIRE_VERSION")
  );
}

export const kvSnapshotTarget = syncTarget({
  name: "kv-snapshot",
  summary: [
    "KvStore.restore over mutated store snapshots (crc32 recomputed or not)",
    "throws only ApusError ERR_WIRE_FIELD or ERR_WIRE_VERSION",
    "canonical: a restored store snapshots to the very input bytes; valid snapshots round-trip",
    "a restored store runs reads, writes of every type and an expiry sweep without throwing",
  ],
  arbitrary: fc.record({
    input: fuzzBytes<readonly string[][]>(snapshotArb, snapshotOf, 128),
    fixCrc: fc.boolean(),
  }),
  check: ({ input, fixCrc }) => {
    const bytes = Buffer.from(input.bytes);
    if (fixCrc && bytes.length >= 4) {
      bytes.writeUInt32LE(crc32(bytes.subarray(0, bytes.length - 4)), bytes.length - 4);
    }
    const result = onlyDocumentedErrors(
      () => KvStore.restore(bytes),
      isDocumented,
      "KvStore.restore",
    );
    if (!result.ok) {
      tally(`${input.origin}: ${(result.error as ApusError).message.replace(/[0-9]+/g, "N")}`);
      check(input.origin !== "valid", `a valid snapshot refused: ${describe(result.error)}`);
      return;
    }
    tally(`${input.origin}: restored`);
    const store = result.value;
    check(
      Buffer.compare(Buffer.from(store.snapshot()), asCurrentVersion(bytes)) === 0,
      "a restored store snapshots to other bytes than it was restored from",
    );
    const nowMs = Number.isFinite(store.clockMs) ? store.clockMs : 0;
    try {
      store.expireSweep(nowMs + 1, 4);
      for (const args of PROBES) store.execute(args, context(nowMs + 2));
      store.expireSweep(nowMs + 1e9, 1000);
    } catch (error) {
      throw new Error(`a restored store threw: ${describe(error)}`, { cause: error });
    }
  },
});
