/**
 * SORT and the geo commands where a byte-for-byte comparison with redis-server cannot work by
 * design (test/app/compat/sort-geo.ts has those that can): the orders Redis takes from a hash
 * table (BY nosort on a set, ALPHA BY ties on sets and sorted sets); and what Redis has no notion
 * of: key specs, reply and value limits, memory accounting of stored results, reads served
 * outside the log. Also the pieces the byte-for-byte cases rest on: pqsort, printf's "%.4f" and
 * "%f", the long-double coordinates, the score conversions, and sin/cos/asin rounded as glibc's.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  asinRounded,
  cosRounded,
  decodeScore,
  encodeScore,
  formatCoordinate,
  formatFixed,
  scoreBits,
  sinRounded,
} from "../../src/app/kv-geo.ts";
import { entryBytes } from "../../src/app/kv-keyspace.ts";
import { pqsort, sortScore } from "../../src/app/kv-sort.ts";
import {
  commandKeys,
  type ExecContext,
  isReadOnlyRequest,
  KvStore,
  type KvStoreOptions,
} from "../../src/app/kv-store.ts";

const CONTEXT: ExecContext = { nowMs: 1_000, info: () => "" };
const buffers = (words: readonly string[]) => words.map((w) => Buffer.from(w, "latin1"));

function run(store: KvStore, line: string, nowMs = 1_000): string {
  return store.execute(buffers(line.split(" ")), { ...CONTEXT, nowMs }).toString("latin1");
}

function read(store: KvStore, line: string, nowMs = 1_000): string {
  return store.executeRead(buffers(line.split(" ")), { ...CONTEXT, nowMs }).toString("latin1");
}

/** The bulk strings of a flat array reply. */
function strings(reply: string): string[] {
  const out: string[] = [];
  const lines = reply.split("\r\n");
  for (let i = 1; i < lines.length - 1; i++) {
    if (lines[i]!.startsWith("$-1")) out.push("(nil)");
    else if (lines[i]!.startsWith("$")) out.push(lines[++i]!);
  }
  return out;
}

describe("SORT where Redis answers in a hash table's order", () => {
  it("BY nosort on a set: SMEMBERS's order (insertion; numeric for an intset's worth)", () => {
    const store = new KvStore();
    run(store, "SADD s pear apple fig banana");
    expect(strings(run(store, "SORT s BY nosort"))).toEqual(["pear", "apple", "fig", "banana"]);
    expect(strings(run(store, "SMEMBERS s"))).toEqual(strings(run(store, "SORT s BY nosort")));
    // DESC does not apply to a set kept in its order (as in Redis); LIMIT does.
    expect(strings(run(store, "SORT s BY nosort DESC LIMIT 1 2"))).toEqual(["apple", "fig"]);
    // With STORE, Redis sorts the set (ALPHA), so every replica stores the same list.
    expect(run(store, "SORT s BY nosort STORE d")).toBe(":4\r\n");
    expect(strings(run(store, "LRANGE d 0 -1"))).toEqual(["apple", "banana", "fig", "pear"]);
    run(store, "SADD n 10 -3 7 0");
    expect(strings(run(store, "SORT n BY nosort"))).toEqual(["-3", "0", "7", "10"]);
    run(store, "SADD n 007");
    expect(strings(run(store, "SORT n BY nosort"))).toEqual(["10", "-3", "7", "0", "007"]);
  });

  it("ALPHA BY ties keep the input order: a set's insertion order, a sorted set's score order", () => {
    const store = new KvStore();
    run(store, "SADD s c a d b");
    run(store, "MSET w_a x w_b x w_c x");
    // d has no weight: it sorts first; the rest tie and keep the set's order.
    expect(strings(run(store, "SORT s BY w_* ALPHA"))).toEqual(["d", "c", "a", "b"]);
    expect(strings(run(store, "SORT s BY w_* ALPHA DESC"))).toEqual(["c", "a", "b", "d"]);
    run(store, "ZADD z 3 c 1 a 4 d 2 b");
    expect(strings(run(store, "SORT z BY w_* ALPHA"))).toEqual(["d", "a", "b", "c"]);
    // A numeric sort is total: ties break by the element's bytes.
    run(store, "MSET v_a 1 v_b 1 v_c 1 v_d 0");
    expect(strings(run(store, "SORT s BY v_*"))).toEqual(["d", "a", "b", "c"]);
    expect(strings(run(store, "SORT z BY v_* DESC"))).toEqual(["c", "b", "a", "d"]);
  });

  it("reads BY and GET keys as strings or hash fields, anything else as missing", () => {
    const store = new KvStore();
    run(store, "RPUSH l 1 2 3");
    run(store, "SET k_1 one");
    run(store, "HSET k_2 f two");
    run(store, "RPUSH k_3 x");
    expect(strings(run(store, "SORT l GET k_* GET k_*->f GET #"))).toEqual([
      "one",
      "(nil)",
      "1",
      "(nil)",
      "two",
      "2",
      "(nil)",
      "(nil)",
      "3",
    ]);
  });
});

