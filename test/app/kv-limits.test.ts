/**
 * Reply and pattern limits: a small request must not make every replica build a huge reply or
 * compile a huge pattern. Every refusal must be deterministic (state + command only), change
 * nothing, and leave the store usable; replies at the limit must still work.
 */
import { describe, expect, it } from "vitest";
import { GlobPattern } from "../../src/app/glob.ts";
import {
  type ExecContext,
  KV_STORE_DEFAULTS,
  KvStore,
  type KvStoreOptions,
  PATTERN_BYTES_MAX_DEFAULT,
  REPLY_BYTES_MAX_DEFAULT,
} from "../../src/app/kv-store.ts";

const CONTEXT: ExecContext = { nowMs: 1_000, info: () => "" };

function exec(store: KvStore, words: readonly (string | Buffer)[]): Buffer {
  return store.execute(
    words.map((w) => (typeof w === "string" ? Buffer.from(w, "latin1") : w)),
    CONTEXT,
  );
}

function run(store: KvStore, line: string | readonly (string | Buffer)[]): string {
  return exec(store, typeof line === "string" ? line.split(" ") : line).toString("latin1");
}

function tooLarge(size: number, limit: number): string {
  return `-ERR reply too large (${size} bytes, limit ${limit} set by --max-reply-bytes)\r\n`;
}

/** One key of each type, some with values big enough to matter for a small limit. */
function populate(store: KvStore): void {
  const value = "v".repeat(20);
  run(store, `SET s ${value}`);
  run(store, `SET t ${"w".repeat(30)}`);
  run(store, `HSET h f1 ${value} f2 ${value} field3 x`);
  run(store, `RPUSH l a ${value} bb ${value} ccc`);
  run(store, `SADD z m1 ${value} m2 ${value}x`);
  run(store, `ZADD zs 1 a 2.5 ${value} 3 b -inf ${value}y 1.1 c`);
  for (let i = 0; i < 5; i++) run(store, `SET key:${i} ${i}`);
}

/** Commands whose reply is built from stored data, each tried at and just under its size. */
const DATA_REPLIES: readonly string[] = [
  "GET s",
  "MGET s t s missing s",
  "MGET missing other none",
  "GETSET s newvalue",
  "SET t newvalue GET",
  "HGET h f1",
  "HGETALL h",
  "LRANGE l 0 -1",
  "LRANGE l 1 3",
  "LPOP l",
  "RPOP l",
  "LPOP l 3",
  "RPOP l 2",
  "SMEMBERS z",
  "SPOP z",
  "SRANDMEMBER z",
  "SPOP z 2",
  "SRANDMEMBER z 2",
  "SRANDMEMBER z -7",
  "ZRANGE zs 0 -1 WITHSCORES",
  "ZRANGE zs 0 -1 REV",
  "ZREVRANGE zs 1 3 WITHSCORES",
  "ZRANGE zs (1 +inf BYSCORE LIMIT 1 2 WITHSCORES",
  "ZRANGEBYSCORE zs -inf 3",
  "ZMSCORE zs a c nope b",
  "ZPOPMIN zs",
  "ZPOPMAX zs 3",
  "KEYS *",
  "KEYS key:*",
  "SCAN 0",
  "SCAN 0 COUNT 100 MATCH *",
];

function store(options: Partial<KvStoreOptions> = {}): KvStore {
  const s = new KvStore(options);
  populate(s);
  return s;
}

