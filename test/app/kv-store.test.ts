import { crc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GlobPattern } from "../../src/app/glob.ts";
import { commandKind, type ExecContext, KvStore } from "../../src/app/kv-store.ts";

function context(nowMs: number, replication = ""): ExecContext {
  return { nowMs, info: (section) => (section === "replication" ? replication : "") };
}

/** Runs a command (space-separated words) and returns the reply as a latin1 string. */
function run(store: KvStore, line: string | string[], nowMs = 1_000): string {
  const words = typeof line === "string" ? line.split(" ") : line;
  return store
    .execute(
      words.map((w) => Buffer.from(w, "latin1")),
      context(nowMs),
    )
    .toString("latin1");
}

describe("KvStore strings", () => {
  it("SET/GET, options, case-insensitive names", () => {
    const store = new KvStore();
    expect(run(store, "get k")).toBe("$-1\r\n");
    expect(run(store, "SeT k v")).toBe("+OK\r\n");
    expect(run(store, "GET k")).toBe("$1\r\nv\r\n");
    expect(run(store, "SET k w GET")).toBe("$1\r\nv\r\n");
    expect(run(store, "SET k x NX")).toBe("$-1\r\n");
    expect(run(store, "SET other x XX")).toBe("$-1\r\n");
    expect(run(store, "SET k x XX")).toBe("+OK\r\n");
    expect(run(store, "SET k x NX XX")).toBe("-ERR syntax error\r\n");
    expect(run(store, "SET k x EX 0")).toBe("-ERR invalid expire time in 'set' command\r\n");
    expect(run(store, "SET k x PX y")).toBe("-ERR value is not an integer or out of range\r\n");
    expect(run(store, "GET")).toBe("-ERR wrong number of arguments for 'get' command\r\n");
    expect(run(store, "GETSET k y")).toBe("$1\r\nx\r\n");
    expect(run(store, "MSET a 1 b 2")).toBe("+OK\r\n");
    expect(run(store, "MGET a b c")).toBe("*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
    expect(run(store, "MSET a")).toBe("-ERR wrong number of arguments for 'mset' command\r\n");
  });

  it("is binary-safe in keys and values", () => {
    const store = new KvStore();
    const key = Buffer.from([0, 255, 13, 10]);
    const value = Buffer.from([1, 2, 0, 200]);
    expect(store.execute([Buffer.from("SET"), key, value], context(0)).toString()).toBe("+OK\r\n");
    const reply = store.execute([Buffer.from("GET"), key], context(0));
    expect([...reply]).toEqual([...Buffer.from("$4\r\n"), ...value, 13, 10]);
  });

  it("copies stored values: changing the argument afterwards changes nothing", () => {
    const store = new KvStore();
    const value = Buffer.from("abc");
    store.execute([Buffer.from("SET"), Buffer.from("k"), value], context(0));
    value[0] = 120;
    expect(run(store, "GET k")).toBe("$3\r\nabc\r\n");
  });

  it("INCR family: range, overflow, non-integers", () => {
    const store = new KvStore();
    expect(run(store, "INCR n")).toBe(":1\r\n");
    expect(run(store, "INCRBY n 41")).toBe(":42\r\n");
    expect(run(store, "DECR n")).toBe(":41\r\n");
    expect(run(store, "DECRBY n 50")).toBe(":-9\r\n");
    expect(run(store, "INCRBY n 1.5")).toBe("-ERR value is not an integer or out of range\r\n");
    run(store, "SET n 9223372036854775807");
    expect(run(store, "INCR n")).toBe("-ERR increment or decrement would overflow\r\n");
    expect(run(store, "DECR n")).toBe(":9223372036854775806\r\n");
    expect(run(store, "DECRBY n -9223372036854775808")).toBe("-ERR decrement would overflow\r\n");
    run(store, "SET s abc");
    expect(run(store, "INCR s")).toBe("-ERR value is not an integer or out of range\r\n");
    run(store, "LPUSH l x");
    expect(run(store, "INCR l")).toBe(
      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    );
  });

  it("APPEND and STRLEN", () => {
    const store = new KvStore();
    expect(run(store, "APPEND k ab")).toBe(":2\r\n");
    expect(run(store, "APPEND k cd")).toBe(":4\r\n");
    expect(run(store, "STRLEN k")).toBe(":4\r\n");
    expect(run(store, "STRLEN none")).toBe(":0\r\n");
  });

  it("rejects values over valueBytesMax with an error reply, also when APPEND grows one", () => {
    const store = new KvStore({ valueBytesMax: 4 });
    const tooLarge = "-ERR value too large (limit 4 bytes, set by --max-value-bytes)\r\n";
    expect(run(store, "SET k 12345")).toBe(tooLarge);
    expect(run(store, "SET k 1234")).toBe("+OK\r\n");
    expect(run(store, "APPEND k 5")).toBe(tooLarge);
    expect(run(store, "HSET h f 12345")).toBe(tooLarge);
    expect(run(store, "RPUSH l 12345")).toBe(tooLarge);
    expect(run(store, "SADD s 12345")).toBe(tooLarge);
    expect(run(store, "MSET a 1 b 12345")).toBe(tooLarge);
    expect(run(store, "MGET a")).toBe("*1\r\n$-1\r\n");
    expect(
      new KvStore()
        .execute(
          [Buffer.from("SET"), Buffer.from("k"), Buffer.alloc(8 * 1024 * 1024 + 1)],
          context(0),
        )
        .toString(),
    ).toBe("-ERR value too large (limit 8388608 bytes, set by --max-value-bytes)\r\n");
  });
});

describe("KvStore expiry follows nowMs only", () => {
  it("EX/PX/TTL/PTTL/PERSIST and lazy expiry", () => {
    const store = new KvStore();
    run(store, "SET k v EX 10", 1_000);
    expect(run(store, "TTL k", 1_000)).toBe(":10\r\n");
    expect(run(store, "PTTL k", 5_400)).toBe(":5600\r\n");
    expect(run(store, "TTL k", 5_400)).toBe(":6\r\n");
    expect(run(store, "GET k", 11_000)).toBe("$1\r\nv\r\n"); // alive at exactly its expiry time
    expect(run(store, "GET k", 11_001)).toBe("$-1\r\n");
    expect(run(store, "TTL k", 11_001)).toBe(":-2\r\n");
    run(store, "SET k v PX 100", 20_000);
    expect(run(store, "PERSIST k", 20_000)).toBe(":1\r\n");
    expect(run(store, "TTL k", 20_000)).toBe(":-1\r\n");
    expect(run(store, "GET k", 99_000)).toBe("$1\r\nv\r\n");
    expect(run(store, "EXPIRE k 0", 99_000)).toBe(":1\r\n");
    expect(run(store, "EXISTS k", 99_000)).toBe(":0\r\n");
  });

  it("KEYS, SCAN, DBSIZE and EXISTS ignore expired keys", () => {
    const store = new KvStore();
    run(store, "SET a 1 PX 10", 0);
    run(store, "SET b 1", 0);
    expect(run(store, "DBSIZE", 5)).toBe(":2\r\n");
    expect(run(store, "DBSIZE", 11)).toBe(":1\r\n");
    expect(run(store, "KEYS *", 11)).toBe("*1\r\n$1\r\nb\r\n");
    expect(run(store, "SCAN 0", 11)).toBe("*2\r\n$1\r\n0\r\n*1\r\n$1\r\nb\r\n");
    expect(run(store, "EXISTS a b", 11)).toBe(":1\r\n");
  });

  it("never moves time backwards (a new leader's clock may lag)", () => {
    const store = new KvStore();
    run(store, "SET k v PX 100", 1_000);
    expect(run(store, "GET k", 1_200)).toBe("$-1\r\n");
    run(store, "SET j v PX 100", 1_200);
    expect(run(store, "PTTL j", 900)).toBe(":100\r\n");
  });

  it("expireSweep collects expired keys deterministically, cycling through the rest", () => {
    const store = new KvStore();
    for (let i = 0; i < 10; i++) run(store, `SET k${i} v PX ${i % 2 === 0 ? 10 : 1000}`, 0);
    expect(store.keyCount).toBe(10);
    expect(store.expireSweep(100, 4)).toBe(2);
    expect(store.expireSweep(100, 4)).toBe(2);
    expect(store.expireSweep(100, 100)).toBe(1);
    expect(store.keyCount).toBe(5);
  });
});

describe("KvStore keyspace commands", () => {
  it("DEL, EXISTS, TYPE, FLUSHALL, FLUSHDB", () => {
    const store = new KvStore();
    run(store, "SET s 1");
    run(store, "HSET h f v");
    run(store, "RPUSH l a");
    run(store, "SADD t m");
    expect(["s", "h", "l", "t", "x"].map((k) => run(store, `TYPE ${k}`))).toEqual([
      "+string\r\n",
      "+hash\r\n",
      "+list\r\n",
      "+set\r\n",
      "+none\r\n",
    ]);
    expect(run(store, "EXISTS s s x")).toBe(":2\r\n");
    expect(run(store, "DEL s x")).toBe(":1\r\n");
    expect(run(store, "FLUSHDB")).toBe("+OK\r\n");
    expect(run(store, "DBSIZE")).toBe(":0\r\n");
    expect(run(store, "FLUSHALL ASYNC")).toBe("+OK\r\n");
    expect(run(store, "FLUSHALL NOW")).toBe("-ERR syntax error\r\n");
  });

  it("KEYS glob patterns", () => {
    const store = new KvStore();
    for (const key of ["hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo", "a?b"])
      run(store, `SET ${key} 1`);
    const keys = (pattern: string) =>
      [...run(store, ["KEYS", pattern]).matchAll(/\r\n([^$*\r\n][^\r\n]*)/g)].map((m) => m[1]);
    expect(keys("h?llo")).toEqual(["hello", "hallo", "hxllo", "h*llo"]);
    expect(keys("h*llo")).toEqual(["hello", "hallo", "hxllo", "hllo", "heeeello", "h*llo"]);
    expect(keys("h[ae]llo")).toEqual(["hello", "hallo"]);
    expect(keys("h[^e]llo")).toEqual(["hallo", "hxllo", "h*llo"]);
    expect(keys("h[a-b]llo")).toEqual(["hallo"]);
    expect(keys("h[b-a]llo")).toEqual(["hallo"]);
    expect(keys("h\\*llo")).toEqual(["h*llo"]);
    expect(keys("a\\?b")).toEqual(["a?b"]);
    expect(keys("zzz")).toEqual([]);
  });

  it("GlobPattern edge cases follow stringmatchlen", () => {
    expect(new GlobPattern("[abc").matches("a")).toBe(true);
    expect(new GlobPattern("[a-]").matches("]")).toBe(true);
    expect(new GlobPattern("[\\]]").matches("]")).toBe(true);
    expect(new GlobPattern("*a*b*c").matches("xxaxxbxxc")).toBe(true);
    expect(new GlobPattern("*a*b*c").matches("xxaxxcxxb")).toBe(false);
    expect(new GlobPattern("**").matches("")).toBe(true);
    expect(new GlobPattern("?").matches("")).toBe(false);
    expect(new GlobPattern("a\\").matches("a\\")).toBe(true);
  });

  it("SCAN: deterministic cursor, MATCH, COUNT, TYPE; every key present throughout is seen once", () => {
    const store = new KvStore();
    for (let i = 0; i < 50; i++) run(store, `SET key:${i} v`);
    run(store, "HSET hash f v");
    const seen: string[] = [];
    let cursor = "0";
    let calls = 0;
    do {
      const reply = run(store, `SCAN ${cursor} COUNT 7`);
      const parts = reply.split("\r\n");
      cursor = parts[2]!;
      for (let i = 5; i < parts.length - 1; i += 2) seen.push(parts[i]!);
      // Deletions and additions during the iteration do not disturb it.
      run(store, `DEL key:${calls * 3 + 40}`);
      run(store, `SET new:${calls} v`);
      calls++;
    } while (cursor !== "0" && calls < 100);
    for (let i = 0; i < 40; i++) expect(seen).toContain(`key:${i}`);
    expect(new Set(seen).size).toBe(seen.length);
    expect(run(store, "SCAN 0 MATCH hash COUNT 1000")).toBe(
      "*2\r\n$1\r\n0\r\n*1\r\n$4\r\nhash\r\n",
    );
    expect(run(store, "SCAN 0 TYPE hash COUNT 1000")).toBe("*2\r\n$1\r\n0\r\n*1\r\n$4\r\nhash\r\n");
    expect(run(store, "SCAN 0 COUNT 0")).toBe("-ERR syntax error\r\n");
    expect(run(store, "SCAN 0 COUNT")).toBe("-ERR syntax error\r\n");
    expect(run(store, "SCAN -1")).toBe("-ERR invalid cursor\r\n");
  });
});

describe("KvStore hashes, lists, sets", () => {
  it("hash commands", () => {
    const store = new KvStore();
    expect(run(store, "HSET h a 1 b 2")).toBe(":2\r\n");
    expect(run(store, "HSET h a 3")).toBe(":0\r\n");
    expect(run(store, "HGET h a")).toBe("$1\r\n3\r\n");
    expect(run(store, "HGETALL h")).toBe("*4\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n2\r\n");
    expect(run(store, "HLEN h")).toBe(":2\r\n");
    expect(run(store, "HEXISTS h b")).toBe(":1\r\n");
    expect(run(store, "HDEL h a b c")).toBe(":2\r\n");
    expect(run(store, "EXISTS h")).toBe(":0\r\n");
    expect(run(store, "HSET h a")).toBe("-ERR wrong number of arguments for 'hset' command\r\n");
  });

  it("list commands", () => {
    const store = new KvStore();
    expect(run(store, "RPUSH l c d")).toBe(":2\r\n");
    expect(run(store, "LPUSH l b a")).toBe(":4\r\n");
    expect(run(store, "LRANGE l 0 -1")).toBe("*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n");
    expect(run(store, "LLEN l")).toBe(":4\r\n");
    expect(run(store, "LPOP l")).toBe("$1\r\na\r\n");
    expect(run(store, "RPOP l 2")).toBe("*2\r\n$1\r\nd\r\n$1\r\nc\r\n");
    expect(run(store, "RPOP l 5")).toBe("*1\r\n$1\r\nb\r\n");
    expect(run(store, "LPOP l")).toBe("$-1\r\n");
    expect(run(store, "LPOP l 1")).toBe("*-1\r\n");
    for (let i = 0; i < 100; i++) run(store, `${i % 2 ? "L" : "R"}PUSH m ${i}`);
    expect(run(store, "LLEN m")).toBe(":100\r\n");
    expect(run(store, "LRANGE m 0 0")).toBe("*1\r\n$2\r\n99\r\n");
    expect(run(store, "LRANGE m -1 -1")).toBe("*1\r\n$2\r\n98\r\n");
  });

  it("set commands", () => {
    const store = new KvStore();
    expect(run(store, "SADD s a b a")).toBe(":2\r\n");
    expect(run(store, "SCARD s")).toBe(":2\r\n");
    expect(run(store, "SISMEMBER s a")).toBe(":1\r\n");
    expect(run(store, "SMEMBERS s")).toBe("*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    expect(run(store, "SREM s a b")).toBe(":2\r\n");
    expect(run(store, "TYPE s")).toBe("+none\r\n");
  });

  it("SPOP and SRANDMEMBER choose deterministically: oldest members first", () => {
    const store = new KvStore();
    run(store, "SADD s c a b d");
    expect(run(store, "SRANDMEMBER s")).toBe("$1\r\nc\r\n");
    expect(run(store, "SRANDMEMBER s 2")).toBe("*2\r\n$1\r\nc\r\n$1\r\na\r\n");
    expect(run(store, "SRANDMEMBER s 9")).toBe(run(store, "SMEMBERS s"));
    expect(run(store, "SRANDMEMBER s -6")).toBe(
      "*6\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nd\r\n$1\r\nc\r\n$1\r\na\r\n",
    );
    expect(run(store, "SRANDMEMBER s 0")).toBe("*0\r\n");
    expect(run(store, "SRANDMEMBER s x")).toBe("-ERR value is not an integer or out of range\r\n");
    expect(run(store, "SCARD s")).toBe(":4\r\n"); // SRANDMEMBER removes nothing
    expect(run(store, "SPOP s")).toBe("$1\r\nc\r\n");
    expect(run(store, "SPOP s 2")).toBe("*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    expect(run(store, "SADD s c")).toBe(":1\r\n"); // re-added: now the newest
    expect(run(store, "SPOP s 5")).toBe("*2\r\n$1\r\nd\r\n$1\r\nc\r\n");
    expect(run(store, "EXISTS s")).toBe(":0\r\n");
    expect(run(store, "SPOP s")).toBe("$-1\r\n");
    expect(run(store, "SPOP s 1")).toBe("*0\r\n");
    expect(run(store, "SRANDMEMBER s")).toBe("$-1\r\n");
    expect(run(store, "SPOP s -1")).toBe("-ERR value is out of range, must be positive\r\n");
    expect(run(store, "SPOP s 1 2")).toBe("-ERR syntax error\r\n");
    expect(run(store, "SPOP")).toBe("-ERR wrong number of arguments for 'spop' command\r\n");
    run(store, "SET str v");
    expect(run(store, "SPOP str")).toMatch(/^-WRONGTYPE/);
    expect(run(store, "SRANDMEMBER str")).toMatch(/^-WRONGTYPE/);
    // The same commands on a snapshot's restore pick the same members.
    const one = new KvStore();
    for (let i = 0; i < 50; i++) run(one, `SADD big m${(i * 37) % 50}`);
    run(one, "SPOP big 7");
    const two = KvStore.restore(one.snapshot());
    for (const line of ["SPOP big", "SRANDMEMBER big -60", "SPOP big 10", "SRANDMEMBER big 3"]) {
      expect(run(two, line), line).toBe(run(one, line));
    }
  });
});

describe("KvStore sorted sets", () => {
  it("ZADD, ZSCORE, ZMSCORE, ZCARD, ZREM, TYPE, WRONGTYPE", () => {
    const store = new KvStore();
    expect(run(store, "ZADD z 2 b 1 a 3 c")).toBe(":3\r\n");
    expect(run(store, "ZADD z 1.5 a 4 d")).toBe(":1\r\n");
    expect(run(store, "ZADD z CH 1.5 a 5 d 6 e")).toBe(":2\r\n");
    expect(run(store, "ZSCORE z a")).toBe("$3\r\n1.5\r\n");
    expect(run(store, "ZSCORE z nope")).toBe("$-1\r\n");
    expect(run(store, "ZMSCORE z a nope e")).toBe("*3\r\n$3\r\n1.5\r\n$-1\r\n$1\r\n6\r\n");
    expect(run(store, "ZCARD z")).toBe(":5\r\n");
    expect(run(store, "TYPE z")).toBe("+zset\r\n");
    expect(run(store, "ZREM z a nope")).toBe(":1\r\n");
    expect(run(store, "ZREM z b c d e")).toBe(":4\r\n");
    expect(run(store, "EXISTS z")).toBe(":0\r\n");
    run(store, "ZADD z 1 a");
    for (const line of ["GET z", "SADD z x", "LPUSH z x", "HSET z f v", "SMEMBERS z", "INCR z"]) {
      expect(run(store, line), line).toMatch(/^-WRONGTYPE/);
    }
    run(store, "SET s v");
    for (const line of [
      "ZADD s 1 a",
      "ZINCRBY s 1 a",
      "ZSCORE s a",
      "ZMSCORE s a",
      "ZREM s a",
      "ZCARD s",
      "ZCOUNT s 1 2",
      "ZRANGE s 0 -1",
      "ZREVRANGE s 0 -1",
      "ZRANGEBYSCORE s 1 2",
      "ZRANK s a",
      "ZREVRANK s a",
      "ZPOPMIN s",
      "ZPOPMAX s 0",
    ]) {
      expect(run(store, line), line).toMatch(/^-WRONGTYPE/);
    }
    expect(run(store, "SCAN 0 TYPE zset")).toBe("*2\r\n$1\r\n0\r\n*1\r\n$1\r\nz\r\n");
  });

  it("ZADD options and ZINCRBY", () => {
    const store = new KvStore();
    run(store, "ZADD z 1 a 2 b");
    expect(run(store, "ZADD z NX 5 a 3 c")).toBe(":1\r\n");
    expect(run(store, "ZADD z XX CH 5 a 4 d")).toBe(":1\r\n");
    expect(run(store, "ZSCORE z a")).toBe("$1\r\n5\r\n");
    expect(run(store, "ZADD z GT CH 1 a 9 b")).toBe(":1\r\n");
    expect(run(store, "ZADD z LT CH 9 a 0 c")).toBe(":1\r\n");
    expect(run(store, "ZADD z INCR 2.5 a")).toBe("$3\r\n7.5\r\n");
    expect(run(store, "ZADD z NX INCR 1 a")).toBe("$-1\r\n");
    expect(run(store, "ZADD z XX 1 nope")).toBe(":0\r\n");
    expect(run(store, "ZADD nokey XX 1 a")).toBe(":0\r\n");
    expect(run(store, "EXISTS nokey")).toBe(":0\r\n");
    expect(run(store, "ZINCRBY z -0.5 a")).toBe("$1\r\n7\r\n");
    expect(run(store, "ZINCRBY z 1.1 new")).toBe("$18\r\n1.1000000000000001\r\n");
    expect(run(store, "ZINCRBY z inf a")).toBe("$3\r\ninf\r\n");
    expect(run(store, "ZINCRBY z -inf a")).toBe("-ERR resulting score is not a number (NaN)\r\n");
    expect(run(store, "ZADD z NX XX 1 a")).toBe(
      "-ERR XX and NX options at the same time are not compatible\r\n",
    );
    for (const options of ["GT LT", "NX GT", "NX LT"]) {
      expect(run(store, `ZADD z ${options} 1 a`)).toBe(
        "-ERR GT, LT, and/or NX options at the same time are not compatible\r\n",
      );
    }
    expect(run(store, "ZADD z INCR 1 a 2 b")).toBe(
      "-ERR INCR option supports a single increment-element pair\r\n",
    );
    expect(run(store, "ZADD z 1 a 2")).toBe("-ERR syntax error\r\n");
    for (const score of ["x", "nan", "1e400", "", "1_0", "--1"]) {
      expect(run(store, ["ZADD", "z", score, "a"]), score).toBe(
        "-ERR value is not a valid float\r\n",
      );
    }
    expect(run(store, "ZINCRBY z x a")).toBe("-ERR value is not a valid float\r\n");
    expect(run(store, "ZADD z -0 zero")).toBe(":1\r\n");
    expect(run(store, "ZSCORE z zero")).toBe("$1\r\n0\r\n");
    const small = new KvStore({ valueBytesMax: 4 });
    expect(run(small, "ZADD z 1 toolong")).toMatch(/^-ERR value too large/);
  });

  it("ZRANGE forms, ZREVRANGE, ZRANGEBYSCORE, ZCOUNT, ZRANK, ZREVRANK", () => {
    const store = new KvStore();
    run(store, "ZADD z 3 c 1 a 2 b 2 bb -inf lo inf hi");
    const members = (reply: string) => reply.split("\r\n").filter((_, i) => i > 0 && i % 2 === 0);
    expect(members(run(store, "ZRANGE z 0 -1"))).toEqual(["lo", "a", "b", "bb", "c", "hi"]);
    expect(run(store, "ZRANGE z 0 0 WITHSCORES")).toBe("*2\r\n$2\r\nlo\r\n$4\r\n-inf\r\n");
    expect(members(run(store, "ZRANGE z 0 1 REV"))).toEqual(["hi", "c"]);
    expect(members(run(store, "ZREVRANGE z 1 2"))).toEqual(["c", "bb"]);
    expect(members(run(store, "ZRANGE z (1 2 BYSCORE"))).toEqual(["b", "bb"]);
    expect(members(run(store, "ZRANGE z 2 (1 BYSCORE REV"))).toEqual(["bb", "b"]);
    expect(members(run(store, "ZRANGEBYSCORE z -inf +inf LIMIT 2 3"))).toEqual(["b", "bb", "c"]);
    expect(run(store, "ZRANGEBYSCORE z 2 2 WITHSCORES")).toBe(
      "*4\r\n$1\r\nb\r\n$1\r\n2\r\n$2\r\nbb\r\n$1\r\n2\r\n",
    );
    expect(run(store, "ZRANGEBYSCORE z (2 (2")).toBe("*0\r\n");
    expect(run(store, "ZRANGEBYSCORE z x 2")).toBe("-ERR min or max is not a float\r\n");
    expect(run(store, "ZRANGE z 0 1 LIMIT 0 1")).toBe(
      "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX\r\n",
    );
    expect(run(store, "ZRANGE z 0 1 REV REV")).toBe("-ERR syntax error\r\n");
    expect(run(store, "ZRANGE z x 1")).toBe("-ERR value is not an integer or out of range\r\n");
    expect(run(store, "ZCOUNT z 2 +inf")).toBe(":4\r\n");
    expect(run(store, "ZCOUNT z (2 (3")).toBe(":0\r\n");
    expect(run(store, "ZCOUNT z -inf -inf")).toBe(":1\r\n");
    expect(run(store, "ZRANK z bb")).toBe(":3\r\n");
    expect(run(store, "ZREVRANK z bb")).toBe(":2\r\n");
    expect(run(store, "ZRANK z nope")).toBe("$-1\r\n");
    expect(run(store, "ZRANK nokey a")).toBe("$-1\r\n");
    expect(run(store, "ZRANGE nokey 0 -1")).toBe("*0\r\n");
  });

  it("ZPOPMIN and ZPOPMAX", () => {
    const store = new KvStore();
    run(store, "ZADD z 1 a 2 b 3 c 4 d");
    expect(run(store, "ZPOPMIN z")).toBe("*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    expect(run(store, "ZPOPMAX z 2")).toBe("*4\r\n$1\r\nd\r\n$1\r\n4\r\n$1\r\nc\r\n$1\r\n3\r\n");
    expect(run(store, "ZPOPMIN z 0")).toBe("*0\r\n");
    expect(run(store, "ZPOPMIN z -1")).toBe("-ERR value is out of range, must be positive\r\n");
    expect(run(store, "ZPOPMIN z 1 2")).toBe("-ERR syntax error\r\n");
    expect(run(store, "ZPOPMIN z 9")).toBe("*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    expect(run(store, "EXISTS z")).toBe(":0\r\n");
    expect(run(store, "ZPOPMAX z")).toBe("*0\r\n");
  });

  it("keeps (score, member) order over many members, matching a reference sort", () => {
    const store = new KvStore();
    const reference = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const member = `m${(i * 7919) % 211}`;
      const score = ((i * 31) % 17) - 8 + (i % 3) / 4;
      if (i % 5 === 4) {
        run(store, `ZREM z ${member}`);
        reference.delete(member);
      } else {
        run(store, `ZADD z ${score} ${member}`);
        reference.set(member, score);
      }
    }
    const expected = [...reference]
      .sort(([ma, sa], [mb, sb]) => sa - sb || (ma < mb ? -1 : ma > mb ? 1 : 0))
      .map(([member]) => member);
    const reply = run(store, "ZRANGE z 0 -1").split("\r\n");
    expect(reply.filter((_, i) => i > 0 && i % 2 === 0)).toEqual(expected);
    expect(run(store, "ZCARD z")).toBe(`:${expected.length}\r\n`);
    expect(run(store, `ZRANK z ${expected[10]}`)).toBe(":10\r\n");
  });
});

describe("KvStore server and connection commands", () => {
  it("PING ECHO SELECT QUIT HELLO CLIENT COMMAND CONFIG", () => {
    const store = new KvStore();
    expect(run(store, "PING")).toBe("+PONG\r\n");
    expect(run(store, "PING hi")).toBe("$2\r\nhi\r\n");
    expect(run(store, "PING a b")).toBe("-ERR wrong number of arguments for 'ping' command\r\n");
    expect(run(store, "ECHO x")).toBe("$1\r\nx\r\n");
    expect(run(store, "SELECT 0")).toBe("+OK\r\n");
    expect(run(store, "SELECT 3")).toBe("-ERR DB index is out of range\r\n");
    expect(run(store, "QUIT")).toBe("+OK\r\n");
    expect(run(store, "HELLO 3")).toBe("-NOPROTO this server does not support RESP3\r\n");
    expect(run(store, "CLIENT SETNAME x")).toBe("+OK\r\n");
    expect(run(store, "CLIENT GETNAME")).toBe("$-1\r\n");
    expect(run(store, "CLIENT ID")).toMatch(/^:\d+\r\n$/);
    expect(run(store, "CLIENT INFO")).toMatch(/^\$\d+\r\nid=/);
    expect(run(store, "COMMAND")).toMatch(/^\*\d+\r\n\*10\r\n/);
    expect(run(store, "COMMAND DOCS")).toMatch(/^\*\d+\r\n\$\d+\r\n/);
    expect(run(store, "COMMAND COUNT")).toMatch(/^:\d+\r\n$/);
    expect(run(store, "CONFIG GET save")).toBe("*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    expect(run(store, "CONFIG GET appendonly")).toBe("*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    expect(run(store, "CONFIG GET nope")).toBe("*0\r\n");
    expect(run(store, "CONFIG SET save x")).toBe(
      "-ERR CONFIG SET save is not supported by apus-smr: the replicas snapshot by --snapshot-every-bytes, never to an RDB file\r\n",
    );
    expect(run(store, "FOO a b")).toBe(
      "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n",
    );
    expect(store.execute([], context(0)).toString()).toBe("-ERR empty command\r\n");
  });

  it("INFO looks like Redis's, with the runtime's replication section", () => {
    const store = new KvStore();
    run(store, "SET a 1 EX 100");
    run(store, "SET b 1");
    const reply = store
      .execute([Buffer.from("INFO")], context(0, "role:master\r\nconnected_slaves:2"))
      .toString("latin1");
    const body = reply.slice(reply.indexOf("\r\n") + 2, -2);
    expect(Number(reply.slice(1, reply.indexOf("\r\n")))).toBe(body.length);
    expect(body.startsWith("# Server\r\nredis_version:7.0.0\r\n")).toBe(true);
    expect(body).toContain("\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:2\r\n");
    expect(body).toContain("# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n");
    const keyspaceOnly = run(store, "INFO keyspace");
    expect(keyspaceOnly).toBe("$44\r\n# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n\r\n");
  });

  it("commandKind classifies commands for the runtime", () => {
    expect(commandKind(Buffer.from("set"))).toBe("write");
    expect(commandKind(Buffer.from("GET"))).toBe("read");
    expect(commandKind(Buffer.from("Ping"))).toBe("connection");
    expect(commandKind(Buffer.from("nope"))).toBeUndefined();
  });
});

/** A random command over a small keyspace, so commands collide on keys and types. */
const commandArb = fc
  .tuple(
    fc.constantFrom(
      "SET",
      "GET",
      "DEL",
      "INCR",
      "APPEND",
      "EXPIRE",
      "PEXPIRE",
      "PERSIST",
      "HSET",
      "HDEL",
      "LPUSH",
      "RPOP",
      "SADD",
      "SREM",
      "SPOP",
      "SRANDMEMBER",
      "ZADD",
      "ZINCRBY",
      "ZREM",
      "ZPOPMIN",
      "ZPOPMAX",
      "ZRANGE",
      "ZRANGEBYSCORE",
      "GETSET",
      "MSET",
      "FLUSHDB",
      "SCAN",
    ),
    fc.constantFrom("a", "b", "c", "d", "e"),
    fc.constantFrom("1", "x", "0", "50", "-1"),
    fc.nat(200),
  )
  .map(([name, key, value, delta]) => {
    let args = [name, key, value, ...(name === "SET" ? ["PX", "100"] : [])];
    // Score and member both from `value` ("x" is not a valid score).
    if (name === "ZADD" || name === "ZINCRBY") args = [name, key, value, `m${value}`];
    if (name === "ZRANGE") args = [name, key, "0", value, "WITHSCORES"];
    if (name === "ZRANGEBYSCORE") args = [name, key, value, "+inf", "WITHSCORES"];
    return { args, delta };
  });

describe("KvStore determinism and snapshots", () => {
  it("two stores fed the same commands give identical replies and snapshots (property)", () => {
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 60 }), (commands) => {
        const one = new KvStore();
        const two = new KvStore();
        let now = 0;
        for (const { args, delta } of commands) {
          now += delta;
          const a = one.execute(
            args.map((w) => Buffer.from(w)),
            context(now),
          );
          const b = two.execute(
            args.map((w) => Buffer.from(w)),
            context(now),
          );
          expect(a.equals(b)).toBe(true);
          one.expireSweep(now, 2);
          two.expireSweep(now, 2);
        }
        expect(Buffer.from(one.snapshot()).equals(Buffer.from(two.snapshot()))).toBe(true);
        // A restored store behaves like the original from then on.
        const restored = KvStore.restore(one.snapshot());
        expect(Buffer.from(restored.snapshot()).equals(Buffer.from(one.snapshot()))).toBe(true);
        for (const { args } of commands) {
          now += 7;
          const a = one.execute(
            args.map((w) => Buffer.from(w)),
            context(now),
          );
          const b = restored.execute(
            args.map((w) => Buffer.from(w)),
            context(now),
          );
          expect(a.equals(b)).toBe(true);
        }
      }),
      { seed: 11, numRuns: 200 },
    );
  });

  it("snapshot round trip keeps every type, TTLs and the SCAN cursor order", () => {
    const store = new KvStore();
    run(store, "SET s v EX 100", 0);
    run(store, "HSET h f1 v1 f2 v2");
    run(store, "RPUSH l a b c");
    run(store, "SADD t x y");
    run(store, "ZADD z 2 b 1.5 a inf c -inf d");
    run(store, "SET gone v");
    run(store, "DEL gone");
    const restored = KvStore.restore(store.snapshot());
    expect(restored.keyCount).toBe(5);
    for (const line of [
      "GET s",
      "TTL s",
      "HGETALL h",
      "LRANGE l 0 -1",
      "SMEMBERS t",
      "ZRANGE z 0 -1 WITHSCORES",
      "ZRANK z b",
      "ZSCORE z a",
      "TYPE z",
      "SCAN 0 COUNT 2",
      "SCAN 5 COUNT 2",
    ]) {
      expect(run(restored, line), line).toBe(run(store, line));
    }
  });

  it("restore rejects corrupt, truncated and foreign bytes", () => {
    const store = new KvStore();
    run(store, "SET k v");
    const bytes = Buffer.from(store.snapshot());
    expect(() => KvStore.restore(bytes.subarray(0, bytes.length - 1))).toThrow(/corrupt/);
    const flipped = Buffer.from(bytes);
    flipped[20] = (flipped[20] ?? 0) ^ 1;
    expect(() => KvStore.restore(flipped)).toThrow(/checksum/);
    expect(() => KvStore.restore(new Uint8Array(3))).toThrow(/corrupt/);
    expect(() => new KvStore({ valueBytesMax: 0 })).toThrow(/valueBytesMax/);
  });

  it("reads version 1 snapshots (no zsets), refuses newer ones and checks zset order", () => {
    const withCrc = (body: Buffer): Buffer => {
      const out = Buffer.from(body);
      out.writeUInt32LE(crc32(out.subarray(0, out.length - 4)), out.length - 4);
      return out;
    };
    const store = new KvStore();
    run(store, "SADD s a b");
    const v1 = Buffer.from(store.snapshot());
    expect(v1.readUInt32LE(4)).toBe(3);
    v1.writeUInt32LE(1, 4);
    expect(run(KvStore.restore(withCrc(v1)), "SMEMBERS s")).toBe(run(store, "SMEMBERS s"));
    v1.writeUInt32LE(4, 4);
    expect(() => KvStore.restore(withCrc(v1))).toThrow(/version 4/);

    const zs = new KvStore();
    run(zs, "ZADD z 1 a 2 b");
    const bytes = Buffer.from(zs.snapshot());
    const at = bytes.lastIndexOf(Buffer.from(new Float64Array([1]).buffer));
    expect(at).toBeGreaterThan(0);
    bytes.writeDoubleLE(3, at);
    expect(() => KvStore.restore(withCrc(bytes))).toThrow(/zset out of order/);
    bytes.writeDoubleLE(Number.NaN, at);
    expect(() => KvStore.restore(withCrc(bytes))).toThrow(/bad zset score/);
  });
});