describe("SORT's numbers are strtod's", () => {
  it("leading spaces, hex, infinities and '' (0) convert; trailing text, NaN and ERANGE do not", () => {
    expect(sortScore(" 5")).toBe(5);
    expect(sortScore("")).toBe(0);
    expect(sortScore("0x10")).toBe(16);
    expect(sortScore("-inf")).toBe(-Infinity);
    expect(sortScore("5\0junk")).toBe(5); // a C string ends at NUL
    expect(sortScore("(5")).toBeNull();
    expect(sortScore("5 ")).toBeNull();
    expect(sortScore("nan")).toBeNull();
    expect(sortScore("1e400")).toBeNull();
    expect(sortScore("1e-400")).toBeNull();
    expect(sortScore("0x1p-99999")).toBeNull();
    expect(sortScore("0e-400")).toBe(0);
    // Subnormals: ERANGE unless exact.
    expect(sortScore("4.9e-324")).toBeNull();
    expect(sortScore("0x1p-1074")).toBe(2 ** -1074);
    expect(sortScore("-0x1.8p-1070")).toBe(-1.5 * 2 ** -1070);
    expect(sortScore("2.2250738585072014e-308")).toBe(2 ** -1022);
  });

  it("one bad value fails the sort, and a STORE then stores nothing", () => {
    const store = new KvStore();
    run(store, "RPUSH l 1 x 2");
    run(store, "SET d keep");
    expect(run(store, "SORT l STORE d")).toBe(
      "-ERR One or more scores can't be converted into double\r\n",
    );
    expect(run(store, "GET d")).toBe("$4\r\nkeep\r\n");
  });
});

describe("pqsort: Redis's partial quicksort", () => {
  const byValue = (a: { v: number }, b: { v: number }) => a.v - b.v;

  it("puts what a full sort would put in the wanted range", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 300 }),
        fc.nat(),
        fc.nat(),
        (values, x, y) => {
          const items = values.map((v, i) => ({ v, i }));
          const left = x % items.length;
          const right = left + (y % (items.length - left));
          pqsort(items, byValue, left, right);
          const sorted = values.slice().sort((a, b) => a - b);
          expect(items.slice(left, right + 1).map((item) => item.v)).toEqual(
            sorted.slice(left, right + 1),
          );
          expect(items.map((item) => item.i).sort((a, b) => a - b)).toEqual(
            values.map((_, i) => i),
          );
        },
      ),
    );
  });

  it("moves equal elements as Redis's does (not stably)", () => {
    const items = [3, 1, 3, 2, 1, 3, 2, 1, 2, 3].map((v, i) => ({ v, i }));
    pqsort(items, byValue, 0, 4);
    // redis-server 7.0.15: RPUSH q i0 … i9, weights 3 1 3 2 1 3 2 1 2 3, SORT q BY w_* ALPHA
    // LIMIT 0 5 answers i7 i4 i1 i6 i8.
    expect(items.slice(0, 5).map((item) => `${item.v}.${item.i}`)).toEqual([
      "1.7",
      "1.4",
      "1.1",
      "2.6",
      "2.8",
    ]);
  });
});