describe("replyBytesMax", () => {
  it("defaults to 64 MiB, patterns to 4096 bytes; bad values are refused", () => {
    expect(REPLY_BYTES_MAX_DEFAULT).toBe(64 * 1024 * 1024);
    expect(PATTERN_BYTES_MAX_DEFAULT).toBe(4096);
    expect(KV_STORE_DEFAULTS.replyBytesMax).toBe(REPLY_BYTES_MAX_DEFAULT);
    expect(KV_STORE_DEFAULTS.patternBytesMax).toBe(PATTERN_BYTES_MAX_DEFAULT);
    expect(() => new KvStore({ replyBytesMax: 0 })).toThrow(/replyBytesMax/);
    expect(() => new KvStore({ replyBytesMax: 1.5 })).toThrow(/replyBytesMax/);
    expect(() => new KvStore({ patternBytesMax: 0 })).toThrow(/patternBytesMax/);
    expect(() => KvStore.restore(new KvStore().snapshot(), { replyBytesMax: -1 })).toThrow(
      /replyBytesMax/,
    );
  });

  it("a reply of exactly the limit is sent; one byte less refuses it, changing nothing", () => {
    for (const command of DATA_REPLIES) {
      const expected = exec(store(), command.split(" "));
      expect(expected[0], command).not.toBe(45); // not itself an error
      const size = expected.length;

      const atLimit = store({ replyBytesMax: size });
      expect(exec(atLimit, command.split(" ")).equals(expected), command).toBe(true);

      const under = store({ replyBytesMax: size - 1 });
      const before = Buffer.from(under.snapshot());
      expect(run(under, command), command).toBe(tooLarge(size, size - 1));
      expect(Buffer.from(under.snapshot()).equals(before), `${command} changed the store`).toBe(
        true,
      );
      // Still usable: small replies go through, writes work.
      expect(run(under, "SET small x")).toBe("+OK\r\n");
      expect(run(under, "STRLEN small")).toBe(":1\r\n");
      expect(run(under, "DBSIZE")).toBe(":12\r\n"); // populate()'s 11 keys and small
    }
  });

  it("MGET of one 1 MiB key 64 times is refused under the 64 MiB default, not built", () => {
    const s = new KvStore();
    const mib = Buffer.alloc(1024 * 1024, 97);
    expect(run(s, ["SET", "big", mib])).toBe("+OK\r\n");
    const bulk = 1 + 7 + 2 + mib.length + 2; // $1048576\r\n ... \r\n
    const ok = run(s, ["MGET", ...new Array<string>(63).fill("big")]);
    expect(ok.length).toBe(5 + 63 * bulk); // *63\r\n
    expect(run(s, ["MGET", ...new Array<string>(64).fill("big")])).toBe(
      tooLarge(5 + 64 * bulk, REPLY_BYTES_MAX_DEFAULT),
    );
    expect(run(s, ["LPUSH", "l", mib])).toBe(":1\r\n");
    expect(run(s, "STRLEN big")).toBe(":1048576\r\n");
  });

  it("SRANDMEMBER with a huge negative count is refused without building anything", () => {
    const s = store();
    const refused = run(s, "SRANDMEMBER z -9223372036854775807");
    expect(refused).toMatch(/^-ERR reply too large \(\d+ bytes, limit 67108864/);
    expect(run(s, "SCARD z")).toBe(":4\r\n");
  });

  it("counts even missing keys: enough MGET arguments are refused on an empty store", () => {
    const s = new KvStore({ replyBytesMax: 100 });
    // *19\r\n + 19 × $-1\r\n = 5 + 95 = 100
    expect(run(s, ["MGET", ...new Array<string>(19).fill("k")])).toBe(
      `*19\r\n${"$-1\r\n".repeat(19)}`,
    );
    expect(run(s, ["MGET", ...new Array<string>(20).fill("k")])).toBe(tooLarge(105, 100));
  });

  it("KEYS and SCAN refuse many matching keys; a narrower pattern or smaller COUNT works", () => {
    const s = new KvStore({ replyBytesMax: 200 });
    for (let i = 0; i < 30; i++) run(s, `SET key:${String(i).padStart(2, "0")} ${i}`);
    // *30\r\n + 30 × $6\r\nkey:NN\r\n (12 bytes) = 5 + 360
    expect(run(s, "KEYS *")).toBe(tooLarge(365, 200));
    expect(run(s, "KEYS key:0*")).toMatch(/^\*10\r\n/);
    expect(run(s, "SCAN 0 COUNT 30")).toMatch(/^-ERR reply too large \(\d+ bytes, limit 200 /);
    expect(run(s, "SCAN 0 COUNT 10")).toMatch(/^\*2\r\n/);
    expect(run(s, "DBSIZE")).toBe(":30\r\n");
  });
});

describe("patternBytesMax", () => {
  it("KEYS and SCAN MATCH refuse a pattern over 4096 bytes before compiling it", () => {
    const s = store();
    const long = "*".repeat(4097);
    const refused = "-ERR pattern too long (4097 bytes, limit 4096)\r\n";
    expect(run(s, ["KEYS", long])).toBe(refused);
    expect(run(s, ["SCAN", "0", "MATCH", long])).toBe(refused);
    expect(run(s, ["SCAN", "0", "MATCH", long, "MATCH", "*"])).toBe(refused);
    const mib = "a".repeat(1024 * 1024);
    expect(run(s, ["KEYS", mib])).toBe("-ERR pattern too long (1048576 bytes, limit 4096)\r\n");
    // 4096 bytes is allowed and matches as usual.
    expect(run(s, ["KEYS", `key:0${"*".repeat(4091)}`])).toBe("*1\r\n$5\r\nkey:0\r\n");
    expect(run(s, ["SCAN", "0", "COUNT", "100", "MATCH", `key:1${"*".repeat(4091)}`])).toBe(
      "*2\r\n$1\r\n0\r\n*1\r\n$5\r\nkey:1\r\n",
    );
    expect(run(s, "DBSIZE")).toBe(":11\r\n");
  });

  it("is configurable", () => {
    const s = store({ patternBytesMax: 4 });
    expect(run(s, "KEYS key:*")).toBe("-ERR pattern too long (5 bytes, limit 4)\r\n");
    expect(run(s, "KEYS key*")).toMatch(/^\*5\r\n/);
    expect(run(s, "SCAN 0 MATCH key:*")).toBe("-ERR pattern too long (5 bytes, limit 4)\r\n");
  });

  it("compiles literals and ? without a table per character, matching as before", () => {
    const pattern = new GlobPattern(`${"a?".repeat(2048)}*`);
    expect(pattern.matches("ab".repeat(2048))).toBe(true);
    expect(pattern.matches(`${"ab".repeat(2047)}b`)).toBe(false);
    // Shared tables are never written: other patterns still see their own bytes only.
    expect(new GlobPattern("b").matches("a")).toBe(false);
    expect(new GlobPattern("[^a]").matches("a")).toBe(false);
    expect(new GlobPattern("?").matches("\u00ff")).toBe(true);
  });
});
