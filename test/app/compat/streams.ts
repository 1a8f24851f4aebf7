/**
 * Byte-for-byte cases against redis-server (test/app/redis-compat.test.ts): streams commands.
 *
 * Ids are given explicitly: an auto id (`*`) takes the log's clock, not redis-server's. Replies
 * that show times (XPENDING's extended form, XINFO CONSUMERS, XINFO STREAM FULL with consumers)
 * are tested in test/app/kv-streams.test.ts instead; here only where no time shows.
 */

const words = (line: string): string[] => line.split(" ");

/** A deterministic generator, so the lists are the same on every run. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * Entries whose sizes, field names and id gaps vary (strings and integer-looking values, small
 * and large id deltas, negative sequence deltas), with deletions and trims, and XINFO STREAM now
 * and then: Redis's node layout (radix-tree-keys and -nodes, `~` trims) must come out the same.
 */
function nodeLayoutCases(key: string, seed: number, adds: number): string[][] {
  const random = lcg(seed);
  const cases: string[][] = [];
  const live: string[] = [];
  let ms = 1n;
  const names = ["f", "field", "a", "123", "x"];
  for (let i = 0; i < adds; i++) {
    const jump = random();
    ms += jump < 0.6 ? 0n : jump < 0.9 ? BigInt(1 + Math.floor(random() * 300)) : 2n ** 33n;
    const seq = jump < 0.6 ? BigInt(live.length + i) : BigInt(Math.floor(random() * 5));
    const id = `${ms}-${seq}`;
    const pairs = 1 + Math.floor(random() * 3);
    const args = ["XADD", key, id];
    for (let p = 0; p < pairs; p++) {
      const name = random() < 0.7 ? names[p]! : `n${Math.floor(random() * 1000)}`;
      const kind = random();
      const value =
        kind < 0.3
          ? String(Math.floor((random() - 0.5) * 10 ** Math.floor(random() * 12)))
          : "v".repeat(Math.floor(random() * (kind < 0.9 ? 60 : 900)));
      args.push(name, value);
    }
    cases.push(args);
    live.push(id);
    const action = random();
    if (action < 0.08 && live.length > 0) {
      const at = Math.floor(random() * live.length);
      cases.push(["XDEL", key, live[at]!]);
      live.splice(at, 1);
    } else if (action < 0.1) {
      cases.push(["XTRIM", key, "MAXLEN", "~", String(Math.floor(live.length / 2))]);
    }
    if (i % 25 === 24) cases.push(["XINFO", "STREAM", key], ["XLEN", key]);
  }
  cases.push(["XINFO", "STREAM", key], ["XRANGE", key, "-", "+", "COUNT", "5"]);
  return cases;
}

/** One entry per node (values too big to share one), at ids whose bytes branch at many depths. */
function radixCases(): string[][] {
  const big = "b".repeat(3000);
  const ids = [
    "1-0",
    "2-0",
    "256-0",
    "257-5",
    "65536-0",
    "65536-1",
    "4294967296-0",
    "4294967296-7",
  ];
  ids.push("1099511627776-0", "1099511627777-0", "72057594037927936-0", "72057594037927936-1");
  const cases: string[][] = [];
  for (const id of ids) cases.push(["XADD", "rx", id, "f", big], ["XINFO", "STREAM", "rx"]);
  for (const id of ["65536-1", "1-0", "4294967296-0", "257-5", "72057594037927936-1"]) {
    cases.push(["XDEL", "rx", id], ["XINFO", "STREAM", "rx"]);
  }
  cases.push(["XTRIM", "rx", "MINID", "~", "65536"], ["XINFO", "STREAM", "rx"]);
  cases.push(["XTRIM", "rx", "MAXLEN", "2"], ["XINFO", "STREAM", "rx"]);
  return cases;
}

/** 250 small entries: three nodes of 100, 100 and 50, for `~` trims. */
function approxTrimCases(): string[][] {
  const cases: string[][] = [];
  for (let i = 1; i <= 250; i++) cases.push(["XADD", "t", `${i}-0`, "f", String(i)]);
  cases.push(
    ["XINFO", "STREAM", "t"],
    words("XTRIM t MAXLEN ~ 200"),
    words("XTRIM t MAXLEN ~ 120"),
    words("XLEN t"),
    words("XTRIM t MAXLEN ~ 10 LIMIT 50"),
    words("XTRIM t MINID ~ 180"),
    words("XTRIM t MINID ~ 201"),
    words("XLEN t"),
    words("XADD t MAXLEN ~ 0 LIMIT 0 251-0 f v"),
    words("XLEN t"),
    words("XTRIM t MAXLEN = 3"),
    words("XRANGE t - +"),
    ["XINFO", "STREAM", "t"],
  );
  // A node whose live entries a trim marks deleted, then XDEL and appends into it.
  for (let i = 1; i <= 150; i++) cases.push(["XADD", "u", `${i}-1`, "g", "w".repeat(i % 7)]);
  cases.push(
    words("XTRIM u MINID 50"),
    words("XDEL u 60-1 101-1 149-1"),
    ["XINFO", "STREAM", "u"],
    words("XTRIM u MINID ~ 102"),
    words("XTRIM u MAXLEN ~ 40"),
    ["XINFO", "STREAM", "u"],
    words("XTRIM u MAXLEN 0"),
    ["XINFO", "STREAM", "u"],
    words("XADD u 200-0 g w"),
    ["XINFO", "STREAM", "u"],
  );
  return cases;
}

