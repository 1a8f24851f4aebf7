/**
 * String and keyspace commands where a byte-for-byte comparison with redis-server cannot say
 * enough: the store's own limits (--max-value-bytes, --max-reply-bytes, LCS's table), the key and
 * value positions the specs declare, the deterministic RANDOMKEY, OBJECT where the store cannot
 * know Redis's history, deep copies, and COPY/MOVE/SWAPDB across a fake `Databases` of two
 * keyspaces and with none at all.
 */
import { describe, expect, it } from "vitest";
import { copy, flushall, flushdb, move, randomkey, swapdb } from "../../src/app/kv-keys.ts";
import { Keyspace, KvHash, KvList, KvSet, KvZset } from "../../src/app/kv-keyspace.ts";
import { encodingOf, object } from "../../src/app/kv-object.ts";
import type { Databases, ExecContext, Handler } from "../../src/app/kv-shared.ts";
import {
  commandKeys,
  hasValueOver,
  KV_STORE_DEFAULTS,
  KvStore,
  type KvStoreOptions,
} from "../../src/app/kv-store.ts";
import { LCS_CELLS_MAX } from "../../src/app/kv-strings.ts";

const CONTEXT: ExecContext = { nowMs: 1_000, info: () => "" };
const bytes = (words: readonly string[]) => words.map((w) => Buffer.from(w, "latin1"));

function run(store: KvStore, line: string | readonly string[], nowMs = CONTEXT.nowMs, db = 0) {
  const words = typeof line === "string" ? line.split(" ") : line;
  return store.execute(bytes(words), { ...CONTEXT, nowMs }, db).toString("latin1");
}

function read(store: KvStore, line: string, db = 0): string {
  return store.executeRead(bytes(line.split(" ")), CONTEXT, db).toString("latin1");
}

function storeWith(options: Partial<KvStoreOptions>): KvStore {
  return new KvStore({ ...KV_STORE_DEFAULTS, ...options });
}

const keysOf = (line: string) => commandKeys(bytes(line.split(" "))).map((k) => k.toString());

describe("specs: keys and values", () => {
  it("every write names its keys, destinations included", () => {
    expect(keysOf("SETNX k v")).toEqual(["k"]);
    expect(keysOf("SETEX k 10 v")).toEqual(["k"]);
    expect(keysOf("PSETEX k 10 v")).toEqual(["k"]);
    expect(keysOf("MSETNX a 1 b 2")).toEqual(["a", "b"]);
    expect(keysOf("GETDEL k")).toEqual(["k"]);
    expect(keysOf("GETEX k EX 5")).toEqual(["k"]);
    expect(keysOf("SETRANGE k 0 v")).toEqual(["k"]);
    expect(keysOf("INCRBYFLOAT k 1.5")).toEqual(["k"]);
    expect(keysOf("RENAME a b")).toEqual(["a", "b"]);
    expect(keysOf("RENAMENX a b")).toEqual(["a", "b"]);
    expect(keysOf("COPY a b DB 1 REPLACE")).toEqual(["a", "b"]);
    expect(keysOf("MOVE a 1")).toEqual(["a"]);
    expect(keysOf("UNLINK a b c")).toEqual(["a", "b", "c"]);
    expect(keysOf("SWAPDB 0 1")).toEqual([]);
  });

  it("reads name theirs too", () => {
    expect(keysOf("GETRANGE k 0 1")).toEqual(["k"]);
    expect(keysOf("SUBSTR k 0 1")).toEqual(["k"]);
    expect(keysOf("LCS a b IDX")).toEqual(["a", "b"]);
    expect(keysOf("TOUCH a b")).toEqual(["a", "b"]);
    expect(keysOf("EXPIRETIME k")).toEqual(["k"]);
    expect(keysOf("PEXPIRETIME k")).toEqual(["k"]);
    expect(keysOf("OBJECT ENCODING k")).toEqual(["k"]);
    expect(keysOf("OBJECT encoding k")).toEqual(["k"]);
    expect(keysOf("OBJECT HELP")).toEqual([]);
    expect(keysOf("OBJECT FOO k")).toEqual([]);
    expect(keysOf("RANDOMKEY")).toEqual([]);
  });

  it("stored arguments are values, refused over --max-value-bytes before proposing", () => {
    const big = "x".repeat(11);
    const over = (line: string) => hasValueOver(bytes(line.split(" ")), 10);
    expect(over(`SETNX k ${big}`)).toBe(true);
    expect(over(`SETEX k 10 ${big}`)).toBe(true);
    expect(over(`PSETEX k 10 ${big}`)).toBe(true);
    expect(over(`MSETNX a 1 b ${big}`)).toBe(true);
    expect(over(`SETRANGE k 0 ${big}`)).toBe(true);
    expect(over(`SETRANGE k 0 ${"x".repeat(10)}`)).toBe(false);
    expect(over(`SETNX ${big} v`)).toBe(false); // a key is not a value
    expect(over(`RENAME ${big} b`)).toBe(false);
  });

  it("kinds: reads never change the keyspace (executeRead asserts it)", () => {
    const store = new KvStore();
    run(store, "MSET a hello b world");
    run(store, "SET t x PXAT 500"); // expired at 1000, not collected by a read
    expect(read(store, "GETRANGE a 1 3")).toBe("$3\r\nell\r\n");
    expect(read(store, "SUBSTR a 0 0")).toBe("$1\r\nh\r\n");
    expect(read(store, "LCS a b")).toBe("$1\r\no\r\n");
    expect(read(store, "TOUCH a b t")).toBe(":2\r\n");
    expect(read(store, "EXPIRETIME t")).toBe(":-2\r\n");
    expect(read(store, "OBJECT ENCODING a")).toBe("$6\r\nembstr\r\n");
    expect(read(store, "OBJECT ENCODING t")).toBe("$-1\r\n");
    expect(read(store, "RANDOMKEY")).not.toBe("$1\r\nt\r\n");
    expect(store.keyCount).toBe(3);
  });
});