describe("printf's formats, from the exact binary value", () => {
  it('"%.4f" and "%f" round half to even; signs and infinities as glibc prints them', () => {
    expect(formatFixed(166274.15156960033, 4)).toBe("166274.1516");
    expect(formatFixed(0.0078125, 6)).toBe("0.007812"); // an exact tie: to even
    expect(formatFixed(0.0234375, 6)).toBe("0.023438");
    expect(formatFixed(0.03125, 4)).toBe("0.0312");
    expect(formatFixed(-0, 6)).toBe("-0.000000");
    expect(formatFixed(-1e-9, 6)).toBe("-0.000000");
    expect(formatFixed(1e21, 6)).toBe("1000000000000000000000.000000");
    expect(formatFixed(Infinity, 6)).toBe("inf");
    expect(formatFixed(-Infinity, 4)).toBe("-inf");
  });

  it("coordinates as Redis's human long double: %.17Lf, zeros trimmed", () => {
    expect(formatCoordinate(13.361389338970184)).toBe("13.36138933897018433");
    expect(formatCoordinate(38.115556395496299)).toBe("38.11555639549629859");
    expect(formatCoordinate(180)).toBe("180");
    expect(formatCoordinate(-0.5)).toBe("-0.5");
  });
});

describe("geohash scores", () => {
  it("encode to 52 bits and decode to the cell's centre", () => {
    expect(encodeScore(13.361389, 38.115556)).toBe(3479099956230698);
    const [lon, lat] = decodeScore(3479099956230698);
    expect(Math.abs(lon - 13.361389)).toBeLessThan(1e-5);
    expect(Math.abs(lat - 38.115556)).toBeLessThan(1e-5);
    // The corners: the offset 2^26 spills into bits 52 and 53; decoding clamps.
    expect(encodeScore(180, 85.05112878)).toBe(2 ** 53 + 2 ** 52);
    expect(decodeScore(2 ** 53 + 2 ** 52)).toEqual([180, 85.05112878]);
  });

  it("any score converts to uint64 as x86-64's cvttsd2si sequence does", () => {
    expect(scoreBits(1.9)).toBe(1n);
    expect(scoreBits(-1)).toBe(2n ** 64n - 1n);
    expect(scoreBits(-(2 ** 63))).toBe(2n ** 63n);
    expect(scoreBits(-1e30)).toBe(2n ** 63n);
    expect(scoreBits(2 ** 63)).toBe(2n ** 63n);
    expect(scoreBits(2 ** 64)).toBe(0n);
    expect(scoreBits(Infinity)).toBe(0n);
    expect(scoreBits(-Infinity)).toBe(2n ** 63n);
  });
});