/**
 * Consumer groups under random reads, acks, claims, deletions, trims and SETIDs, checked with the
 * replies that show no times: entries read, lag, pending counts and owners, claims.
 */
function groupCases(key: string, seed: number, steps: number): string[][] {
  const random = lcg(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const cases: string[][] = [];
  const ids: string[] = [];
  const groups = ["g0", "g1", "g2"];
  const consumers = ["c0", "c1", "c2", "c3"];
  let ms = 1;
  const anyId = (): string =>
    ids.length > 0 && random() < 0.8 ? pick(ids) : `${Math.floor(random() * ms)}-0`;
  for (let i = 0; i < steps; i++) {
    const op = random();
    if (op < 0.3) {
      ms += Math.floor(random() * 3);
      const id = `${ms}-${i}`;
      ids.push(id);
      cases.push(["XADD", key, id, "f", String(i)]);
    } else if (op < 0.36) {
      cases.push(["XDEL", key, anyId()]);
    } else if (op < 0.39) {
      const trim =
        random() < 0.5 ? ["MAXLEN", String(Math.floor(random() * 20))] : ["MINID", anyId()];
      cases.push(["XTRIM", key, ...trim]);
    } else if (op < 0.43) {
      const start = pick(["0", "$", anyId()]);
      const extra = random() < 0.3 ? ["ENTRIESREAD", String(Math.floor(random() * 10) - 1)] : [];
      cases.push(["XGROUP", "CREATE", key, pick(groups), start, "MKSTREAM", ...extra]);
    } else if (op < 0.46) {
      const extra = random() < 0.5 ? ["ENTRIESREAD", String(Math.floor(random() * 10))] : [];
      cases.push(["XGROUP", "SETID", key, pick(groups), pick(["0", "$", anyId()]), ...extra]);
    } else if (op < 0.47) {
      cases.push(["XGROUP", "DESTROY", key, pick(groups)]);
    } else if (op < 0.49) {
      cases.push([
        "XGROUP",
        pick(["CREATECONSUMER", "DELCONSUMER"]),
        key,
        pick(groups),
        pick(consumers),
      ]);
    } else if (op < 0.65) {
      const noAck = random() < 0.3 ? ["NOACK"] : [];
      const count = random() < 0.7 ? ["COUNT", String(1 + Math.floor(random() * 4))] : [];
      const from = random() < 0.75 ? ">" : pick(["0", anyId()]);
      cases.push([
        "XREADGROUP",
        "GROUP",
        pick(groups),
        pick(consumers),
        ...noAck,
        ...count,
        "STREAMS",
        key,
        from,
      ]);
    } else if (op < 0.72) {
      cases.push(["XACK", key, pick(groups), anyId(), anyId()]);
    } else if (op < 0.78) {
      const options = [
        ...(random() < 0.3 ? ["FORCE"] : []),
        ...(random() < 0.4 ? ["JUSTID"] : []),
        ...(random() < 0.2 ? ["RETRYCOUNT", "3"] : []),
        ...(random() < 0.2 ? ["LASTID", anyId()] : []),
      ];
      const minIdle = random() < 0.8 ? "0" : "3600000";
      cases.push([
        "XCLAIM",
        key,
        pick(groups),
        pick(consumers),
        minIdle,
        anyId(),
        anyId(),
        ...options,
      ]);
    } else if (op < 0.83) {
      const options = [
        ...(random() < 0.6 ? ["COUNT", String(1 + Math.floor(random() * 5))] : []),
        ...(random() < 0.4 ? ["JUSTID"] : []),
      ];
      cases.push([
        "XAUTOCLAIM",
        key,
        pick(groups),
        pick(consumers),
        "0",
        pick(["0", anyId()]),
        ...options,
      ]);
    } else if (op < 0.9) {
      cases.push(["XPENDING", key, pick(groups)]);
    } else if (op < 0.97) {
      cases.push(["XINFO", "GROUPS", key]);
    } else if (op < 0.99) {
      cases.push(["XINFO", "STREAM", key]);
    } else {
      ms += 5;
      cases.push(["XSETID", key, `${ms}-0`]);
    }
  }
  cases.push(["XINFO", "GROUPS", key], ["XINFO", "STREAM", key]);
  return cases;
}

export const COMMANDS: readonly (readonly string[])[] = [
  // XADD: ids, options, errors.
  words("XADD s 1-1 f v"),
  words("XADD s 1-1 f v"),
  words("XADD s 1-0 f v"),
  words("XADD s 1-2 f1 v1 f2 v2"),
  words("XADD s 2 a 1"),
  words("XADD s 2-* a 1"),
  words("XADD s 3-* a 1"),
  words("XADD s 3-* b 2"),
  words("XADD s 2-* a 1"),
  words("XADD s 0-0 a 1"),
  words("XADD s 0 a 1"),
  words("XADD new 0-* a 1"),
  words("XADD new2 0-1 a 1"),
  words("XADD s - a 1"),
  words("XADD s + a 1"),
  words("XADD s abc a 1"),
  words("XADD s 4-x a 1"),
  words("XADD s 18446744073709551616-0 a 1"),
  words("XADD s 4-18446744073709551616 a 1"),
  words("XADD s 4--1 a 1"),
  ["XADD", "ids", " 5-1", "a", "1"],
  ["XADD", "ids", "+6-0", "a", "1"],
  ["XADD", "ids", "007-0", "a", "1"],
  ["XADD", "ids", "8--0", "a", "1"],
  ["XADD", "ids", "9-00", "a", "1"],
  ["XADD", "ids", "10-+1", "a", "1"],
  ["XADD", "ids", "11-1 ", "a", "1"],
  ["XADD", "ids", "", "a", "1"],
  ["XADD", "ids", "12-", "a", "1"],
  ["XADD", "ids", "-5", "a", "1"],
  ["XADD", "ids", "13-\t7", "a", "1"],
  ["XADD", "ids", "14-18446744073709551615", "a", "1"],
  ["XADD", "ids", "14-*", "a", "1"],
  ["XADD", "ids", "15--00000000000000000001", "a", "1"],
  ["XADD", "ids", "16-1\u00002", "a", "1"],
  ["XADD", "ids", `17-${"0".repeat(130)}`, "a", "1"],
  ["XADD", "ids", `18-${"0".repeat(120)}`, "a", "1"],
  ["XADD", "ids", "19-9223372036854775808", "a", "1"],
  ["XRANGE", "ids", "-", "+"],
  words("XADD max 18446744073709551615-18446744073709551614 a 1"),
  words("XADD max 18446744073709551615-* a 1"),
  words("XADD max * a 1"),
  words("XADD max 18446744073709551615-* a 1"),
  words("XLEN max"),
  words("XADD s *"),
  words("XADD s * f"),
  words("XADD s 5-0 f v g"),
  words("XADD s NOMKSTREAM 5-0 f"),
  words("XADD nokey NOMKSTREAM 10-0 f v"),
  words("EXISTS nokey"),
  words("XADD s nomkstream 10-0 f v"),
  words("XADD s MAXLEN 4 11-0 f v"),
  words("XLEN s"),
  words("XADD s MAXLEN = 3 12-0 f v"),
  words("XADD s maxlen ~ 2 13-0 f v"),
  words("XLEN s"),
  words("XADD s MINID 12 14-0 f v"),
  words("XRANGE s - +"),
  words("XADD s MINID ~ 0 15-0 f v"),
  words("XADD s MINID = 15 16-0 f v"),
  words("XADD s MAXLEN -1 17-0 f v"),
  words("XADD s MAXLEN abc 17-0 f v"),
  words("XADD s MAXLEN 1 MINID 1 17-0 f v"),
  words("XADD s MINID 1 MAXLEN 1 17-0 f v"),
  words("XADD s LIMIT 10 17-0 f v"),
  words("XADD s LIMIT 0 17-0 f v"),
  words("XADD s MAXLEN 5 LIMIT 10 17-0 f v"),
  words("XADD s MAXLEN ~ 5 LIMIT 10 17-0 f v"),
  words("XADD s MAXLEN ~ 5 LIMIT -1 18-0 f v"),
  words("XADD s MAXLEN ~ 5 LIMIT x 18-0 f v"),
  words("XADD s MINID abc 18-0 f v"),
  words("XADD s MINID - 18-0 f v"),
  words("XADD s MAXLEN 5 f"),
  words("XADD s maxlen ~ * f v"),
  words("XADD s MAXLEN ~ 5 NOMKSTREAM 18-0 f v"),
  words("XADD s NOMKSTREAM MAXLEN 100 LIMIT 5 19-0 f v"),
  words("XADD s MAXLEN 100 * f"),
  ["XADD", "s", "MAXLEN\u0000x", "100", "20-0", "f", "v"],
  words("XRANGE s - +"),
  words("SET str x"),
  words("XADD str 1-1 f v"),
  words("XADD str NOMKSTREAM 1-1 f v"),
  words("TYPE s"),

  // XRANGE, XREVRANGE, XLEN.
  words("DEL s"),
  words("XADD s 1-1 a 1"),
  words("XADD s 1-2 b 2"),
  words("XADD s 2-0 c 3"),
  words("XADD s 2-5 d 4"),
  words("XADD s 3-0 e 5"),
  words("XRANGE s - +"),
  words("XRANGE s - + COUNT 2"),
  words("XRANGE s - + COUNT 0"),
  words("XRANGE s - + COUNT -1"),
  words("XRANGE s 2 2"),
  words("XRANGE s 1 2"),
  words("XRANGE s (1-1 +"),
  words("XRANGE s - (3-0"),
  words("XRANGE s (1 (3"),
  words("XRANGE s (18446744073709551615-18446744073709551615 +"),
  words("XRANGE s - (0-0"),
  words("XRANGE s (- +"),
  words("XRANGE s - (+"),
  words("XRANGE s ( +"),
  words("XRANGE s 3 2"),
  words("XRANGE nokey - +"),
  words("XRANGE nokey - + COUNT 0"),
  words("XRANGE str - +"),
  words("XRANGE s - + COUNT"),
  words("XRANGE s - + FOO 1"),
  words("XRANGE s - + COUNT x"),
  words("XRANGE s x +"),
  words("XRANGE s - x"),
  words("XRANGE s 1 + COUNT 1 COUNT 3"),
  words("XRANGE s 0-0 1-1"),
  words("XREVRANGE s + -"),
  words("XREVRANGE s + - COUNT 2"),
  words("XREVRANGE s + - COUNT 0"),
  words("XREVRANGE s (3-0 -"),
  words("XREVRANGE s 2 (1-1"),
  words("XREVRANGE s - +"),
  words("XREVRANGE s 2 2"),
  words("XREVRANGE nokey + -"),
  words("XREVRANGE str + -"),
  words("XREVRANGE s + (18446744073709551615-18446744073709551615"),
  words("XLEN s"),
  words("XLEN nokey"),
  words("XLEN str"),
  words("XLEN"),
  words("XLEN s t"),
  words("XRANGE s -"),

  // XDEL.
  words("XDEL s 1-1 2-0 9-9"),
  words("XDEL s 1-1"),
  words("XDEL s bad"),
  words("XDEL s 1-2 bad"),
  words("XRANGE s - +"),
  words("XDEL s +"),
  words("XDEL nokey bad"),
  words("XDEL str 1"),
  words("XDEL s"),
  ["XINFO", "STREAM", "s"],
  words("XDEL s 1-2 2-5 3-0"),
  words("XLEN s"),
  words("EXISTS s"),
  ["XINFO", "STREAM", "s"],
  words("XRANGE s - +"),
  words("XREVRANGE s + -"),
  words("XADD s 2-0 f v"),
  words("XADD s 4-0 f v"),
  ["XINFO", "STREAM", "s"],

  // XTRIM.
  words("DEL s"),
  words("XADD s 1-0 f v"),
  words("XADD s 2-0 f v"),
  words("XADD s 3-0 f v"),
  words("XADD s 4-0 f v"),
  words("XADD s 5-0 f v"),
  words("XTRIM s MAXLEN 4"),
  words("XTRIM s MINID 3"),
  words("XTRIM s MINID 3"),
  words("XRANGE s - +"),
  words("XTRIM s"),
  words("XTRIM s MAXLEN"),
  words("XTRIM s FOO 1"),
  words("XTRIM s LIMIT 1 MAXLEN 1"),
  words("XTRIM s MAXLEN 1 LIMIT 1"),
  words("XTRIM s MAXLEN ~ 1 LIMIT 1"),
  words("XTRIM s LIMIT 1 LIMIT 2"),
  words("XTRIM s NOMKSTREAM MAXLEN 1"),
  words("XTRIM s MAXLEN 1 MAXLEN 2"),
  words("XTRIM s MAXLEN = 1"),
  words("XTRIM s MAXLEN ~"),
  words("XTRIM s MINID ~ 10 LIMIT 0"),
  words("XTRIM s MINID (5"),
  words("XTRIM s MINID 1-x"),
  words("XTRIM nokey MAXLEN 1"),
  words("XTRIM str MAXLEN 1"),
  words("XTRIM s MAXLEN 0"),
  words("XLEN s"),
  words("EXISTS s"),
  ["XINFO", "STREAM", "s"],
  ...approxTrimCases(),

  // XSETID.
  words("DEL s"),
  words("XADD s 5-0 f v"),
  words("XADD s 6-0 f v"),
  words("XSETID s 100-0"),
  words("XSETID s 6-0"),
  words("XSETID s 5-9"),
  words("XSETID s 100"),
  words("XADD s 100-0 f v"),
  words("XADD s 100-* f v"),
  words("XSETID nokey 1-0"),
  words("XSETID str 1-0"),
  words("XSETID s bad"),
  words("XSETID s +"),
  words("XSETID s 200-0 ENTRIESADDED 1"),
  words("XSETID s 200-0 ENTRIESADDED -1"),
  words("XSETID s 200-0 ENTRIESADDED x"),
  words("XSETID s 200-0 MAXDELETEDID 300-0"),
  words("XSETID s 200-0 MAXDELETEDID bad"),
  words("XSETID s 300-0 ENTRIESADDED 100 MAXDELETEDID 250-0"),
  ["XINFO", "STREAM", "s"],
  words("XSETID s 240-0"),
  words("XSETID s 300-0 FOO"),
  words("XSETID s 300-0 ENTRIESADDED"),
  words("XSETID s 300-0 MAXDELETEDID 0-0"),
  ["XINFO", "STREAM", "s"],
  words("XSETID s"),
  words("XDEL s 5-0 6-0 100-0 100-1"),
  words("XSETID s 1-0"),
  words("XSETID s 1-0 ENTRIESADDED 0"),
  ["XINFO", "STREAM", "s"],
  words("XADD s 1-* f v"),

  // XREAD (without BLOCK, and BLOCK that has data at once).
  words("DEL s"),
  words("XADD s 1-1 a 1"),
  words("XADD s 2-2 b 2"),
  words("XADD s2 1-0 x 1"),
  words("XREAD STREAMS s 0"),
  words("XREAD COUNT 1 STREAMS s 0"),
  words("XREAD COUNT 1 STREAMS s s2 0 0"),
  words("XREAD STREAMS s 1-1"),
  words("XREAD STREAMS s 1"),
  words("XREAD STREAMS s 2-2"),
  words("XREAD STREAMS s $"),
  words("XREAD STREAMS s +"),
  words("XREAD STREAMS s -"),
  words("XREAD STREAMS s (1-1"),
  words("XREAD STREAMS nokey s 0 0"),
  words("XREAD STREAMS nokey $"),
  words("XREAD STREAMS s"),
  words("XREAD STREAMS s s2 0"),
  words("XREAD FOO 1 STREAMS s 0"),
  words("XREAD COUNT x STREAMS s 0"),
  words("XREAD COUNT -5 STREAMS s 0"),
  words("XREAD BLOCK x STREAMS s 0"),
  words("XREAD BLOCK -1 STREAMS s 0"),
  words("XREAD BLOCK 100 STREAMS s 0"),
  words("XREAD BLOCK 0 COUNT 1 STREAMS s s2 1-1 0"),
  words("XREAD GROUP g c STREAMS s 0"),
  words("XREAD NOACK STREAMS s 0"),
  words("XREAD STREAMS s >"),
  words("XREAD STREAMS str 0"),
  words("XREAD STREAMS s str 0 0"),
  words("XREAD STREAMS s bad"),
  words("XREAD COUNT 1"),
  words("XREAD COUNT 1 STREAMS"),
  words("XREAD COUNT 1 BLOCK 1 s 0"),
  words("xread streams s 0"),
  words("XREAD STREAMS STREAMS 0 0"),

  // Consumer groups: XGROUP.
  words("DEL s"),
  words("XADD s 1-0 a 1"),
  words("XADD s 2-0 b 2"),
  words("XADD s 3-0 c 3"),
  words("XGROUP CREATE s g1 0"),
  words("XGROUP CREATE s g1 0"),
  words("XGROUP CREATE s g2 $"),
  words("XGROUP CREATE nokey g 0"),
  words("XGROUP CREATE mk g 0 MKSTREAM"),
  words("XGROUP CREATE mk2 g $ MKSTREAM"),
  words("XLEN mk"),
  words("TYPE mk"),
  words("XGROUP CREATE s g3 -"),
  words("XGROUP CREATE s g3 bad"),
  words("XGROUP CREATE s g3 0 ENTRIESREAD 5"),
  words("XGROUP CREATE s g4 0 ENTRIESREAD -2"),
  words("XGROUP CREATE s g4 0 ENTRIESREAD x"),
  words("XGROUP CREATE s g4 0 ENTRIESREAD -1"),
  words("XGROUP CREATE s g5 0 FOO"),
  words("XGROUP CREATE s g5 0 MKSTREAM MKSTREAM MKSTREAM MKSTREAM"),
  words("XGROUP CREATE s g5 0 ENTRIESREAD"),
  words("XGROUP CREATE str g 0"),
  words("XGROUP CREATE str g 0 MKSTREAM"),
  words("XGROUP CREATE nokey2 g bad MKSTREAM"),
  words("EXISTS nokey2"),
  words("XINFO GROUPS s"),
  words("XGROUP SETID s g1 1-0"),
  words("XGROUP SETID s g1 $"),
  words("XGROUP SETID s g1 -"),
  words("XGROUP SETID s g1 +"),
  words("XGROUP SETID s g1 bad"),
  words("XGROUP SETID s nog 0"),
  words("XGROUP SETID s g1 0 ENTRIESREAD 3"),
  words("XGROUP SETID s g1 0 MKSTREAM"),
  words("XGROUP SETID s g1 0 ENTRIESREAD"),
  words("XGROUP SETID nokey g 0"),
  words("XINFO GROUPS s"),
  words("XGROUP SETID s g1 0"),
  words("XGROUP CREATECONSUMER s g1 c1"),
  words("XGROUP CREATECONSUMER s g1 c1"),
  words("XGROUP CREATECONSUMER s nog c1"),
  words("XGROUP CREATECONSUMER nokey g c1"),
  words("XGROUP DELCONSUMER s g1 c1"),
  words("XGROUP DELCONSUMER s g1 nobody"),
  words("XGROUP DELCONSUMER s nog c1"),
  words("XGROUP DESTROY s g2"),
  words("XGROUP DESTROY s g2"),
  words("XGROUP DESTROY nokey g"),
  words("XGROUP DESTROY str g"),
  words("XGROUP HELP"),
  words("XGROUP help extra"),
  words("XGROUP FOO"),
  words("XGROUP FOO a b c"),
  words("XGROUP CREATE s"),
  words("XGROUP DESTROY s g2 x"),
  words("XGROUP CREATECONSUMER s g1"),
  words("XGROUP"),
  words("xgroup create s g6 0"),
  words("XINFO GROUPS s"),

  // XREADGROUP, XACK, XPENDING (summary).
  words("XREADGROUP GROUP g1 alice STREAMS s >"),
  words("XREADGROUP GROUP g1 alice STREAMS s >"),
  words("XREADGROUP GROUP g1 alice STREAMS s 0"),
  words("XREADGROUP GROUP g1 alice COUNT 1 STREAMS s 0"),
  words("XREADGROUP GROUP g1 alice STREAMS s 1-0"),
  words("XREADGROUP GROUP g1 alice STREAMS s 3"),
  words("XREADGROUP GROUP g1 bob STREAMS s 0"),
  words("XPENDING s g1"),
  words("XINFO GROUPS s"),
  words("XADD s 4-0 d 4"),
  words("XADD s 5-0 e 5"),
  words("XADD s 6-0 f 6"),
  words("XREADGROUP GROUP g1 bob COUNT 1 STREAMS s >"),
  words("XREADGROUP GROUP g1 carol NOACK COUNT 1 STREAMS s >"),
  words("XREADGROUP GROUP g1 carol BLOCK 100 STREAMS s 0"),
  words("XPENDING s g1"),
  words("XINFO GROUPS s"),
  words("XREADGROUP GROUP g1 dave BLOCK 0 STREAMS s >"),
  words("XPENDING s g1"),
  words("XREADGROUP GROUP nog alice STREAMS s >"),
  words("XREADGROUP GROUP g1 alice STREAMS nokey >"),
  words("XREADGROUP GROUP g1 alice STREAMS s $"),
  words("XREADGROUP GROUP g1 alice STREAMS s +"),
  words("XREADGROUP GROUP g1 alice STREAMS s bad"),
  words("XREADGROUP GROUP g1 alice STREAMS s mk > >"),
  words("XREADGROUP GROUP g1 alice STREAMS s str > >"),
  words("XREADGROUP GROUP g1 alice STREAMS str >"),
  words("XREADGROUP STREAMS s >"),
  words("XREADGROUP COUNT 1 BLOCK 0 STREAMS s >"),
  words("XREADGROUP GROUP g1 alice STREAMS s"),
  words("XREADGROUP GROUP g1 alice STREAMS s s2 >"),
  words("XREADGROUP GROUP g1 STREAMS s >"),
  words("XREADGROUP GROUP g1 alice FOO STREAMS s >"),
  words("XREADGROUP GROUP g1 alice COUNT x STREAMS s >"),
  words("XREADGROUP GROUP g1 alice BLOCK -1 STREAMS s >"),
  words("XACK s g1 1-0"),
  words("XACK s g1 1-0"),
  words("XACK s g1 2-0 3-0 9-0"),
  words("XACK s g1 bad"),
  words("XACK s g1 4-0 bad"),
  words("XACK s nog bad"),
  words("XACK nokey g 1"),
  words("XACK str g 1"),
  words("XACK s g1"),
  words("XPENDING s g1"),
  words("XDEL s 5-0"),
  words("XREADGROUP GROUP g1 bob STREAMS s 0"),
  words("XREADGROUP GROUP g1 dave STREAMS s 0"),
  words("XPENDING s g1"),
  words("XPENDING s nog"),
  words("XPENDING nokey g"),
  words("XPENDING str g"),
  words("XPENDING s g1 - +"),
  words("XPENDING s g1 - + x"),
  words("XPENDING s g1 x + 10"),
  words("XPENDING s g1 - x 10"),
  words("XPENDING s g1 IDLE x - + 10"),
  words("XPENDING s g1 IDLE 10 - + "),
  words("XPENDING s g1 IDLE 100000000 - + 10"),
  words("XPENDING s g1 IDLE 100000000 - + 10 bob"),
  words("XPENDING s g1 - + 10 nobody"),
  words("XPENDING s g1 - + 0"),
  words("XPENDING s g1 - + -3"),
  words("XPENDING s g1 (- + 10"),
  words("XPENDING s g1 - (0-0 10"),
  words("XPENDING s g1 (18446744073709551615-18446744073709551615 + 10"),
  words("XPENDING s g1 - + 0 bob extra"),
  words("XPENDING s g1 a b c d e f g"),
  words("XPENDING nokey g - + 10"),
  words("XINFO GROUPS s"),
  words("XGROUP DELCONSUMER s g1 dave"),
  words("XPENDING s g1"),
  words("XINFO GROUPS s"),

  // XCLAIM, XAUTOCLAIM.
  words("DEL s"),
  words("XADD s 1-0 a 1"),
  words("XADD s 2-0 b 2"),
  words("XADD s 3-0 c 3"),
  words("XADD s 4-0 d 4"),
  words("XGROUP CREATE s g 0"),
  words("XREADGROUP GROUP g alice COUNT 3 STREAMS s >"),
  words("XCLAIM s g bob 0 1-0"),
  words("XCLAIM s g bob 0 2-0 JUSTID"),
  words("XCLAIM s g bob 3600000 3-0"),
  words("XCLAIM s g bob 0 9-9 FORCE"),
  words("XCLAIM s g bob 0 4-0"),
  words("XCLAIM s g bob 0 4-0 FORCE"),
  words("XPENDING s g"),
  words("XCLAIM s g newguy 0 99-0"),
  words("XCLAIM s g newguy2 3600000 1-0"),
  words("XINFO GROUPS s"),
  words("XCLAIM s g bob x 1-0"),
  words("XCLAIM s g bob 0 1-0 FOO"),
  words("XCLAIM s g bob 0 1-0 IDLE x"),
  words("XCLAIM s g bob 0 1-0 TIME x"),
  words("XCLAIM s g bob 0 1-0 RETRYCOUNT x"),
  words("XCLAIM s g bob 0 1-0 LASTID bad"),
  words("XCLAIM s g bob 0 1-0 IDLE"),
  words("XCLAIM s g bob 0 FORCE"),
  words("XCLAIM s nog bob 0 1-0"),
  words("XCLAIM nokey g bob 0 1-0"),
  words("XCLAIM str g bob 0 1-0"),
  words("XCLAIM s g bob -5 1-0 1-0 JUSTID"),
  words("XCLAIM s g carol 0 1-0 2-0 3-0 LASTID 10-0 JUSTID"),
  words("XINFO GROUPS s"),
  words("XDEL s 2-0"),
  words("XCLAIM s g carol 0 2-0 3-0"),
  words("XPENDING s g"),
  words("XCLAIM s g"),
  words("XAUTOCLAIM s g dave 0 0 COUNT 1"),
  words("XAUTOCLAIM s g dave 0 0 COUNT 1 JUSTID"),
  words("XAUTOCLAIM s g dave 0 0"),
  words("XAUTOCLAIM s g erin 3600000 0"),
  words("XPENDING s g"),
  words("XINFO GROUPS s"),
  words("XADD s 5-0 e 5"),
  words("XADD s 6-0 f 6"),
  words("XREADGROUP GROUP g alice STREAMS s >"),
  words("XDEL s 1-0 5-0"),
  words("XAUTOCLAIM s g frank 0 0 COUNT 2"),
  words("XAUTOCLAIM s g frank 0 0"),
  words("XAUTOCLAIM s g frank 0 (3-0 JUSTID"),
  words("XAUTOCLAIM s g frank 0 - COUNT 1 JUSTID"),
  words("XPENDING s g"),
  words("XAUTOCLAIM s g frank x 0"),
  words("XAUTOCLAIM s g frank 0 bad"),
  words("XAUTOCLAIM s g frank 0 (-"),
  words("XAUTOCLAIM s g frank 0 (18446744073709551615-18446744073709551615"),
  words("XAUTOCLAIM s g frank 0 0 COUNT 0"),
  words("XAUTOCLAIM s g frank 0 0 COUNT x"),
  words("XAUTOCLAIM s g frank 0 0 COUNT -1"),
  words("XAUTOCLAIM s g frank 0 0 COUNT"),
  words("XAUTOCLAIM s g frank 0 0 FOO"),
  words("XAUTOCLAIM s nog frank 0 0"),
  words("XAUTOCLAIM nokey g frank 0 0"),
  words("XAUTOCLAIM str g frank 0 0"),
  words("XAUTOCLAIM str g frank x 0"),
  words("XAUTOCLAIM s g frank 0"),
  words("XINFO GROUPS s"),

  // Group counters: entries-read and lag around deletions, SETID and ENTRIESREAD.
  words("DEL c"),
  words("XGROUP CREATE c g0 $ MKSTREAM"),
  words("XINFO GROUPS c"),
  words("XADD c 1-0 a 1"),
  words("XADD c 2-0 a 2"),
  words("XADD c 3-0 a 3"),
  words("XADD c 4-0 a 4"),
  words("XADD c 5-0 a 5"),
  words("XGROUP CREATE c g1 0"),
  words("XGROUP CREATE c g2 2-0"),
  words("XGROUP CREATE c g3 $"),
  words("XGROUP CREATE c g4 0 ENTRIESREAD 2"),
  words("XINFO GROUPS c"),
  words("XREADGROUP GROUP g1 r NOACK COUNT 2 STREAMS c >"),
  words("XREADGROUP GROUP g2 r NOACK COUNT 1 STREAMS c >"),
  words("XINFO GROUPS c"),
  words("XDEL c 4-0"),
  words("XINFO GROUPS c"),
  words("XREADGROUP GROUP g1 r NOACK COUNT 1 STREAMS c >"),
  words("XREADGROUP GROUP g2 r NOACK STREAMS c >"),
  words("XINFO GROUPS c"),
  words("XDEL c 1-0"),
  words("XINFO GROUPS c"),
  words("XADD c 6-0 a 6"),
  words("XINFO GROUPS c"),
  words("XREADGROUP GROUP g1 r NOACK STREAMS c >"),
  words("XINFO GROUPS c"),
  words("XGROUP SETID c g3 0"),
  words("XGROUP SETID c g0 3-0 ENTRIESREAD 3"),
  words("XINFO GROUPS c"),
  words("XTRIM c MAXLEN 2"),
  words("XINFO GROUPS c"),
  words("XDEL c 5-0 6-0"),
  words("XINFO GROUPS c"),
  ["XINFO", "STREAM", "c"],
  words("XADD c 7-0 a 7"),
  words("XREADGROUP GROUP g4 r NOACK STREAMS c >"),
  words("XINFO GROUPS c"),
  words("DEL d"),
  words("XADD d 1-0 a 1"),
  words("XADD d 2-0 a 2"),
  words("XADD d 3-0 a 3"),
  words("XGROUP CREATE d g 0"),
  words("XTRIM d MAXLEN 1"),
  words("XINFO GROUPS d"),
  words("XREADGROUP GROUP g r NOACK STREAMS d >"),
  words("XINFO GROUPS d"),
  words("XGROUP SETID d g 0"),
  words("XDEL d 3-0"),
  words("XINFO GROUPS d"),
  words("XADD d 4-0 a 4"),
  words("XINFO GROUPS d"),

  // A key named twice; repeated ids; XAUTOCLAIM's attempts (ten per entry it may claim).
  words("DEL e"),
  ...Array.from({ length: 30 }, (_, i) => ["XADD", "e", `${i + 1}-0`, "f", String(i)]),
  words("XGROUP CREATE e g 0"),
  words("XREADGROUP GROUP g a COUNT 2 STREAMS e e > >"),
  words("XREADGROUP GROUP g a STREAMS e e e 0 > 0"),
  words("XREADGROUP GROUP g b COUNT 3 STREAMS e e 0 >"),
  words("XPENDING e g"),
  words("XREADGROUP GROUP g b STREAMS e e > >"),
  words("XPENDING e g"),
  words("XAUTOCLAIM e g c 3600000 0 COUNT 1"),
  words("XAUTOCLAIM e g c 3600000 0 COUNT 2"),
  words("XAUTOCLAIM e g c 3600000 12-0"),
  words("XAUTOCLAIM e g c 0 28-0"),
  words("XCLAIM e g d 0 1-0 1-0 2-0 1-0 JUSTID"),
  words("XCLAIM e g d 3600000 3-0 3-0 99-0 FORCE JUSTID"),
  words("XDEL e 4-0"),
  words("XCLAIM e g d 0 4-0 4-0 5-0 4-0"),
  words("XACK e g 5-0 5-0"),
  words("XPENDING e g"),
  words("XINFO GROUPS e"),
  words("XGROUP CREATE e h $"),
  words("XCLAIM e h d 0 1-0 FORCE JUSTID"),
  words("XCLAIM e h d 0 2-0 FORCE"),
  words("XCLAIM e h d 0 3-0 FORCE RETRYCOUNT 7 IDLE 5"),
  words("XPENDING e h"),

  // XSETID below a deleted id: new entries go into a node of tombstones with larger ids.
  words("DEL w"),
  words("XADD w 5-0 f v"),
  words("XADD w 6-0 f v"),
  words("XADD w 7-0 f v"),
  words("XDEL w 7-0"),
  words("XTRIM w MINID 7-0"),
  ["XINFO", "STREAM", "w"],
  words("XSETID w 1-0"),
  words("XADD w 2-0 f v"),
  words("XADD w 3-0 f v"),
  words("XRANGE w - +"),
  words("XREVRANGE w + -"),
  words("XDEL w 2-0"),
  ["XINFO", "STREAM", "w"],
  words("XTRIM w MINID 3"),
  words("XLEN w"),
  words("XTRIM w MAXLEN 0"),
  ["XINFO", "STREAM", "w"],

  // XINFO.
  words("XINFO STREAM s"),
  words("XINFO STREAM mk"),
  words("XINFO STREAM mk FULL"),
  words("XINFO STREAM t FULL COUNT 2"),
  words("XINFO STREAM t FULL COUNT x"),
  words("XINFO STREAM t FULL COUNT -1"),
  words("XINFO STREAM t FOO"),
  words("XINFO STREAM t FULL FOO 1"),
  words("XINFO STREAM t FULL COUNT"),
  words("XINFO STREAM nokey"),
  words("XINFO STREAM str"),
  words("XINFO GROUPS nokey"),
  words("XINFO GROUPS str"),
  words("XINFO GROUPS mk2"),
  words("XINFO CONSUMERS s nog"),
  words("XINFO CONSUMERS nokey g"),
  words("XINFO CONSUMERS mk2 g x"),
  words("XINFO HELP"),
  words("XINFO help x"),
  words("XINFO FOO"),
  words("XINFO FOO bar"),
  words("XINFO STREAM"),
  words("XINFO GROUPS"),
  words("XINFO"),
  words("xinfo stream mk"),

  // Arity.
  words("XDEL s"),
  words("XACK s g"),
  words("XPENDING s"),
  words("XCLAIM s g c 0"),
  words("XAUTOCLAIM s g c 0"),
  words("XSETID s"),
  words("XTRIM s MAXLEN"),
  words("XREADGROUP GROUP g c STREAMS"),

  // Random group traffic.
  ...groupCases("gr1", 3, 600),
  ...groupCases("gr2", 17, 600),
  ...groupCases("gr3", 101, 600),

  // Node layout.
  ...radixCases(),
  ...nodeLayoutCases("n1", 1, 400),
  ...nodeLayoutCases("n2", 7, 300),
  ...nodeLayoutCases("n3", 42, 300),
];