describe("the store's limits", () => {
  it("SETRANGE past --max-value-bytes: value too large, nothing changes", () => {
    const store = storeWith({ valueBytesMax: 100 });
    const tooLarge = "-ERR value too large (limit 100 bytes, set by --max-value-bytes)\r\n";
    expect(run(store, "SETRANGE k 100 x")).toBe(tooLarge);
    expect(run(store, "EXISTS k")).toBe(":0\r\n");
    expect(run(store, "SETRANGE k 99 x")).toBe(":100\r\n");
    expect(run(store, "SETRANGE k 99 xy")).toBe(tooLarge);
    expect(run(store, "SETRANGE k 100 ")).toBe(":100\r\n"); // nothing to write: no limit
    expect(run(store, "STRLEN k")).toBe(":100\r\n");
    // Redis's own limit comes first, where Redis gives it.
    expect(run(store, "SETRANGE k 536870912 x")).toBe(
      "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n",
    );
  });

  it("SETRANGE between --max-value-bytes and 512 MB (the default limit)", () => {
    const store = new KvStore();
    expect(run(store, "SETRANGE k 100000000 x")).toBe(
      `-ERR value too large (limit ${KV_STORE_DEFAULTS.valueBytesMax} bytes, set by --max-value-bytes)\r\n`,
    );
    expect(run(store, "EXISTS k")).toBe(":0\r\n");
  });

  it("SETNX, SETEX, PSETEX, MSETNX refuse an oversized value and change nothing", () => {
    const store = storeWith({ valueBytesMax: 4 });
    const tooLarge = "-ERR value too large (limit 4 bytes, set by --max-value-bytes)\r\n";
    expect(run(store, "SETNX k 12345")).toBe(tooLarge);
    expect(run(store, "SETEX k 10 12345")).toBe(tooLarge);
    expect(run(store, "PSETEX k 10 12345")).toBe(tooLarge);
    expect(run(store, "MSETNX a 1 k 12345")).toBe(tooLarge);
    expect(run(store, "DBSIZE")).toBe(":0\r\n");
    // The expiry is checked first, as SET does.
    expect(run(store, "SETEX k 0 12345")).toBe("-ERR invalid expire time in 'setex' command\r\n");
  });

  it("INCRBYFLOAT whose text would pass --max-value-bytes changes nothing", () => {
    const store = storeWith({ valueBytesMax: 8 });
    expect(run(store, "INCRBYFLOAT k 1234567.5")).toBe(
      "-ERR value too large (limit 8 bytes, set by --max-value-bytes)\r\n",
    );
    expect(run(store, "EXISTS k")).toBe(":0\r\n");
    expect(run(store, "INCRBYFLOAT k 123456.5")).toBe("$8\r\n123456.5\r\n");
    expect(run(store, "INCRBYFLOAT k 1000000")).toBe(
      "-ERR value too large (limit 8 bytes, set by --max-value-bytes)\r\n",
    );
    expect(run(store, "GET k")).toBe("$8\r\n123456.5\r\n");
  });

  it("GETDEL, GETEX, GETRANGE refuse a reply over --max-reply-bytes and change nothing", () => {
    const store = storeWith({ replyBytesMax: 16 });
    run(store, "SET k 0123456789abcdef");
    run(store, "SET t v PXAT 99999999");
    const refused = (size: number) =>
      `-ERR reply too large (${size} bytes, limit 16 set by --max-reply-bytes)\r\n`;
    expect(run(store, "GETDEL k")).toBe(refused(23));
    expect(run(store, "GETEX k PERSIST")).toBe(refused(23));
    expect(run(store, "GETRANGE k 0 -1")).toBe(refused(23));
    expect(run(store, "GETRANGE k 0 3")).toBe("$4\r\n0123\r\n");
    expect(run(store, "EXISTS k")).toBe(":1\r\n");
    run(store, "SET t 0123456789abcdef KEEPTTL");
    expect(run(store, "GETEX t PERSIST")).toBe(refused(23));
    expect(run(store, "PEXPIRETIME t")).toBe(":99999999\r\n");
  });

  it("LCS refuses a table over LCS_CELLS_MAX before building it", () => {
    const store = new KvStore();
    const side = Math.ceil(Math.sqrt(LCS_CELLS_MAX)); // (side + 1)^2 > the limit
    run(store, ["MSET", "a", "x".repeat(side), "b", "y".repeat(side)]);
    expect(run(store, "LCS a b")).toBe(
      `-ERR LCS of ${side} and ${side} bytes needs a table of ${(side + 1) ** 2} cells; limit ${LCS_CELLS_MAX}\r\n`,
    );
    run(store, ["SET", "b", "y".repeat(side - 2)]);
    expect(run(store, "LCS a b LEN")).toBe(":0\r\n");
  });

  it("LCS IDX refuses its reply over --max-reply-bytes", () => {
    const store = storeWith({ replyBytesMax: 40 });
    run(store, "MSET a ohmytext b mynewtext");
    expect(run(store, "LCS a b LEN")).toBe(":6\r\n");
    expect(run(store, "LCS a b IDX")).toMatch(/^-ERR reply too large \(\d+ bytes, limit 40/);
  });
});

describe("values are the key's own", () => {
  it("COPY copies deeply: changing either copy leaves the other", () => {
    const store = new KvStore();
    run(store, "SET s hello");
    run(store, "COPY s s2");
    run(store, "SETRANGE s2 0 J"); // in place on s2's buffer
    expect(run(store, "GET s")).toBe("$5\r\nhello\r\n");
    expect(run(store, "GET s2")).toBe("$5\r\nJello\r\n");
  });

  it("cloned collections are new objects with the same contents and byte counts", () => {
    const keyspace = new Keyspace(KV_STORE_DEFAULTS);
    const list = new KvList();
    list.pushBack(Buffer.from("a"));
    const hash = new KvHash();
    hash.fields.set("f", Buffer.from("v"));
    const set = new KvSet();
    set.members.add("m");
    const zset = new KvZset();
    zset.set("z", 2);
    for (const [key, value] of [
      ["l", list],
      ["h", hash],
      ["s", set],
      ["z", zset],
    ] as const) {
      keyspace.insert(key, value);
      const reply = copy(keyspace, bytes(["COPY", key, `${key}2`]), 0, CONTEXT);
      expect(reply.toString()).toBe(":1\r\n");
      const copied = keyspace.entries.get(`${key}2`)!.value as typeof value;
      expect(copied).not.toBe(value);
      expect(copied.constructor).toBe(value.constructor);
      expect(copied.bytes).toBe(value.bytes);
    }
    expect((keyspace.entries.get("l2")!.value as KvList).at(0)).not.toBe(list.at(0));
    expect((keyspace.entries.get("h2")!.value as KvHash).fields.get("f")).not.toBe(
      hash.fields.get("f"),
    );
  });

  it("a snapshot under way holds the value as it was before SETRANGE wrote in place", () => {
    const store = new KvStore();
    for (let i = 0; i < 50; i++) run(store, `SET k${i} value${i}`);
    const before = store.snapshot();
    const job = store.beginSnapshot();
    run(store, "SETRANGE k49 0 XY"); // in place
    run(store, "SETRANGE k46 7 tail"); // grows: a new buffer
    run(store, "RENAME k48 moved");
    run(store, "COPY k47 k48");
    expect(Buffer.from(job.finish())).toEqual(Buffer.from(before));
    expect(run(store, "GET k49")).toBe("$7\r\nXYlue49\r\n");
  });
});

describe("RANDOMKEY", () => {
  it("picks the same key on every replica: a function of the store's state", () => {
    const a = new KvStore();
    const b = new KvStore();
    for (const store of [a, b]) {
      for (let i = 0; i < 200; i++) run(store, `SET key${i} v`, 1_000 + i);
    }
    const picks = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const pick = read(a, "RANDOMKEY");
      expect(read(b, "RANDOMKEY")).toBe(pick);
      expect(read(a, "RANDOMKEY")).toBe(pick); // the same until the store changes
      expect(run(a, "RANDOMKEY")).toBe(pick); // through the log too
      picks.add(pick);
      run(a, `SET extra${i} v`, 5_000 + i);
      run(b, `SET extra${i} v`, 5_000 + i);
    }
    expect(picks.size).toBeGreaterThan(20); // the state moves, so does the pick
    // A replica restored from a snapshot picks alike.
    const restored = KvStore.restore(a.snapshot());
    expect(read(restored, "RANDOMKEY")).toBe(read(a, "RANDOMKEY"));
  });

  it("never answers an expired key, and answers nil when only expired keys are left", () => {
    const store = new KvStore();
    for (let i = 0; i < 100; i++) run(store, `SET gone${i} v PXAT 2000`);
    run(store, "SET live v");
    for (let now = 2_001; now < 2_060; now++) {
      expect(run(store, "RANDOMKEY", now)).toBe("$4\r\nlive\r\n");
    }
    run(store, "DEL live");
    expect(read(store, "RANDOMKEY")).toBe("$-1\r\n");
    expect(run(store, "RANDOMKEY", 3_000)).toBe("$-1\r\n");
  });

  it("reaches every key as the store changes", () => {
    const keyspace = new Keyspace(KV_STORE_DEFAULTS);
    for (let i = 0; i < 8; i++) keyspace.insert(`k${i}`, Buffer.from("v"));
    const seen = new Set<string>();
    for (let clock = 0; clock < 400; clock++) {
      keyspace.advanceClock(clock);
      seen.add(randomkey(keyspace, bytes(["RANDOMKEY"]), clock, CONTEXT).toString());
    }
    expect(seen.size).toBe(8);
  });
});

