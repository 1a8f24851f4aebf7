/**
 * List and hash commands where a byte-for-byte comparison with redis-server cannot say enough:
 * the list's own bookkeeping, the helpers the blocking commands serve with, the reply and value
 * limits, the deterministic HRANDFIELD and HSCAN, and HINCRBYFLOAT's long double arithmetic
 * (also checked here for machines without redis-server).
 */
import { describe, expect, it } from "vitest";
import { Keyspace } from "../../src/app/kv-keyspace.ts";
import { KvList, LIST_ITEM_OVERHEAD } from "../../src/app/kv-list.ts";
import { llen, lrange, moveElement, mpopFirst, popFirst, rpush } from "../../src/app/kv-lists.ts";
import type { Handler } from "../../src/app/kv-shared.ts";
import {
  commandKeys,
  type ExecContext,
  hasValueOver,
  KV_STORE_DEFAULTS,
  KvStore,
  type KvStoreOptions,
} from "../../src/app/kv-store.ts";
import { addLongDouble, formatLongDouble, parseLongDouble } from "../../src/app/long-double.ts";

const CONTEXT: ExecContext = { nowMs: 1_000, info: () => "" };
const WRONGTYPE = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

const bytes = (words: readonly string[]) => words.map((w) => Buffer.from(w, "latin1"));

function run(store: KvStore, line: string | readonly string[], nowMs = CONTEXT.nowMs): string {
  const words = typeof line === "string" ? line.split(" ") : line;
  return store.execute(bytes(words), { ...CONTEXT, nowMs }).toString("latin1");
}

function read(store: KvStore, line: string): string {
  return store.executeRead(bytes(line.split(" ")), CONTEXT).toString("latin1");
}

/** A RESP reply's bulk strings, in order (nested arrays flattened; nulls and integers skipped). */
function bulks(reply: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < reply.length) {
    const end = reply.indexOf("\r\n", i);
    const line = reply.slice(i, end);
    i = end + 2;
    if (line[0] === "$" && line !== "$-1") {
      const n = Number(line.slice(1));
      out.push(reply.slice(i, i + n));
      i += n + 2;
    }
  }
  return out;
}

function tooLarge(size: number | bigint, limit: number): string {
  return `-ERR reply too large (${size} bytes, limit ${limit} set by --max-reply-bytes)\r\n`;
}

function store(options: Partial<KvStoreOptions> = {}): KvStore {
  return new KvStore({ ...KV_STORE_DEFAULTS, ...options });
}

/** A small seeded generator for the randomized list checks (reproducible failures). */
function seeded(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return Math.floor((state / 2 ** 32) * n);
  };
}

function contents(list: KvList): string[] {
  return Array.from({ length: list.length }, (_, i) => list.at(i).toString("latin1"));
}

function expectedBytes(items: readonly string[]): number {
  return items.reduce((sum, item) => sum + item.length + LIST_ITEM_OVERHEAD, 0);
}

