/**
 * Set and sorted-set commands where a byte-for-byte comparison with redis-server cannot work by
 * design (test/app/compat/sets-zsets.ts has those that can): hash-table reply orders, SSCAN and
 * ZSCAN cursors over large collections, ZRANDMEMBER's seeded picks; and what Redis has no notion
 * of: key specs, reply-size limits, determinism across replicas and snapshots, reads served
 * outside the log, the byte counts of stored values, the serving steps of the blocking pops.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Keyspace, KvSet, KvZset } from "../../src/app/kv-keyspace.ts";
import { sadd } from "../../src/app/kv-sets.ts";
import {
  commandKeys,
  type ExecContext,
  isReadOnlyRequest,
  KvStore,
  type KvStoreOptions,
} from "../../src/app/kv-store.ts";
import { parseZmpop, zadd, zmpopFirst, zpopFirst } from "../../src/app/kv-zsets.ts";

const CONTEXT: ExecContext = { nowMs: 1_000, info: () => "" };
const buffers = (words: readonly string[]) => words.map((w) => Buffer.from(w, "latin1"));

function run(store: KvStore, line: string | readonly string[], nowMs = 1_000): string {
  const words = typeof line === "string" ? line.split(" ") : line;
  return store.execute(buffers(words), { ...CONTEXT, nowMs }).toString("latin1");
}

function read(store: KvStore, line: string): string {
  return store.executeRead(buffers(line.split(" ")), CONTEXT).toString("latin1");
}

/** A RESP2 reply decoded: strings, numbers, null, nested arrays. */
type Resp = string | number | null | Resp[];

function decode(reply: string): Resp {
  let at = 0;
  const line = () => {
    const end = reply.indexOf("\r\n", at);
    const text = reply.slice(at + 1, end);
    at = end + 2;
    return text;
  };
  const next = (): Resp => {
    const type = reply[at];
    const text = line();
    if (type === ":") return Number(text);
    if (type === "+" || type === "-") return text;
    const length = Number(text);
    if (length < 0) return null;
    if (type === "$") {
      const value = reply.slice(at, at + length);
      at += length + 2;
      return value;
    }
    const items: Resp[] = [];
    for (let i = 0; i < length; i++) items.push(next());
    return items;
  };
  const value = next();
  expect(at).toBe(reply.length);
  return value;
}

const sorted = (values: Resp): string[] => (values as string[]).slice().sort();

describe("set operations answer in insertion order where Redis answers in hash order", () => {
  it("SINTER follows the smallest set, SUNION first appearance, SDIFF the first set", () => {
    const store = new KvStore();
    run(store, "SADD big z y x w v u");
    run(store, "SADD small w y q");
    run(store, "SADD other y w z");
    // Redis's order would depend on its hash table: compared as sets, ours is insertion order.
    expect(decode(run(store, "SINTER big small"))).toEqual(["w", "y"]);
    expect(decode(run(store, "SINTER big other small"))).toEqual(["y", "w"]); // other: first of the smallest
    expect(decode(run(store, "SUNION small big"))).toEqual(["w", "y", "q", "z", "x", "v", "u"]);
    expect(decode(run(store, "SDIFF big small other"))).toEqual(["x", "v", "u"]);
    expect(sorted(decode(run(store, "SMEMBERS big")))).toEqual(["u", "v", "w", "x", "y", "z"]);
  });

  it("sorts only an intset's worth of canonical integers, as Redis's intset does", () => {
    const store = new KvStore();
    run(store, "SADD n 10 -3 2");
    expect(decode(run(store, "SMEMBERS n"))).toEqual(["-3", "2", "10"]);
    run(store, "SADD m 10 -3 +2"); // "+2" is not an integer to Redis's intset: insertion order
    expect(decode(run(store, "SMEMBERS m"))).toEqual(["10", "-3", "+2"]);
    run(store, "SADD big 9223372036854775807 -9223372036854775808 1");
    expect(decode(run(store, "SMEMBERS big"))).toEqual([
      "-9223372036854775808",
      "1",
      "9223372036854775807",
    ]);
    const many = Array.from({ length: 513 }, (_, i) => String(600 - i));
    run(store, ["SADD", "many", ...many]);
    expect(decode(run(store, "SMEMBERS many"))).toEqual(many); // over 512: a hash table there
    run(store, "SREM many 600");
    expect(decode(run(store, "SMEMBERS many"))).toEqual(many.slice(1).reverse());
  });

  it("STORE forms never leave an empty set, and replace the destination's type and TTL", () => {
    const store = new KvStore();
    run(store, "SADD a x y");
    run(store, "SET d v EX 100");
    expect(run(store, "SDIFFSTORE d a a")).toBe(":0\r\n");
    expect(run(store, "EXISTS d")).toBe(":0\r\n");
    run(store, "SET d v EX 100");
    expect(run(store, "SUNIONSTORE d a")).toBe(":2\r\n");
    expect(run(store, "TTL d")).toBe(":-1\r\n");
    expect(run(store, "SMOVE a d x")).toBe(":0\r\n".replace("0", "1"));
    expect(run(store, "SMOVE a d y")).toBe(":1\r\n");
    expect(run(store, "EXISTS a")).toBe(":0\r\n"); // the source emptied: deleted
  });
});