describe("OBJECT where the store cannot know Redis's history", () => {
  it("answers from the value as it is now (Redis never converts back)", () => {
    const store = new KvStore();
    run(store, ["HSET", "h", "f", "v".repeat(65)]);
    expect(run(store, "OBJECT ENCODING h")).toBe("$9\r\nhashtable\r\n");
    run(store, "HSET h f short");
    // Redis: still "hashtable". We answer from the contents.
    expect(run(store, "OBJECT ENCODING h")).toBe("$8\r\nlistpack\r\n");
    run(store, "SADD s 1 x");
    expect(run(store, "OBJECT ENCODING s")).toBe("$9\r\nhashtable\r\n");
    run(store, "SREM s x");
    expect(run(store, "OBJECT ENCODING s")).toBe("$6\r\nintset\r\n"); // Redis: hashtable
  });

  it("strings are judged by their text, however they were made", () => {
    const store = new KvStore();
    run(store, "APPEND a 12");
    run(store, "APPEND a 3");
    expect(run(store, "OBJECT ENCODING a")).toBe("$3\r\nint\r\n"); // Redis: raw
    run(store, "INCRBYFLOAT f 3");
    expect(run(store, "OBJECT ENCODING f")).toBe("$3\r\nint\r\n"); // Redis: embstr
    expect(run(store, "OBJECT REFCOUNT f")).toBe(":2147483647\r\n"); // Redis: 1
    run(store, "SETRANGE r 0 abc");
    expect(run(store, "OBJECT ENCODING r")).toBe("$6\r\nembstr\r\n"); // Redis: raw
  });

  it("IDLETIME is always 0: the store keeps no access clock", () => {
    const store = new KvStore();
    run(store, "SET k v", 1_000);
    expect(run(store, "OBJECT IDLETIME k", 1_000_000)).toBe(":0\r\n");
  });

  it("encodingOf covers every type", () => {
    expect(encodingOf(Buffer.from("12"))).toBe("int");
    expect(encodingOf(new KvList())).toBe("quicklist");
    expect(encodingOf(new KvHash())).toBe("listpack");
    expect(encodingOf(new KvSet())).toBe("intset");
    expect(encodingOf(new KvZset())).toBe("listpack");
    const zset = new KvZset();
    for (let i = 0; i < 129; i++) zset.set(`m${i}`, i);
    expect(encodingOf(zset)).toBe("skiplist");
  });

  it("its errors for every subcommand's arity", () => {
    const keyspace = new Keyspace(KV_STORE_DEFAULTS);
    const call = (line: string) => object(keyspace, bytes(line.split(" ")), 0, CONTEXT).toString();
    for (const sub of ["encoding", "refcount", "idletime", "freq"]) {
      expect(call(`OBJECT ${sub.toUpperCase()}`)).toBe(
        `-ERR wrong number of arguments for 'object|${sub}' command\r\n`,
      );
    }
    expect(call(`OBJECT ${"x".repeat(200)}`)).toBe(
      `-ERR unknown subcommand '${"x".repeat(128)}'. Try OBJECT HELP.\r\n`,
    );
  });
});