describe("sin, cos and asin as glibc's, where V8's differ in the last bit", () => {
  // Inputs where V8's Math functions and glibc 2.36's (redis-server's libm) disagree; glibc's
  // results, which are the correctly rounded ones.
  const SIN: [number, number][] = [
    [-0.4174448956269771, -0.4054260870105479],
    [-2.3914654198568317, -0.681731850011908],
    [-1.9745901735965163, -0.9195769754810381],
    [2.2643364529591055, 0.7689877649579658],
    [2.4443611247930677, 0.6420977775919671],
    [-0.801873070327565, -0.7186598124177731],
  ];
  const COS: [number, number][] = [
    [-2.381772446492687, -0.7249598622113812],
    [2.8570109760854394, -0.9597791831732908],
    [-2.3646675685886294, -0.7130726981614878],
    [1.2245360541623087, 0.33938241999528135],
    [-0.7658181458245963, 0.7208155198128946],
    [0.6137273384723813, 0.8175070581663958],
  ];
  const ASIN: [number, number][] = [
    [0.9608995006419718, 1.290232614853361],
    [0.9267532541416585, 1.185676047927427],
    [0.8886469816789031, 1.0943863072870743],
    [0.5561452815309167, 0.5897403874419475],
    [0.7993491725064814, 0.9262112885687629],
    [0.9622310344129801, 1.295082204111892],
  ];

  it("match glibc's results", () => {
    for (const [x, y] of SIN) expect(sinRounded(x), `sin ${x}`).toBe(y);
    for (const [x, y] of COS) expect(cosRounded(x), `cos ${x}`).toBe(y);
    for (const [x, y] of ASIN) expect(asinRounded(x), `asin ${x}`).toBe(y);
  });

  it("stay within an ulp of V8's everywhere, exact at the edges", () => {
    const ulp = (v: number) => 2 ** (Math.floor(Math.log2(Math.abs(v) || 1)) - 52);
    fc.assert(
      fc.property(fc.double({ min: -4, max: 4, noNaN: true }), (x) => {
        expect(Math.abs(sinRounded(x) - Math.sin(x))).toBeLessThanOrEqual(ulp(Math.sin(x)));
        expect(Math.abs(cosRounded(x) - Math.cos(x))).toBeLessThanOrEqual(ulp(Math.cos(x)));
        const y = x / 4;
        expect(Math.abs(asinRounded(y) - Math.asin(y))).toBeLessThanOrEqual(2 * ulp(Math.asin(y)));
      }),
    );
    expect(Object.is(sinRounded(-0), -0)).toBe(true);
    expect(cosRounded(0)).toBe(1);
    expect(asinRounded(1)).toBe(Math.PI / 2);
    expect(asinRounded(-1)).toBe(-Math.PI / 2);
    expect(asinRounded(1 + 2 ** -52)).toBeNaN();
  });
});

describe("key specs name the sorted key, the source and the destination", () => {
  const keys = (line: string) => commandKeys(buffers(line.split(" "))).map((k) => k.toString());

  it("SORT: the key and the last STORE; SORT_RO: the key", () => {
    expect(keys("SORT l")).toEqual(["l"]);
    expect(keys("SORT l BY w_* GET n_* STORE d")).toEqual(["l", "d"]);
    expect(keys("SORT l STORE d1 LIMIT 0 1 STORE d2")).toEqual(["l", "d2"]);
    expect(keys("SORT l GET store BY store LIMIT store store")).toEqual(["l"]);
    expect(keys("SORT_RO l BY w_*")).toEqual(["l"]);
  });

  it("geo: the source, STORE/STOREDIST's destination, GEOSEARCHSTORE's two", () => {
    expect(keys("GEOADD g 1 2 m")).toEqual(["g"]);
    expect(keys("GEOPOS g m")).toEqual(["g"]);
    expect(keys("GEORADIUS g 1 2 3 km")).toEqual(["g"]);
    expect(keys("GEORADIUS g 1 2 3 km STORE d")).toEqual(["g", "d"]);
    expect(keys("GEORADIUS g 1 2 3 km STORE d1 STOREDIST d2 COUNT 3")).toEqual(["g", "d2"]);
    expect(keys("GEORADIUS g 1 2 3 km COUNT store")).toEqual(["g"]);
    expect(keys("GEORADIUSBYMEMBER g m 3 km STOREDIST d")).toEqual(["g", "d"]);
    expect(keys("GEORADIUSBYMEMBER_RO g m 3 km")).toEqual(["g"]);
    expect(keys("GEOSEARCHSTORE d g FROMMEMBER m BYRADIUS 1 km")).toEqual(["d", "g"]);
  });

  it("SORT is a write even without STORE (as Redis's table says); the _RO forms are reads", () => {
    const readOnly = (line: string) => isReadOnlyRequest([buffers(line.split(" "))]);
    expect(readOnly("SORT l")).toBe(false);
    expect(readOnly("SORT_RO l")).toBe(true);
    expect(readOnly("GEORADIUS g 1 2 3 km")).toBe(false);
    expect(readOnly("GEORADIUS_RO g 1 2 3 km")).toBe(true);
    expect(readOnly("GEORADIUSBYMEMBER_RO g m 3 km")).toBe(true);
    expect(readOnly("GEOSEARCH g FROMMEMBER m BYRADIUS 1 km")).toBe(true);
    expect(readOnly("GEOSEARCHSTORE d g FROMMEMBER m BYRADIUS 1 km")).toBe(false);
    expect(readOnly("GEOADD g 1 2 m")).toBe(false);
    expect(readOnly("GEODIST g a b")).toBe(true);
  });
});