describe("key specs name exactly the keys, destination included", () => {
  const keys = (line: string) => commandKeys(buffers(line.split(" "))).map((k) => k.toString());

  it("numkeys commands", () => {
    expect(keys("SINTERCARD 2 a b LIMIT 1")).toEqual(["a", "b"]);
    expect(keys("SINTERCARD 3 a b")).toEqual([]);
    expect(keys("SINTERCARD x a b")).toEqual([]);
    expect(keys("ZUNIONSTORE d 2 a b WEIGHTS 1 2")).toEqual(["d", "a", "b"]);
    expect(keys("ZINTERSTORE d 1 a AGGREGATE MIN")).toEqual(["d", "a"]);
    expect(keys("ZDIFFSTORE d 0 a")).toEqual(["d"]);
    expect(keys("ZDIFFSTORE d 3 a b")).toEqual(["d"]);
    expect(keys("ZUNION 2 a b WITHSCORES")).toEqual(["a", "b"]);
    expect(keys("ZINTER 1 a")).toEqual(["a"]);
    expect(keys("ZDIFF 2 a b")).toEqual(["a", "b"]);
    expect(keys("ZINTERCARD 2 a b LIMIT 3")).toEqual(["a", "b"]);
    expect(keys("ZMPOP 2 a b MIN COUNT 3")).toEqual(["a", "b"]);
    expect(keys("ZMPOP 2 a b")).toEqual([]); // no MIN|MAX after them: refused
    expect(keys("ZMPOP -1 a MIN")).toEqual([]);
  });

  it("fixed positions", () => {
    expect(keys("SINTERSTORE d a b")).toEqual(["d", "a", "b"]);
    expect(keys("SUNION a b c")).toEqual(["a", "b", "c"]);
    expect(keys("SMOVE s d m")).toEqual(["s", "d"]);
    expect(keys("ZRANGESTORE d s 0 -1")).toEqual(["d", "s"]);
    expect(keys("SMISMEMBER s a b")).toEqual(["s"]);
    expect(keys("SSCAN s 0 MATCH a")).toEqual(["s"]);
    expect(keys("ZSCAN z 0")).toEqual(["z"]);
    expect(keys("ZREMRANGEBYLEX z - +")).toEqual(["z"]);
  });

  it("reads may be served outside the log; STORE forms and pops may not", () => {
    for (const line of [
      "SINTER a b",
      "SUNION a",
      "SDIFF a b",
      "SINTERCARD 1 a",
      "SMISMEMBER a x",
      "SSCAN a 0",
      "ZUNION 1 a",
      "ZINTER 1 a",
      "ZDIFF 1 a",
      "ZINTERCARD 1 a",
      "ZLEXCOUNT a - +",
      "ZSCAN a 0",
      "ZRANDMEMBER a 3",
    ]) {
      expect(isReadOnlyRequest([buffers(line.split(" "))]), line).toBe(true);
    }
    for (const line of [
      "SINTERSTORE d a",
      "SUNIONSTORE d a",
      "SDIFFSTORE d a",
      "SMOVE a b x",
      "ZUNIONSTORE d 1 a",
      "ZINTERSTORE d 1 a",
      "ZDIFFSTORE d 1 a",
      "ZRANGESTORE d a 0 1",
      "ZREMRANGEBYRANK a 0 1",
      "ZREMRANGEBYSCORE a 0 1",
      "ZREMRANGEBYLEX a - +",
      "ZMPOP 1 a MIN",
    ]) {
      expect(isReadOnlyRequest([buffers(line.split(" "))]), line).toBe(false);
    }
  });
});