/** Two keyspaces behind the `Databases` interface, as a handler sees them from database 0. */
function twoDatabases(): { dbs: Keyspace[]; view: (current: number) => ExecContext } {
  const dbs = [new Keyspace(KV_STORE_DEFAULTS), new Keyspace(KV_STORE_DEFAULTS)];
  const view = (current: number): ExecContext => {
    const databases: Databases = {
      count: 2,
      current,
      get: (index) => dbs[index]!,
      swap: (a, b) => {
        const first = dbs[a]!;
        dbs[a] = dbs[b]!;
        dbs[b] = first;
      },
    };
    return { ...CONTEXT, databases };
  };
  return { dbs, view };
}

function call(handler: Handler, keyspace: Keyspace, line: string, context: ExecContext): string {
  return handler(keyspace, bytes(line.split(" ")), CONTEXT.nowMs, context).toString("latin1");
}

describe("across databases", () => {
  it("COPY … DB copies into the other keyspace, TTL and all; REPLACE replaces there", () => {
    const { dbs, view } = twoDatabases();
    const [db0, db1] = dbs as [Keyspace, Keyspace];
    db0.insert("k", Buffer.from("zero"), 99_999);
    db1.insert("other", Buffer.from("one"));
    expect(call(copy, db0, "COPY k k DB 1", view(0))).toBe(":1\r\n");
    expect(db1.entries.get("k")!.value.toString()).toBe("zero");
    expect(db1.entries.get("k")!.expiresAtMs).toBe(99_999);
    expect(db1.volatile.has("k")).toBe(true);
    expect(db1.entries.get("k")!.value).not.toBe(db0.entries.get("k")!.value);
    expect(call(copy, db0, "COPY k other DB 1", view(0))).toBe(":0\r\n");
    expect(call(copy, db0, "COPY k other DB 1 REPLACE", view(0))).toBe(":1\r\n");
    expect(db1.entries.get("other")!.value.toString()).toBe("zero");
    expect(call(copy, db0, "COPY k k DB 0", view(0))).toBe(
      "-ERR source and destination objects are the same\r\n",
    );
    expect(call(copy, db0, "COPY k k DB 2", view(0))).toBe("-ERR DB index is out of range\r\n");
    // From database 1, DB 1 is "the same".
    expect(call(copy, db1, "COPY k k DB 1", view(1))).toBe(
      "-ERR source and destination objects are the same\r\n",
    );
  });

  it("MOVE moves the entry (a new one there), unless the key exists there", () => {
    const { dbs, view } = twoDatabases();
    const [db0, db1] = dbs as [Keyspace, Keyspace];
    db0.insert("k", Buffer.from("v"), 99_999);
    db0.insert("both", Buffer.from("0"));
    db1.insert("both", Buffer.from("1"));
    expect(call(move, db0, "MOVE k 1", view(0))).toBe(":1\r\n");
    expect(db0.entries.has("k")).toBe(false);
    expect(db0.volatile.has("k")).toBe(false);
    expect(db1.entries.get("k")!.expiresAtMs).toBe(99_999);
    expect(db1.volatile.has("k")).toBe(true);
    expect(call(move, db0, "MOVE both 1", view(0))).toBe(":0\r\n");
    expect(call(move, db0, "MOVE missing 1", view(0))).toBe(":0\r\n");
    expect(call(move, db1, "MOVE k 1", view(1))).toBe(
      "-ERR source and destination objects are the same\r\n",
    );
    expect(call(move, db1, "MOVE k 0", view(1))).toBe(":1\r\n");
    expect(db0.entries.has("k")).toBe(true);
    expect(call(move, db0, "MOVE k 2", view(0))).toBe("-ERR DB index is out of range\r\n");
  });

  it("SWAPDB asks the databases to swap; FLUSHALL empties both, FLUSHDB its own", () => {
    const { dbs, view } = twoDatabases();
    const [db0, db1] = dbs as [Keyspace, Keyspace];
    db0.insert("zero", Buffer.from("0"));
    db1.insert("one", Buffer.from("1"));
    expect(call(swapdb, db0, "SWAPDB 0 1", view(0))).toBe("+OK\r\n");
    expect(dbs[0]).toBe(db1);
    expect(dbs[1]).toBe(db0);
    expect(call(swapdb, db0, "SWAPDB 1 1", view(0))).toBe("+OK\r\n");
    expect(call(swapdb, db0, "SWAPDB 0 2", view(0))).toBe("-ERR DB index is out of range\r\n");
    expect(call(flushdb, dbs[0]!, "FLUSHDB", view(0))).toBe("+OK\r\n");
    expect(dbs[0]!.entries.size).toBe(0);
    expect(dbs[1]!.entries.size).toBe(1);
    expect(call(flushall, dbs[0]!, "FLUSHALL", view(0))).toBe("+OK\r\n");
    expect(dbs[1]!.entries.size).toBe(0);
  });

  it("with no databases named, the one keyspace is database 0 of one", () => {
    const keyspace = new Keyspace(KV_STORE_DEFAULTS);
    keyspace.insert("k", Buffer.from("v"));
    const out = "-ERR DB index is out of range\r\n";
    expect(call(copy, keyspace, "COPY k k2 DB 1", CONTEXT)).toBe(out);
    expect(call(copy, keyspace, "COPY k k2 DB 0", CONTEXT)).toBe(":1\r\n");
    expect(call(move, keyspace, "MOVE k 1", CONTEXT)).toBe(out);
    expect(call(move, keyspace, "MOVE k 0", CONTEXT)).toBe(
      "-ERR source and destination objects are the same\r\n",
    );
    expect(call(swapdb, keyspace, "SWAPDB 0 1", CONTEXT)).toBe(out);
    expect(call(swapdb, keyspace, "SWAPDB 0 0", CONTEXT)).toBe("+OK\r\n");
    expect(call(flushall, keyspace, "FLUSHALL", CONTEXT)).toBe("+OK\r\n");
    expect(keyspace.entries.size).toBe(0);
  });

  it("through the store: MOVE and COPY reach database 1, SWAPDB trades them", () => {
    const store = new KvStore();
    run(store, "SET k v");
    expect(run(store, "MOVE k 1")).toBe(":1\r\n");
    expect(run(store, "GET k", CONTEXT.nowMs, 1)).toBe("$1\r\nv\r\n");
    expect(run(store, "COPY k k2 DB 0", CONTEXT.nowMs, 1)).toBe(":1\r\n");
    expect(run(store, "GET k2")).toBe("$1\r\nv\r\n");
    expect(run(store, "SWAPDB 0 1")).toBe("+OK\r\n");
    expect(run(store, "EXISTS k k2")).toBe(":1\r\n");
    expect(run(store, "EXISTS k2", CONTEXT.nowMs, 1)).toBe(":1\r\n");
    // A snapshot of both databases restores both.
    const restored = KvStore.restore(store.snapshot());
    expect(run(restored, "GET k")).toBe("$1\r\nv\r\n");
    expect(run(restored, "GET k2", CONTEXT.nowMs, 1)).toBe("$1\r\nv\r\n");
    expect(run(store, "FLUSHALL")).toBe("+OK\r\n");
    expect(run(store, "DBSIZE", CONTEXT.nowMs, 1)).toBe(":0\r\n");
  });
});