describe("KvList keeps its order, length and byte count through every change", () => {
  it("matches an array under random inserts, sets, removals, LREM and trims", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = seeded(seed);
      const list = new KvList();
      const model: string[] = [];
      for (let step = 0; step < 600; step++) {
        const item = "x".repeat(random(4)) + String(random(5));
        const op = random(8);
        if (op === 0 || model.length === 0) {
          const at = random(model.length + 1);
          list.insert(at, Buffer.from(item));
          model.splice(at, 0, item);
        } else if (op === 1) {
          list.pushFront(Buffer.from(item));
          model.unshift(item);
        } else if (op === 2) {
          list.pushBack(Buffer.from(item));
          model.push(item);
        } else if (op === 3) {
          const at = random(model.length);
          list.set(at, Buffer.from(item));
          model[at] = item;
        } else if (op === 4) {
          const at = random(model.length);
          expect(list.removeAt(at).toString()).toBe(model.splice(at, 1)[0]);
        } else if (op === 5) {
          const count = random(3);
          const fromBack = random(2) === 1;
          const target = model[random(model.length)]!;
          let expected = 0;
          const order = fromBack ? [...model.keys()].reverse() : [...model.keys()];
          const drop = new Set<number>();
          for (const i of order) {
            if (model[i] === target && (count === 0 || expected < count)) {
              drop.add(i);
              expected++;
            }
          }
          expect(list.removeEqual(Buffer.from(target), count, fromBack)).toBe(expected);
          model.splice(0, model.length, ...model.filter((_, i) => !drop.has(i)));
        } else if (op === 6 && random(4) === 0) {
          const start = random(model.length + 1);
          const count = random(model.length - start + 1);
          list.trim(start, count);
          model.splice(0, model.length, ...model.slice(start, start + count));
        } else if (model.length > 0) {
          expect(list.popFront().toString()).toBe(model.shift());
        }
        expect(list.length).toBe(model.length);
      }
      expect(contents(list)).toEqual(model);
      expect(list.bytes).toBe(expectedBytes(model));
    }
  });

  it("gives back its slots once mostly empty", () => {
    const list = new KvList();
    for (let i = 0; i < 10_000; i++) list.pushBack(Buffer.from(String(i)));
    list.trim(9_990, 10);
    expect(contents(list)).toEqual(Array.from({ length: 10 }, (_, i) => String(9_990 + i)));
    // The ring is private: its capacity shows through a resize being cheap and order kept.
    for (let i = 0; i < 10; i++) list.popBack();
    expect(list.length).toBe(0);
    expect(list.bytes).toBe(0);
    list.pushFront(Buffer.from("a"));
    list.insert(1, Buffer.from("b"));
    expect(contents(list)).toEqual(["a", "b"]);
  });
});