/** Walks SSCAN or ZSCAN to cursor 0; `between` runs after each call. Returns what came. */
function walk(
  store: KvStore,
  command: string,
  key: string,
  options = "",
  between?: (step: number) => void,
): { elements: string[]; calls: number; cursors: string[] } {
  const elements: string[] = [];
  const cursors: string[] = [];
  let cursor = "0";
  let calls = 0;
  do {
    const reply = decode(run(store, `${command} ${key} ${cursor}${options}`.trim())) as [
      string,
      string[],
    ];
    cursor = reply[0];
    cursors.push(cursor);
    elements.push(...reply[1]);
    between?.(calls);
    calls++;
    expect(calls).toBeLessThan(10_000);
  } while (cursor !== "0");
  return { elements, calls, cursors };
}

describe("SSCAN over a large set: insertion-order cursors", () => {
  const members = (n: number, prefix = "m") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  it("walks every member once in steps of COUNT, and MATCH filters each step", () => {
    const store = new KvStore();
    run(store, ["SADD", "s", ...members(100)]);
    const all = walk(store, "SSCAN", "s", " COUNT 7");
    expect(all.elements).toEqual(members(100));
    expect(all.calls).toBe(Math.ceil(100 / 7));
    const matched = walk(store, "SSCAN", "s", " COUNT 7 MATCH m1*");
    expect(matched.elements).toEqual(members(100).filter((m) => m.startsWith("m1")));
    expect(matched.calls).toBe(all.calls);
    expect(walk(store, "SSCAN", "s").calls).toBe(10); // COUNT 10 by default
  });

  it("a huge set takes at most about 64 calls, whatever COUNT says", () => {
    const store = new KvStore();
    run(store, ["SADD", "s", ...members(6400)]);
    const { elements, calls } = walk(store, "SSCAN", "s", " COUNT 1");
    expect(calls).toBe(64);
    expect(new Set(elements).size).toBe(6400);
  });

  it("misses no member present throughout while others are added and removed", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 150 })), { maxLength: 60 }),
        fc.integer({ min: 1, max: 20 }),
        (changes, count) => {
          const store = new KvStore();
          run(store, ["SADD", "s", ...members(120)]);
          const touched = new Set<string>();
          const { elements } = walk(store, "SSCAN", "s", ` COUNT ${count}`, (step) => {
            for (const [add, n] of changes.slice(step * 3, step * 3 + 3)) {
              touched.add(`m${n}`);
              run(store, `${add ? "SADD" : "SREM"} s m${n}`);
            }
          });
          const seen = new Set(elements);
          for (const member of members(120)) {
            if (!touched.has(member)) expect(seen.has(member), member).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("the same on every replica: a restored snapshot answers the same cursors", () => {
    const a = new KvStore();
    run(a, ["SADD", "s", ...members(300)]);
    for (let i = 0; i < 300; i += 3) run(a, `SREM s m${i}`);
    run(a, ["SADD", "s", ...members(50, "n")]);
    const b = KvStore.restore(a.snapshot());
    for (const cursor of ["0", walk(a, "SSCAN", "s", " COUNT 25").cursors[2]!, "12345"]) {
      expect(run(b, `SSCAN s ${cursor} COUNT 25`)).toBe(run(a, `SSCAN s ${cursor} COUNT 25`));
    }
    expect(walk(b, "SSCAN", "s").elements).toEqual(walk(a, "SSCAN", "s").elements);
  });

  it("is a read: served outside the log it changes nothing", () => {
    const store = new KvStore();
    run(store, ["SADD", "s", ...members(600)]);
    run(store, "SADD gone x");
    run(store, "PEXPIRE gone 10");
    run(store, "PING", 2_000);
    // Cursor: (position << 32) | the hash of the member there.
    expect(decode(read(store, "SSCAN s 0 COUNT 20"))).toEqual([
      String((20n << 32n) | BigInt(fnv("m20"))),
      members(20),
    ]);
    expect(read(store, "SSCAN gone 0")).toBe("*2\r\n$1\r\n0\r\n*0\r\n");
    expect(store.keyCount).toBe(2);
  });
});