describe("limits and accounting", () => {
  function populated(options: Partial<KvStoreOptions> = {}): KvStore {
    const store = new KvStore(options);
    run(store, "RPUSH l 3 1 2");
    run(store, "MSET n_1 one n_2 two n_3 three");
    run(store, "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania");
    return store;
  }

  it("replies built from stored data are refused over --max-reply-bytes, changing nothing", () => {
    for (const command of [
      "SORT l GET # GET n_*",
      "SORT_RO l ALPHA",
      "GEOPOS g Palermo Catania nope",
      "GEOHASH g Palermo Catania",
      "GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST WITHHASH WITHCOORD ASC",
      "GEORADIUS_RO g 15 37 200 km WITHCOORD",
    ]) {
      const expected = run(populated(), command);
      const size = Buffer.byteLength(expected, "latin1");
      expect(run(populated({ replyBytesMax: size }), command), command).toBe(expected);
      const under = populated({ replyBytesMax: size - 1 });
      const before = Buffer.from(under.snapshot());
      expect(run(under, command), command).toBe(
        `-ERR reply too large (${size} bytes, limit ${size - 1} set by --max-reply-bytes)\r\n`,
      );
      expect(Buffer.from(under.snapshot()).equals(before), command).toBe(true);
    }
  });

  it("GEOADD refuses a member over --max-value-bytes and adds nothing", () => {
    const store = populated({ valueBytesMax: 8 });
    expect(run(store, "GEOADD g 1 1 short 2 2 muchtoolongname")).toBe(
      "-ERR value too large (limit 8 bytes, set by --max-value-bytes)\r\n",
    );
    expect(run(store, "ZCARD g")).toBe(":2\r\n");
  });

  it("stored results count their bytes: usedBytes stays the sum of the entries'", () => {
    const store = populated();
    run(store, "SORT l GET n_* STORE sorted");
    run(store, "GEOSEARCHSTORE near g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST");
    run(store, "GEORADIUS g 15 37 200 km STORE near2");
    run(store, "SORT l LIMIT 0 0 STORE near2"); // empty: deletes it
    const db = store.database(0);
    expect(db.entries.has("near2")).toBe(false);
    let total = 0;
    for (const [key, entry] of db.entries) total += entryBytes(key, entry.value);
    expect(db.usedBytes).toBe(total);
  });

  it("reads served outside the log change nothing, though a BY key has expired", () => {
    const store = populated();
    run(store, "SET w_1 9");
    run(store, "PEXPIRE w_1 10");
    run(store, "PEXPIRE n_2 10");
    run(store, "PING", 2_000);
    const before = Buffer.from(store.snapshot());
    // w_1 counts as missing (0, as the others): 1 2 3 by value; n_2 is missing too.
    expect(strings(read(store, "SORT_RO l BY w_* GET n_*", 2_000))).toEqual([
      "one",
      "(nil)",
      "three",
    ]);
    expect(read(store, "GEOSEARCH g FROMMEMBER Palermo BYRADIUS 10 km", 2_000)).toBe(
      "*1\r\n$7\r\nPalermo\r\n",
    );
    expect(Buffer.from(store.snapshot()).equals(before)).toBe(true);
  });

  it("a restored snapshot answers alike", () => {
    const store = populated();
    run(store, "SADD s b c a");
    const restored = KvStore.restore(store.snapshot());
    for (const command of [
      "SORT s BY nosort",
      "SORT l BY n_* ALPHA GET #",
      "GEOSEARCH g FROMLONLAT 15 37 BYBOX 400 400 km WITHDIST WITHHASH ASC",
    ]) {
      expect(run(restored, command), command).toBe(run(store, command));
    }
  });
});