describe("the serving steps the blocking commands call", () => {
  const b = (text: string) => Buffer.from(text, "latin1");
  const NOW = 1_000;

  /** A bare keyspace and a runner of this module's handlers on it. */
  function keyspace(): { ks: Keyspace; run: (line: string) => string } {
    const ks = new Keyspace(KV_STORE_DEFAULTS);
    ks.advanceClock(NOW);
    const handlers: Record<string, Handler> = { RPUSH: rpush, LRANGE: lrange, LLEN: llen };
    return {
      ks,
      run: (line) => {
        const args = bytes(line.split(" "));
        return handlers[line.split(" ")[0]!]!(ks, args, NOW, CONTEXT).toString("latin1");
      },
    };
  }

  it("popFirst pops from the first list with items, or says there is nothing", () => {
    const { ks, run } = keyspace();
    expect(popFirst(ks, [b("a"), b("b")], true, NOW)).toBeUndefined();
    run("RPUSH b x y");
    expect(popFirst(ks, [b("a"), b("b")], true, NOW)?.toString()).toBe(
      "*2\r\n$1\r\nb\r\n$1\r\nx\r\n",
    );
    expect(popFirst(ks, [b("b")], false, NOW)?.toString()).toBe("*2\r\n$1\r\nb\r\n$1\r\ny\r\n");
    expect(ks.entries.has("b")).toBe(false);
    ks.insert("a", b("v"));
    run("RPUSH c z");
    // A key of another type before the first list: WRONGTYPE, as BLPOP answers; nothing popped.
    expect(popFirst(ks, [b("a"), b("c")], true, NOW)?.toString()).toBe(WRONGTYPE);
    expect(popFirst(ks, [b("c"), b("a")], true, NOW)?.toString()).toBe(
      "*2\r\n$1\r\nc\r\n$1\r\nz\r\n",
    );
  });

  it("mpopFirst pops up to count items as LMPOP replies", () => {
    const { ks, run } = keyspace();
    expect(mpopFirst(ks, [b("m")], true, 2, NOW)).toBeUndefined();
    run("RPUSH m a b c");
    expect(mpopFirst(ks, [b("n"), b("m")], false, 2, NOW)?.toString()).toBe(
      "*2\r\n$1\r\nm\r\n*2\r\n$1\r\nc\r\n$1\r\nb\r\n",
    );
    expect(mpopFirst(ks, [b("m")], true, 5, NOW)?.toString()).toBe(
      "*2\r\n$1\r\nm\r\n*1\r\n$1\r\na\r\n",
    );
    expect(ks.entries.has("m")).toBe(false);
  });

  it("moveElement moves with LMOVE's semantics, refusing a wrong type anywhere", () => {
    const { ks, run } = keyspace();
    expect(moveElement(ks, b("src"), b("dst"), true, false, NOW)).toBeUndefined();
    expect(ks.entries.has("dst")).toBe(false);
    run("RPUSH src a b");
    ks.insert("str", b("v"));
    expect(moveElement(ks, b("src"), b("str"), true, true, NOW)?.toString()).toBe(WRONGTYPE);
    expect(run("LRANGE src 0 -1")).toBe("*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    expect(moveElement(ks, b("str"), b("src"), true, true, NOW)?.toString()).toBe(WRONGTYPE);
    expect(moveElement(ks, b("src"), b("dst"), true, false, NOW)?.toString()).toBe("$1\r\na\r\n");
    expect(moveElement(ks, b("src"), b("src"), false, true, NOW)?.toString()).toBe("$1\r\nb\r\n");
    expect(moveElement(ks, b("src"), b("dst"), false, true, NOW)?.toString()).toBe("$1\r\nb\r\n");
    expect(ks.entries.has("src")).toBe(false);
    expect(run("LRANGE dst 0 -1")).toBe("*2\r\n$1\r\nb\r\n$1\r\na\r\n");
  });

  it("an expired source is nothing to serve", () => {
    const { ks, run } = keyspace();
    run("RPUSH src a");
    ks.setExpiry("src", ks.entries.get("src")!, NOW + 10);
    expect(moveElement(ks, b("src"), b("dst"), true, true, NOW + 11)).toBeUndefined();
    expect(popFirst(ks, [b("src")], true, NOW + 11)).toBeUndefined();
    expect(ks.entries.size).toBe(0);
  });
});

describe("the command table's keys and values", () => {
  it("names every key, destinations included", () => {
    const keys = (line: string) => commandKeys(bytes(line.split(" "))).map((k) => k.toString());
    expect(keys("LMOVE a b LEFT RIGHT")).toEqual(["a", "b"]);
    expect(keys("RPOPLPUSH a b")).toEqual(["a", "b"]);
    expect(keys("LMPOP 2 a b LEFT COUNT 3")).toEqual(["a", "b"]);
    expect(keys("LMPOP 3 a b LEFT")).toEqual([]); // malformed: the handler answers
    expect(keys("LMPOP x a LEFT")).toEqual([]);
    expect(keys("LINSERT l BEFORE p v")).toEqual(["l"]);
    expect(keys("HSETNX h f v")).toEqual(["h"]);
    expect(keys("HSCAN h 0 MATCH *")).toEqual(["h"]);
  });

  it("declares the stored values, so the client port refuses them before proposing", () => {
    const over = (words: string[]) => hasValueOver(bytes(words), 3);
    expect(over(["LSET", "l", "0", "long"])).toBe(true);
    expect(over(["LSET", "l", "1234", "v"])).toBe(false);
    expect(over(["LINSERT", "l", "BEFORE", "longpivot", "v"])).toBe(false);
    expect(over(["LINSERT", "l", "BEFORE", "p", "long"])).toBe(true);
    expect(over(["LPUSHX", "l", "a", "long"])).toBe(true);
    expect(over(["RPUSHX", "l", "a"])).toBe(false);
    expect(over(["HSETNX", "h", "longfield", "v"])).toBe(false);
    expect(over(["HSETNX", "h", "f", "long"])).toBe(true);
  });

  it("refuses an oversized value in the handler too, changing nothing", () => {
    const s = store({ valueBytesMax: 3 });
    const refused = "-ERR value too large (limit 3 bytes, set by --max-value-bytes)\r\n";
    run(s, "RPUSH l a b");
    expect(run(s, "LSET l 0 long")).toBe(refused);
    expect(run(s, "LINSERT l BEFORE a long")).toBe(refused);
    expect(run(s, "LPUSHX l long")).toBe(refused);
    expect(run(s, "HSETNX h f long")).toBe(refused);
    expect(run(s, "LRANGE l 0 -1")).toBe("*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    expect(run(s, "EXISTS h")).toBe(":0\r\n");
    // A computed number is a stored value as well.
    expect(run(s, "HINCRBY h n 999")).toBe(":999\r\n");
    expect(run(s, "HINCRBY h n 1")).toBe(refused);
    expect(run(s, "HINCRBYFLOAT h x 1.25")).toBe(refused);
    expect(run(s, "HMGET h n x")).toBe("*2\r\n$3\r\n999\r\n$-1\r\n");
  });

  it("serves its read commands outside the log without changing the keyspace", () => {
    const s = store();
    run(s, "RPUSH l a b a");
    run(s, "HSET h f v g w");
    run(s, "PEXPIRE l 5");
    run(s, "PEXPIRE h 5");
    run(s, "PING", 2_000); // the log's clock passes both TTLs; nothing collected them yet
    for (const line of [
      "LINDEX l 0",
      "LPOS l a COUNT 0",
      "HKEYS h",
      "HVALS h",
      "HMGET h f",
      "HSTRLEN h f",
      "HRANDFIELD h",
      "HRANDFIELD h -3",
      "HSCAN h 0",
    ]) {
      expect(read(s, line)).toMatch(
        /^(\*0\r\n|\$-1\r\n|:0\r\n|\*1\r\n\$-1\r\n|\*2\r\n\$1\r\n0\r\n\*0\r\n)$/,
      );
    }
    expect(s.keyCount).toBe(2);
  });
});

describe("replies built from stored data are totalled and refused over the limit", () => {
  const limit = 40;
  function populated(): KvStore {
    const s = store({ replyBytesMax: limit });
    run(s, ["RPUSH", "l", "a".repeat(20), "b".repeat(20), "c"]);
    run(s, ["HSET", "h", "f1", "v".repeat(20), "f2", "w".repeat(20)]);
    return s;
  }

  it("refuses list replies and changes nothing", () => {
    const s = populated();
    expect(run(s, "LINDEX l 0")).toBe("$20\r\naaaaaaaaaaaaaaaaaaaa\r\n");
    expect(run(s, "LMPOP 1 l LEFT COUNT 2")).toBe(tooLarge(4 + 7 + 4 + 2 * 27, limit));
    expect(run(s, "LMOVE l l LEFT LEFT")).toBe("$20\r\naaaaaaaaaaaaaaaaaaaa\r\n");
    expect(run(s, "LPOP l 2")).toBe(tooLarge(4 + 2 * 27, limit));
    expect(run(s, "LLEN l")).toBe(":3\r\n");
    const small = store({ replyBytesMax: 20 });
    run(small, ["RPUSH", "l", "a".repeat(20), "x", "x", "x", "x", "x", "x"]);
    expect(run(small, "LINDEX l 0")).toBe(tooLarge(27, 20));
    expect(run(small, "LMOVE l m LEFT LEFT")).toBe(tooLarge(27, 20));
    expect(run(small, "RPOPLPUSH l l")).toBe("$1\r\nx\r\n");
    expect(run(small, "LPOS l x COUNT 0")).toBe(tooLarge(4 + 6 * 4, 20));
    expect(run(small, "LPOS l x COUNT 4")).toBe("*4\r\n:0\r\n:2\r\n:3\r\n:4\r\n");
    expect(run(small, "EXISTS m")).toBe(":0\r\n");
    expect(run(small, "LLEN l")).toBe(":7\r\n");
  });

  it("refuses hash replies", () => {
    const s = populated();
    expect(run(s, "HKEYS h")).toBe("*2\r\n$2\r\nf1\r\n$2\r\nf2\r\n");
    expect(run(s, "HVALS h")).toBe(tooLarge(4 + 2 * 27, limit));
    expect(run(s, "HMGET h f1 nope f2")).toBe(tooLarge(4 + 27 + 5 + 27, limit));
    expect(run(s, "HMGET h nope nope")).toBe("*2\r\n$-1\r\n$-1\r\n");
    expect(run(s, "HRANDFIELD h 2 WITHVALUES")).toBe(tooLarge(4 + 2 * 8 + 2 * 27, limit));
    expect(run(s, "HSCAN h 0")).toBe(tooLarge(4 + 7 + 4 + 2 * 8 + 2 * 27, limit));
    // A huge negative count is sized without being built, every digit exact.
    expect(run(s, "HRANDFIELD h -9223372036854775807")).toBe(
      tooLarge(22n + 9223372036854775807n * 8n, limit),
    );
    expect(run(s, "HRANDFIELD h -4611686018427387903 WITHVALUES")).toBe(
      tooLarge(22n + 4611686018427387903n * (8n + 27n), limit),
    );
    expect(run(s, "HRANDFIELD h -5")).toBe(tooLarge(4 + 5 * 8, limit));
    expect(run(s, "HRANDFIELD h -4")).toMatch(/^\*4\r\n/);
  });
});

describe("HRANDFIELD picks deterministically", () => {
  function hashOf(n: number): KvStore {
    const s = store();
    const words = ["HSET", "h"];
    for (let i = 0; i < n; i++) words.push(`f${i}`, `v${i}`);
    run(s, words);
    return s;
  }

  it("answers the same on every replica, and after a snapshot is restored", () => {
    const a = hashOf(50);
    const b = hashOf(50);
    const c = KvStore.restore(a.snapshot());
    for (const line of ["HRANDFIELD h", "HRANDFIELD h 7", "HRANDFIELD h -9 WITHVALUES"]) {
      expect(run(b, line)).toBe(run(a, line));
      expect(run(c, line)).toBe(run(a, line));
      expect(read(a, line)).toBe(run(a, line));
    }
  });

  it("gives distinct fields for a positive count, and spreads a negative count evenly", () => {
    const s = hashOf(20);
    const picked = bulks(run(s, "HRANDFIELD h 10"));
    expect(picked).toHaveLength(10);
    expect(new Set(picked).size).toBe(10);
    expect(picked).not.toEqual(Array.from({ length: 10 }, (_, i) => `f${i}`));
    const withValues = bulks(run(s, "HRANDFIELD h 5 WITHVALUES"));
    for (let i = 0; i < 10; i += 2) expect(withValues[i + 1]).toBe(`v${withValues[i]!.slice(1)}`);
    const repeated = bulks(run(s, "HRANDFIELD h -50"));
    expect(repeated).toHaveLength(50);
    const counts = new Map<string, number>();
    for (const field of repeated) counts.set(field, (counts.get(field) ?? 0) + 1);
    expect(counts.size).toBe(20);
    for (const count of counts.values()) expect(count === 2 || count === 3).toBe(true);
    // count >= size: the whole hash in insertion order, as Redis.
    expect(bulks(run(s, "HRANDFIELD h 20"))).toEqual(Array.from({ length: 20 }, (_, i) => `f${i}`));
  });

  it("changes its pick as the log moves on", () => {
    const s = hashOf(1000);
    const picks = new Set<string>();
    for (let t = 0; t < 20; t++) picks.add(run(s, "HRANDFIELD h", 2_000 + t));
    expect(picks.size).toBeGreaterThan(10);
  });
});

describe("HSCAN over a large hash", () => {
  /** Every field an iteration returns, calling `between` after each call. */
  function fullScan(s: KvStore, extra = "", between?: (call: number) => void): string[] {
    const seen: string[] = [];
    let cursor = "0";
    for (let call = 0; call < 10_000; call++) {
      const reply = run(s, `HSCAN big ${cursor}${extra}`);
      const [next, ...pairs] = bulks(reply);
      for (let i = 0; i < pairs.length; i += 2) seen.push(pairs[i]!);
      cursor = next!;
      if (cursor === "0") return seen;
      between?.(call);
    }
    throw new Error("HSCAN did not finish");
  }

  function big(n: number): KvStore {
    const s = store();
    for (let start = 0; start < n; start += 500) {
      const words = ["HSET", "big"];
      for (let i = start; i < Math.min(n, start + 500); i++) words.push(`f${i}`, `${i}`);
      run(s, words);
    }
    return s;
  }

  it("returns every field once when nothing changes, COUNT fields a call", () => {
    const s = big(1000);
    const first = bulks(run(s, "HSCAN big 0 COUNT 30"));
    expect(first).toHaveLength(1 + 2 * 30);
    expect(first[1]).toBe("f0");
    const seen = fullScan(s, " COUNT 30");
    expect(seen).toEqual(Array.from({ length: 1000 }, (_, i) => `f${i}`));
  });

  it("takes larger steps on a hash too large for COUNT's to finish in HSCAN_CALLS_MAX calls", () => {
    const s = big(6400);
    let calls = 0;
    fullScan(s, " COUNT 1", () => calls++);
    expect(calls).toBeLessThanOrEqual(64);
  });

  it("filters with MATCH, examined fields counting towards COUNT", () => {
    const s = big(300);
    const seen = fullScan(s, " MATCH f1* COUNT 50");
    expect(seen).toEqual(
      Array.from({ length: 300 }, (_, i) => `f${i}`).filter((f) => f.startsWith("f1")),
    );
  });

  it("misses no field present throughout while others are deleted or added", () => {
    const s = big(1000);
    const random = seeded(7);
    const deleted = new Set<string>();
    const seen = fullScan(s, " COUNT 25", (call) => {
      // Delete fields anywhere (before and after the cursor), re-add some at the end.
      for (let k = 0; k < 5; k++) {
        const field = `f${random(1000)}`;
        if (run(s, `HDEL big ${field}`) === ":1\r\n") deleted.add(field);
      }
      run(s, `HSET big new${call} x`);
    });
    const seenSet = new Set(seen);
    for (let i = 0; i < 1000; i++) {
      if (!deleted.has(`f${i}`)) expect(seenSet.has(`f${i}`)).toBe(true);
    }
  });

  it("starts again when the field it resumes at is gone, returning fields twice but none missed", () => {
    const s = big(200);
    const [cursor] = bulks(run(s, "HSCAN big 0 COUNT 100"));
    expect(BigInt(cursor!) >> 32n).toBe(100n);
    run(s, "HDEL big f100");
    const [next, ...pairs] = bulks(run(s, `HSCAN big ${cursor} COUNT 100`));
    expect(pairs[0]).toBe("f0");
    expect(next).not.toBe("0");
  });
});

describe("HINCRBYFLOAT computes in long double as Redis", () => {
  it("sums and prints as redis-server 7.0 does", () => {
    const s = store();
    const cases: [string, string][] = [
      ["10.5", "10.5"],
      ["0.1", "10.6"],
      ["-5", "5.6"],
      ["5.0e3", "5005.60000000000000009"],
    ];
    for (const [increment, expected] of cases) {
      expect(run(s, `HINCRBYFLOAT f a ${increment}`)).toBe(
        `$${expected.length}\r\n${expected}\r\n`,
      );
    }
    const single = (value: string) => {
      const parsed = parseLongDouble(value);
      expect(parsed).not.toBeNull();
      return formatLongDouble(parsed!);
    };
    expect(single("1.23456789012345678901")).toBe("1.23456789012345679");
    expect(single("0.000003814697265625")).toBe("0.00000381469726562"); // a tie: to even
    expect(single("0.000011444091796875")).toBe("0.00001144409179688");
    expect(single("123456789012345678901234567890")).toBe("123456789012345678899921813504");
    expect(single("-1e-20")).toBe("0");
    expect(single("-0.0")).toBe("0");
    expect(single("0x1.8p-1")).toBe("0.75");
    expect(single("4e-4951")).toBe("0");
    expect(single("1e400")).toMatch(/^10000000000000000000281880683947586514586/);
    const sum = addLongDouble(parseLongDouble("9007199254740993")!, parseLongDouble("0.3")!);
    expect(formatLongDouble(sum)).toBe("9007199254740993.2998046875");
    for (const bad of [
      "",
      ".",
      "e5",
      "1e",
      "0x",
      "0x1p",
      "nan",
      "-nan",
      " 1",
      "1 ",
      "1e-5000",
      "1.2e4932",
      "infin",
    ]) {
      expect(parseLongDouble(bad)).toBeNull();
    }
    expect(parseLongDouble("-Infinity")?.infinite).toBe(true);
    expect(parseLongDouble("1".repeat(5120))).toBeNull();
    expect(run(s, "HINCRBYFLOAT f g 1.18e4932")).toMatch(/^\$4933\r\n118/);
    expect(run(s, "HINCRBYFLOAT f g 1.18e4932")).toBe(
      "-ERR increment would produce NaN or Infinity\r\n",
    );
  });
});