/** 32-bit FNV-1a, as the cursors use. */
function fnv(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

describe("ZSCAN over a large sorted set: hash-order cursors", () => {
  const pairs = (n: number) =>
    Array.from({ length: n }, (_, i) => [String(i % 17), `m${i}`]).flat();

  it("a small one comes whole in score order; a large one walks every member once", () => {
    const store = new KvStore();
    run(store, ["ZADD", "small", ...pairs(128)]);
    expect(walk(store, "ZSCAN", "small", " COUNT 1").calls).toBe(1);
    run(store, ["ZADD", "long", "1", "x".repeat(65)]); // a member over 64 bytes: not small
    run(store, ["ZADD", "big", ...pairs(500)]);
    const { elements, calls } = walk(store, "ZSCAN", "big", " COUNT 20");
    expect(calls).toBeGreaterThanOrEqual(25);
    const seen = new Map<string, string>();
    for (let i = 0; i < elements.length; i += 2) {
      expect(seen.has(elements[i]!)).toBe(false);
      seen.set(elements[i]!, elements[i + 1]!);
    }
    expect(seen.size).toBe(500);
    expect(seen.get("m40")).toBe("6");
  });

  it("misses no member present throughout while scores change and members come and go", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.constantFrom("ZADD", "ZREM", "ZINCRBY"), fc.integer({ min: 0, max: 250 })),
          { maxLength: 80 },
        ),
        (changes) => {
          const store = new KvStore();
          run(store, ["ZADD", "z", ...pairs(200)]);
          const gone = new Set<string>();
          const { elements } = walk(store, "ZSCAN", "z", " COUNT 9", (step) => {
            for (const [op, n] of changes.slice(step * 4, step * 4 + 4)) {
              if (op === "ZREM") gone.add(`m${n}`);
              run(store, op === "ZREM" ? `ZREM z m${n}` : `${op} z ${n - 125} m${n}`);
            }
          });
          const seen = new Set(elements.filter((_, i) => i % 2 === 0));
          for (let i = 0; i < 200; i++)
            if (!gone.has(`m${i}`)) expect(seen.has(`m${i}`)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("the same on every replica, and a huge cursor ends the walk", () => {
    const a = new KvStore();
    run(a, ["ZADD", "z", ...pairs(400)]);
    const b = KvStore.restore(a.snapshot());
    const cursors = walk(a, "ZSCAN", "z", " COUNT 30").cursors;
    for (const cursor of ["0", cursors[1]!, cursors[3]!]) {
      expect(run(b, `ZSCAN z ${cursor} COUNT 30`)).toBe(run(a, `ZSCAN z ${cursor} COUNT 30`));
    }
    expect(run(a, "ZSCAN z 4294967297")).toBe("*2\r\n$1\r\n0\r\n*0\r\n");
    expect(run(a, "ZSCAN z -1")).toBe("*2\r\n$1\r\n0\r\n*0\r\n");
  });
});

describe("ZRANDMEMBER: seeded from the store's state", () => {
  function zset(n: number): KvStore {
    const store = new KvStore();
    run(store, ["ZADD", "z", ...Array.from({ length: n }, (_, i) => [String(i), `m${i}`]).flat()]);
    return store;
  }

  it("picks alike on every replica (and on a restored one), and differently as the state moves", () => {
    const a = zset(50);
    const b = zset(50);
    const c = KvStore.restore(a.snapshot());
    for (const line of ["ZRANDMEMBER z", "ZRANDMEMBER z 5", "ZRANDMEMBER z -7 WITHSCORES"]) {
      const reply = run(a, line);
      expect(run(b, line)).toBe(reply);
      expect(run(c, line)).toBe(reply);
      expect(read(a, line)).toBe(reply); // a read outside the log, at the same state
    }
    const picks = new Set<string>();
    for (let t = 0; t < 20; t++) picks.add(run(a, "ZRANDMEMBER z", 2_000 + t));
    expect(picks.size).toBeGreaterThan(5);
  });

  it("a positive count under the size gives distinct members; at least the size, all of them", () => {
    const store = zset(30);
    for (let t = 0; t < 30; t++) {
      const picked = decode(run(store, "ZRANDMEMBER z 12", 5_000 + t)) as string[];
      expect(new Set(picked).size).toBe(12);
      for (const member of picked) expect(member).toMatch(/^m([0-9]|[12][0-9])$/);
    }
    const whole = decode(run(store, "ZRANDMEMBER z 30 WITHSCORES")) as string[];
    expect(whole.slice(0, 4)).toEqual(["m29", "29", "m28", "28"]); // highest first, as Redis
  });

  it("a negative count repeats: each member n / size times, the remainder distinct", () => {
    const store = zset(4);
    const picked = decode(run(store, "ZRANDMEMBER z -10 WITHSCORES")) as string[];
    expect(picked.length).toBe(20);
    const counts = new Map<string, number>();
    for (let i = 0; i < picked.length; i += 2) {
      expect(picked[i + 1]).toBe(picked[i]!.slice(1)); // each member with its own score
      counts.set(picked[i]!, (counts.get(picked[i]!) ?? 0) + 1);
    }
    expect([...counts.values()].sort()).toEqual([2, 2, 3, 3]);
    expect(new Set(decode(run(store, "ZRANDMEMBER z -3")) as string[]).size).toBe(3);
  });

  it("a huge negative count is refused at once, by the reply's exact size, every digit", () => {
    const store = zset(3);
    // *9223372036854775807 header (22 bytes) + per round "$2\r\nmN\r\n" (8 bytes) × 3 members.
    const n = 9223372036854775807n;
    const size = 22n + (n / 3n) * 24n + (n % 3n) * 8n;
    expect(run(store, "ZRANDMEMBER z -9223372036854775807")).toBe(
      `-ERR reply too large (${size} bytes, limit 67108864 set by --max-reply-bytes)\r\n`,
    );
  });
});

describe("ZUNION, ZINTER, ZDIFF and their STORE forms", () => {
  it("keep -0 in a reply, store it as 0, and never store an empty sorted set", () => {
    const store = new KvStore();
    run(store, "ZADD z 0 a 1 b");
    expect(decode(run(store, "ZUNION 1 z WEIGHTS -1 WITHSCORES"))).toEqual(["b", "-1", "a", "-0"]);
    expect(run(store, "ZUNIONSTORE d 1 z WEIGHTS -1")).toBe(":2\r\n");
    expect(run(store, "ZSCORE d a")).toBe("$1\r\n0\r\n");
    expect(run(store, "ZINTERSTORE d 2 z missing")).toBe(":0\r\n");
    expect(run(store, "EXISTS d")).toBe(":0\r\n");
    expect(run(store, "ZRANGESTORE d z 5 9")).toBe(":0\r\n");
    expect(run(store, "EXISTS d")).toBe(":0\r\n");
  });

  it("stored values count their bytes as if built member by member", () => {
    const store = new KvStore();
    run(store, "ZADD z 1 a 2 bb 3 ccc 4 dddd");
    run(store, "SADD s a bb x");
    run(store, "ZUNIONSTORE u 2 z s");
    run(store, "ZREMRANGEBYRANK u 1 2");
    run(store, "ZRANGESTORE r z 1 -1");
    run(store, "ZREMRANGEBYLEX r [ccc [ccc");
    run(store, "SUNIONSTORE su s s");
    const db = store.database(0);
    const expectZ = (key: string, members: Record<string, number>) => {
      const fresh = new KvZset();
      for (const [member, score] of Object.entries(members)) fresh.set(member, score);
      const stored = db.entries.get(key)!.value as KvZset;
      expect(stored.bytes).toBe(fresh.bytes);
      expect(stored.items).toEqual(fresh.items);
      expect([...stored.scores.entries()].sort()).toEqual([...fresh.scores.entries()].sort());
    };
    expectZ("u", { x: 1, ccc: 3, dddd: 4 }); // x 1, a 2, bb 3, ccc 3, dddd 4 less ranks 1-2
    expectZ("r", { bb: 2, dddd: 4 });
    const set = new KvSet();
    for (const member of ["a", "bb", "x"]) set.members.add(member);
    expect((db.entries.get("su")!.value as KvSet).bytes).toBe(set.bytes);
  });
});

describe("BYLEX spans: binary searches agree with Redis's small-set scan", () => {
  it("on sets of equal scores, for any range", () => {
    const bound = fc.oneof(
      fc.constantFrom("-", "+"),
      fc
        .tuple(
          fc.constantFrom("[", "("),
          fc.string({ unit: fc.constantFrom("a", "b", "c"), maxLength: 3 }),
        )
        .map(([kind, text]) => kind + text),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ unit: fc.constantFrom("a", "b", "c"), maxLength: 3 }), {
          minLength: 1,
          maxLength: 15,
        }),
        bound,
        bound,
        (members, min, max) => {
          const store = new KvStore();
          run(store, ["ZADD", "z", ...members.flatMap((m) => ["0", m])]);
          // The naive reading of the range over the members in byte order.
          const inMin = (m: string) =>
            min === "-" || (min !== "+" && (min[0] === "[" ? m >= min.slice(1) : m > min.slice(1)));
          const inMax = (m: string) =>
            max === "+" || (max !== "-" && (max[0] === "[" ? m <= max.slice(1) : m < max.slice(1)));
          const expected = members
            .slice()
            .sort()
            .filter((m) => inMin(m) && inMax(m));
          expect(decode(run(store, ["ZRANGEBYLEX", "z", min, max]))).toEqual(expected);
          expect(decode(run(store, ["ZREVRANGEBYLEX", "z", max, min]))).toEqual(
            expected.slice().reverse(),
          );
          expect(decode(run(store, ["ZLEXCOUNT", "z", min, max]))).toBe(expected.length);
          expect(decode(run(store, ["ZREMRANGEBYLEX", "z", min, max]))).toBe(expected.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("the serving steps of the blocking pops", () => {
  const limits = { valueBytesMax: 1 << 20, replyBytesMax: 1 << 20, patternBytesMax: 64 };

  function keyspace(): Keyspace {
    const ks = new Keyspace(limits);
    zadd(ks, buffers(["ZADD", "z", "1", "a", "2", "b", "3", "c"]), 0, CONTEXT);
    sadd(ks, buffers(["SADD", "s", "x"]), 0, CONTEXT);
    return ks;
  }

  it("zpopFirst: *3 key member score from the first key that exists", () => {
    const ks = keyspace();
    expect(zpopFirst(ks, buffers(["none", "other"]), false, 0)).toBeUndefined();
    expect(zpopFirst(ks, buffers(["none", "z", "s"]), true, 0)?.toString()).toBe(
      "*3\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\n3\r\n",
    );
    expect(zpopFirst(ks, buffers(["s", "z"]), false, 0)?.toString()).toMatch(/^-WRONGTYPE/);
    expect(zpopFirst(ks, buffers(["z"]), false, 0)?.toString()).toBe(
      "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n",
    );
    zpopFirst(ks, buffers(["z"]), false, 0);
    expect(ks.entries.has("z")).toBe(false); // emptied: deleted
  });

  it("zmpopFirst: *2 key, then member-score pairs; parseZmpop reads BZMPOP's arguments", () => {
    const ks = keyspace();
    expect(zmpopFirst(ks, buffers(["none"]), false, 2, 0)).toBeUndefined();
    expect(zmpopFirst(ks, buffers(["z"]), false, 2, 0)?.toString()).toBe(
      "*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
    );
    const parsed = parseZmpop(buffers(["BZMPOP", "0", "2", "a", "b", "max", "COUNT", "3"]), 2);
    expect(parsed).toEqual({ keys: buffers(["a", "b"]), fromHigh: true, count: 3 });
    expect(parseZmpop(buffers(["BZMPOP", "0", "2", "a", "b"]), 2).toString()).toBe(
      "-ERR syntax error\r\n",
    );
  });

  it("a pop too large for the reply limit is refused and pops nothing", () => {
    const ks = new Keyspace({ ...limits, replyBytesMax: 20 });
    zadd(ks, buffers(["ZADD", "z", "1", "a".repeat(30)]), 0, CONTEXT);
    expect(zpopFirst(ks, buffers(["z"]), false, 0)?.toString()).toMatch(/^-ERR reply too large/);
    expect(zmpopFirst(ks, buffers(["z"]), false, 1, 0)?.toString()).toMatch(
      /^-ERR reply too large/,
    );
    expect((ks.entries.get("z")!.value as KvZset).size).toBe(1);
  });
});

/** One key of each kind these commands read, some big enough to matter for a small limit. */
function populate(store: KvStore): void {
  const value = "v".repeat(20);
  run(store, `SADD s1 a ${value} b c`);
  run(store, `SADD s2 a ${value}x b d`);
  run(store, `ZADD z1 1 a 2.5 ${value} 3 b`);
  run(store, `ZADD z2 1 a -1 ${value}y 0.1 c`);
  run(store, [
    "ZADD",
    "big",
    ...Array.from({ length: 200 }, (_, i) => [String(i), `m${i}`]).flat(),
  ]);
}

/** Commands whose reply is built from stored data, each tried at and just under its size. */
const DATA_REPLIES: readonly string[] = [
  "SINTER s1 s2",
  "SUNION s1 s2",
  "SDIFF s1 s2",
  "SMISMEMBER s1 a b nope",
  "SSCAN s1 0",
  "SSCAN s1 0 MATCH a*",
  "ZUNION 2 z1 z2 WITHSCORES",
  "ZINTER 2 z1 z2",
  "ZDIFF 2 z1 z2 WITHSCORES",
  "ZUNION 2 s1 z2 WEIGHTS 2 3 WITHSCORES",
  "ZSCAN z1 0",
  "ZSCAN big 0 COUNT 50",
  "ZRANDMEMBER z1",
  "ZRANDMEMBER z1 2 WITHSCORES",
  "ZRANDMEMBER z1 -7 WITHSCORES",
  "ZRANDMEMBER big 200",
  "ZMPOP 2 nothing z1 MAX COUNT 2",
  "ZRANGE z1 0 -1 WITHSCORES",
];

describe("replyBytesMax on replies built from stored data", () => {
  function store(options: Partial<KvStoreOptions> = {}): KvStore {
    const s = new KvStore(options);
    populate(s);
    return s;
  }

  it("a reply of exactly the limit is sent; one byte less refuses it, changing nothing", () => {
    for (const command of DATA_REPLIES) {
      const expected = run(store(), command);
      expect(expected[0], command).not.toBe("-");
      const size = Buffer.byteLength(expected, "latin1");
      expect(run(store({ replyBytesMax: size }), command), command).toBe(expected);
      const under = store({ replyBytesMax: size - 1 });
      const before = Buffer.from(under.snapshot());
      expect(run(under, command), command).toBe(
        `-ERR reply too large (${size} bytes, limit ${size - 1} set by --max-reply-bytes)\r\n`,
      );
      expect(Buffer.from(under.snapshot()).equals(before), `${command} changed the store`).toBe(
        true,
      );
    }
  });

  it("MATCH patterns over patternBytesMax are refused, as SCAN's", () => {
    const s = store({ patternBytesMax: 8 });
    expect(run(s, `SSCAN s1 0 MATCH ${"*".repeat(9)}`)).toBe(
      "-ERR pattern too long (9 bytes, limit 8)\r\n",
    );
    expect(run(s, `ZSCAN z1 0 MATCH ${"*".repeat(9)}`)).toBe(
      "-ERR pattern too long (9 bytes, limit 8)\r\n",
    );
    expect(run(s, `ZSCAN z1 0 MATCH ${"*".repeat(8)}`)).toMatch(/^\*2/);
  });
});

describe("reads served outside the log change nothing", () => {
  it("even when a key they read has expired by the log's clock", () => {
    const store = new KvStore();
    run(store, "SADD s a b");
    run(store, "ZADD z 1 a");
    run(store, "SADD gone a");
    run(store, "ZADD zgone 1 a");
    run(store, "PEXPIRE gone 10");
    run(store, "PEXPIRE zgone 10");
    run(store, "PING", 2_000);
    const before = Buffer.from(store.snapshot());
    expect(read(store, "SINTER s gone")).toBe("*0\r\n");
    expect(read(store, "SUNION gone s")).toBe("*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    expect(read(store, "SINTERCARD 2 s gone")).toBe(":0\r\n");
    expect(read(store, "ZUNION 2 z zgone WITHSCORES")).toBe("*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    expect(read(store, "ZINTERCARD 2 z zgone")).toBe(":0\r\n");
    expect(read(store, "ZRANDMEMBER zgone")).toBe("$-1\r\n");
    expect(read(store, "ZSCAN zgone 0")).toBe("*2\r\n$1\r\n0\r\n*0\r\n");
    expect(read(store, "SMISMEMBER gone a")).toBe("*1\r\n:0\r\n");
    expect(Buffer.from(store.snapshot()).equals(before)).toBe(true);
  });
});
